"""Catalog rows written directly (no events): use the services when a test needs the events."""

from decimal import Decimal

import factory

from apps.catalog.models import Category, Product, Review


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        database = "catalog"

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    parent = None


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        database = "catalog"

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine product."
    price = Decimal("19.99")
    currency = "USD"
    is_active = True
    category = factory.SubFactory(CategoryFactory)


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review
        database = "catalog"

    product = factory.SubFactory(ProductFactory)
    user_id = factory.Faker("uuid4", cast_to=None)
    rating = 4
    text = "Good."
