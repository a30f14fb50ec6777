"""Input and output shapes of the catalog API (snake_case here; camelCase on the wire)."""

from decimal import Decimal

from rest_framework import serializers

from apps.catalog.selectors import SORT_FIELDS
from shop.api.inputs import SortedQuery, StrictInput
from shop.api.sanitize import CleanCharField

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class CategoryRefOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()


class CategoryOutput(CategoryRefOutput):
    parent_id = serializers.UUIDField(allow_null=True)


class ProductOutput(serializers.Serializer):
    """Reads model rows and the facade's ``ProductDetail`` alike (same attribute names)."""

    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    is_active = serializers.BooleanField()
    category = CategoryRefOutput(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProductListQuery(SortedQuery):
    SORT_FIELDS = SORT_FIELDS

    category = serializers.CharField(
        required=False, max_length=140, help_text="Category id or slug (subcategories included)"
    )
    minPrice = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=Decimal("0"))
    maxPrice = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=Decimal("0"))
    search = serializers.CharField(
        required=False, max_length=100, help_text="Case-insensitive match in name, SKU or description"
    )
    active = serializers.BooleanField(required=False, default=True, help_text="Default true; false is staff only")

    def validate(self, attrs):
        low, high = attrs.get("minPrice"), attrs.get("maxPrice")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"minPrice": ["Must not be greater than maxPrice."]})
        return attrs


class PriceInput(serializers.DecimalField):
    """A price; "-0" reads as 0: it passes ``min_value=0``, but "-0.00" is no valid price in events."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0"), **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return value if value else abs(value)


class ProductCreateInput(StrictInput):
    sku = serializers.RegexField(SKU_PATTERN, max_length=64)
    name = CleanCharField(max_length=200)
    description = CleanCharField(max_length=5000, multiline=True, required=False, allow_blank=True, default="")
    price = PriceInput()
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, default="USD")
    category_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    is_active = serializers.BooleanField(required=False, default=True)


class ProductUpdateInput(StrictInput):
    sku = serializers.RegexField(SKU_PATTERN, max_length=64, required=False)
    name = CleanCharField(max_length=200, required=False)
    description = CleanCharField(max_length=5000, multiline=True, required=False, allow_blank=True)
    price = PriceInput(required=False)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
    category_id = serializers.UUIDField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class ReviewOutput(serializers.Serializer):
    id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    rating = serializers.IntegerField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReviewCreateInput(StrictInput):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    text = CleanCharField(max_length=2000, multiline=True, required=False, allow_blank=True, default="")
