"""Abstract tables of the event plumbing.

Each context declares concrete ``OutboxMessage``, ``InboxMessage`` and ``DeadLetter``
models in its own ``models.py``, so the rows live in that context's database and commit
atomically with its state changes. The kernel finds them by app label.
"""

import uuid

from django.db import models
from django.utils import timezone


class OutboxMessageBase(models.Model):
    """An event its context owes its subscribers until every one of them has it.

    ``delivered_at`` is the only "done": it is set once each subscriber has the event in its
    inbox (or parked as a dead letter). Handing a message to the broker is not enough, since a
    broker that restarts without persistence loses what it held. ``relay_after`` is when the
    sweeper looks at the row next: at once for rows nobody has sent, a while later for rows
    sent on commit (which are then checked against the inboxes and re-sent only if missing).
    ``sent_at`` is the last time a relay (not the on-commit fast path) handed it over.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()
    aggregate_id = models.CharField(max_length=64)
    envelope = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    relay_after = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        abstract = True
        ordering = ("created_at",)
        indexes = [
            models.Index(
                fields=["relay_after"],
                name="%(app_label)s_outbox_owed",
                condition=models.Q(delivered_at__isnull=True),
            ),
            models.Index(fields=["delivered_at"], name="%(app_label)s_outbox_done"),
        ]

    def __str__(self):
        return f"{self.event_type} v{self.version} {self.id}"


class InboxMessageBase(models.Model):
    consumer = models.CharField(max_length=120)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="%(app_label)s_inbox_once")]
        indexes = [models.Index(fields=["processed_at"], name="%(app_label)s_inbox_processed")]

    def __str__(self):
        return f"{self.consumer} ← {self.event_type} {self.event_id}"


class DeadLetterBase(models.Model):
    class Status(models.TextChoices):
        FAILED = "FAILED"
        REPLAYED = "REPLAYED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consumer = models.CharField(max_length=120)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    envelope = models.JSONField()
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FAILED)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="%(app_label)s_deadletter_once")]
        indexes = [models.Index(fields=["status", "event_type"], name="%(app_label)s_dl_status")]

    def __str__(self):
        return f"{self.consumer} ✗ {self.event_type} {self.event_id}"
