import uuid

from django.db import models

from shop.api.idempotency import IdempotencyRecordBase
from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase

MONEY = {"max_digits": 12, "decimal_places": 2}


class PaymentStatus(models.TextChoices):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    FAILED = "FAILED"


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(db_index=True)  # orders context; no ForeignKey across contexts
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices)
    provider = models.CharField(max_length=20)
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    captured_amount = models.DecimalField(**MONEY, default=0)
    refunded_amount = models.DecimalField(**MONEY, default=0)
    decline_code = models.CharField(max_length=50, blank=True, default="")
    failure_message = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            # One row per payment of the provider's: a payment found by its search
            # (services.payment_provider_reconcile) is never recorded twice.
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~models.Q(provider_reference=""),
                name="payments_one_row_per_provider_payment",
            )
        ]

    def __str__(self):
        return f"Payment {self.id} {self.amount} {self.currency} ({self.status})"

    @property
    def refundable(self):
        return self.captured_amount - self.refunded_amount


class PaymentEvent(models.Model):
    """Append-only ledger: what happened to a payment, with the provider's reference for each step."""

    class Type(models.TextChoices):
        AUTHORIZED = "AUTHORIZED"
        DECLINED = "DECLINED"
        CAPTURED = "CAPTURED"
        VOIDED = "VOIDED"
        REFUNDED = "REFUNDED"
        # Reported by the provider's webhooks (ledger only: no domain event of their own).
        DISPUTED = "DISPUTED"
        DISPUTE_WON = "DISPUTE_WON"
        DISPUTE_LOST = "DISPUTE_LOST"

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=12, choices=Type.choices)
    amount = models.DecimalField(**MONEY)
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self):
        return f"{self.type} {self.amount}"


class ProviderWebhookEvent(models.Model):
    """One row per provider event handled: a redelivered or replayed event id is a no-op."""

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    outcome = models.CharField(max_length=200, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="payments_webhook_event_once")]

    def __str__(self):
        return f"{self.provider} {self.type} {self.event_id}"


class IdempotencyLog(IdempotencyRecordBase):
    """Spec section 7: key, request hash, stored response. ``scope`` is the gateway operation
    (authorize, capture, void, refund) or ``user:<id>`` for the refund API's Idempotency-Key."""


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass
