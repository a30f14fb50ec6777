"""Output shape of the BFF product page (its own contract, independent of the catalog API's)."""

from rest_framework import serializers


class PageCategoryOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()


class PageProductOutput(serializers.Serializer):
    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    category = PageCategoryOutput(allow_null=True)


class RatingOutput(serializers.Serializer):
    average = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)
    count = serializers.IntegerField()


class ProductPageOutput(serializers.Serializer):
    product = PageProductOutput()
    in_stock = serializers.BooleanField(allow_null=True, help_text="null when inventory is degraded")
    available_quantity = serializers.IntegerField(allow_null=True)
    rating = RatingOutput(allow_null=True, help_text="null when reviews are degraded")
    degraded = serializers.ListField(
        child=serializers.ChoiceField(choices=["inventory", "reviews"]),
        help_text="Parts that could not be loaded; the rest of the page is complete.",
    )
