import uuid

from django.db import models


class SagaStatus(models.TextChoices):
    STARTED = "STARTED"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"


class SagaStep(models.TextChoices):
    RESERVE_STOCK = "RESERVE_STOCK"
    AUTHORIZE_PAYMENT = "AUTHORIZE_PAYMENT"
    CAPTURE_PAYMENT = "CAPTURE_PAYMENT"
    REVERSE_PAYMENT = "REVERSE_PAYMENT"
    RELEASE_STOCK = "RELEASE_STOCK"
    DONE = "DONE"


ACTIVE_STATUSES = (SagaStatus.STARTED, SagaStatus.COMPENSATING)


class CheckoutSaga(models.Model):
    """One row per order: where its checkout is, and what has been done that may need undoing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=12, choices=SagaStatus.choices, default=SagaStatus.STARTED)
    current_step = models.CharField(max_length=20, choices=SagaStep.choices, default=SagaStep.RESERVE_STOCK)
    data = models.JSONField(default=dict)
    cancel_reason = models.CharField(max_length=40, blank=True, default="")
    step_attempts = models.PositiveSmallIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["deadline"],
                name="orders_saga_overdue",
                condition=models.Q(status__in=["STARTED", "COMPENSATING"]),
            ),
            models.Index(fields=["status"], name="orders_saga_status"),
        ]

    def __str__(self):
        return f"saga {self.order_id} {self.status}/{self.current_step}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class SagaStepLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    saga = models.ForeignKey(CheckoutSaga, on_delete=models.CASCADE, related_name="log")
    step = models.CharField(max_length=20, choices=SagaStep.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=20)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self):
        return f"{self.step} #{self.attempt}: {self.outcome}"
