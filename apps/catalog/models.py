import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase


class Category(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Product(models.Model):
    """Products are never deleted: orders keep snapshots, and history must stay explainable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products", db_index=False
    )  # indexed by catalog_product_category (category, is_active)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="catalog_product_price_gte_0")]
        # The list endpoint always filters on is_active first and sorts by one of these columns;
        # free-text search uses trigram indexes added by migration 0003 (PostgreSQL only).
        indexes = [
            models.Index(fields=["is_active", "-created_at", "id"], name="catalog_product_active_created"),
            models.Index(fields=["is_active", "price", "id"], name="catalog_product_active_price"),
            models.Index(fields=["is_active", "name", "id"], name="catalog_product_active_name"),
            models.Index(fields=["category", "is_active"], name="catalog_product_category"),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"


class Review(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="reviews", db_index=False
    )  # indexed by catalog_review_one_per_user and catalog_review_product_created
    user_id = models.UUIDField()  # accounts context; no cross-database foreign key
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [
            models.UniqueConstraint(fields=["product", "user_id"], name="catalog_review_one_per_user"),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="catalog_review_rating_1_5"),
        ]
        indexes = [models.Index(fields=["product", "-created_at", "id"], name="catalog_review_product_created")]

    def __str__(self):
        return f"{self.rating}★ on {self.product_id}"


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass
