import uuid

from django.db import models
from django.db.models.functions import Upper

from shop.api.idempotency import IdempotencyRecordBase
from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase

MONEY = {"max_digits": 12, "decimal_places": 2}


class OrderStatus(models.TextChoices):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class ShippingMethod(models.TextChoices):
    STANDARD = "standard"
    EXPRESS = "express"
    OVERNIGHT = "overnight"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField()  # accounts context; no ForeignKey across contexts
    customer_email = models.EmailField(blank=True, default="")  # snapshot at order time, for staff search
    status = models.CharField(max_length=12, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY)
    shipping_cost = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    shipping_street = models.CharField(max_length=200)
    shipping_city = models.CharField(max_length=100)
    shipping_state = models.CharField(max_length=2)
    shipping_zip_code = models.CharField(max_length=10)
    shipping_country = models.CharField(max_length=3)
    shipping_method = models.CharField(max_length=10, choices=ShippingMethod.choices)
    notes = models.CharField(max_length=500, blank=True, default="")
    payment_method = models.CharField(max_length=20, default="card")
    # The card token the checkout saga authorizes with. Write-only: never rendered by any API
    # or admin list; cleared once the saga has used it.
    payment_token = models.CharField(max_length=255, blank=True, default="")
    cancellation_reason = models.CharField(max_length=100, blank=True, default="")
    tracking_number = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        # Each list the API serves walks one of these in its sort order (a page is an index
        # range, the bounded count too): a customer's orders, a status, everyone's; plus the
        # staff's exact e-mail look-up. Checked by tests/integration/test_read_plans.py.
        indexes = [
            models.Index(fields=["user_id", "created_at", "id"], name="orders_order_user_created"),
            models.Index(fields=["status", "created_at", "id"], name="orders_order_status_created"),
            models.Index(fields=["created_at", "id"], name="orders_order_created_id"),
            models.Index(Upper("customer_email"), "created_at", name="orders_order_email_ci"),
        ]

    def __str__(self):
        return f"Order {self.id} ({self.status})"

    @property
    def processing(self) -> bool:
        """The checkout saga still runs while an order is PENDING (spec: read-your-writes)."""
        return self.status == OrderStatus.PENDING


class OrderItem(models.Model):
    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.UUIDField()  # catalog context
    product_name = models.CharField(max_length=200)  # snapshots: the catalog may change later
    sku = models.CharField(max_length=64)
    unit_price = models.DecimalField(**MONEY)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(**MONEY)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["order", "product_id"], name="orders_item_once")]
        # Staff find a product's orders by its id (the admin's search).
        indexes = [models.Index(fields=["product_id"], name="orders_item_product")]

    def __str__(self):
        return f"{self.quantity} x {self.product_name}"


class OrderStatusHistory(models.Model):
    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=12, choices=OrderStatus.choices, blank=True, default="")
    to_status = models.CharField(max_length=12, choices=OrderStatus.choices)
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        verbose_name_plural = "order status history"

    def __str__(self):
        return f"{self.from_status or '-'} -> {self.to_status}"


class AppendOnly(Exception):
    """Someone tried to change or delete a stored order event."""


class OrderEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("Order events are append-only")

    def delete(self):
        raise AppendOnly("Order events are append-only")


class OrderEventRecord(models.Model):
    """One order event, kept forever: the audit trail and time machine (``apps/orders/eventstore.py``).

    Appended by ``eventstore.append`` in the transaction of the order change it records.
    Append-only at the ORM and admin level: no update, no delete. No ForeignKey to ``Order``:
    the history must never be cascaded away with a row. ``(aggregate_id, sequence)`` unique
    is the optimistic-concurrency guard: two writers appending the same next sequence cannot
    both commit.
    """

    id = models.BigAutoField(primary_key=True)
    aggregate_id = models.UUIDField()  # the order id
    sequence = models.PositiveIntegerField()  # 1, 2, 3, ... per order, gapless
    event_id = models.UUIDField(unique=True)  # the envelope id
    event_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()  # the schema version the data was written in
    data = models.JSONField()  # as published; upcast on read
    occurred_at = models.DateTimeField()
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    causation_id = models.CharField(max_length=128, blank=True, default="")

    objects = OrderEventQuerySet.as_manager()

    class Meta:
        ordering = ("aggregate_id", "sequence")
        constraints = [
            models.UniqueConstraint(fields=["aggregate_id", "sequence"], name="orders_event_sequence"),
            models.CheckConstraint(condition=models.Q(sequence__gte=1), name="orders_event_sequence_positive"),
        ]

    def __str__(self):
        return f"{self.aggregate_id} #{self.sequence} {self.event_type} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("Order events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("Order events are append-only")


class IdempotencyRecord(IdempotencyRecordBase):
    """Idempotency-Key records of the orders API (see shop.api.idempotency)."""


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass


# The checkout saga's tables live in the orders database too (the orchestrator is part of orders).
from apps.orders.saga.models import CheckoutSaga, SagaStepLog  # noqa: E402, F401
