import uuid

from django.db import models
from django.db.models import F, Q

from shop.api.idempotency import IdempotencyRecordBase
from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase


class StockItem(models.Model):
    """Units of one product. ``available = on_hand - reserved``; the database itself refuses
    a negative on-hand, a negative reservation, or more reserved than on hand."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product_id = models.UUIDField(unique=True)  # catalog context; no cross-database foreign key
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="inventory_stock_on_hand_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="inventory_stock_reserved_gte_0"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="inventory_stock_reserved_lte_on_hand"
            ),
        ]

    def __str__(self):
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class ReservationRequest(models.Model):
    """The first outcome of ``reserve`` for an order, kept so that a repeat returns it."""

    order_id = models.UUIDField(primary_key=True)
    reserved = models.BooleanField()
    shortages = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"order {self.order_id}: {'reserved' if self.reserved else 'short'}"


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "RESERVED"
        COMMITTED = "COMMITTED"
        RELEASED = "RELEASED"
        EXPIRED = "EXPIRED"
        RETURNED = "RETURNED"  # committed units put back (a confirmed order cancelled before shipping)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField()
    product_id = models.UUIDField()
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_id", "product_id"], name="inventory_reservation_order_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="inventory_reservation_quantity_gt_0"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="inventory_reservation_due", condition=Q(status="RESERVED")),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.product_id} for {self.order_id} ({self.status})"


class StockMovement(models.Model):
    """The ledger: every change of on-hand or reserved units, with why and for what.

    Summing ``on_hand_delta`` / ``reserved_delta`` over a product gives its stock item's
    numbers; a test holds the ledger to that.
    """

    class Reason(models.TextChoices):
        INITIAL = "INITIAL"
        ADJUSTMENT = "ADJUSTMENT"
        RESERVE = "RESERVE"
        RELEASE = "RELEASE"
        EXPIRE = "EXPIRE"
        COMMIT = "COMMIT"
        RETURN = "RETURN"

    id = models.BigAutoField(primary_key=True)
    product_id = models.UUIDField()
    reason = models.CharField(max_length=12, choices=Reason.choices)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    reference = models.CharField(max_length=64, blank=True, default="")  # order id, or who adjusted
    note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["product_id", "created_at"], name="inventory_movement_product"),
            models.Index(fields=["reference"], name="inventory_movement_reference"),
        ]

    def __str__(self):
        return f"{self.reason} {self.product_id} on_hand{self.on_hand_delta:+d} reserved{self.reserved_delta:+d}"


class IdempotencyKey(IdempotencyRecordBase):
    """One stock adjustment per key: the API's Idempotency-Key (``user:<id>``) and the admin's
    "Adjust stock" form (``stock_adjust``: one key per form shown), see shop.api.idempotency."""


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass
