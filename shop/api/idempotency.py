"""Idempotency keys: do a unit of work once, however often it is asked for.

Two layers use this module:

* HTTP (``run_idempotent``): the IETF ``Idempotency-Key`` header draft. A retry with the same
  key and payload replays the first response (``Idempotent-Replayed: true``); the same key
  with another payload is 422 ``IDEMPOTENCY_KEY_REUSED``; the same key while the first
  request is still running is 409 ``IDEMPOTENCY_KEY_IN_USE``. Keys are scoped per user.
* Services (``claim``/``complete``/``release``): e.g. the payments idempotency log, so a
  repeated gateway command never reaches the provider twice.

Records live in the database of the context that owns the endpoint (a concrete subclass of
``IdempotencyRecordBase`` in that context's models). Why a *claim* row instead of "check, then
insert after"? Two concurrent requests would both pass the check and both do the work; the
unique ``(scope, key)`` row makes exactly one of them the owner.

* A service claim (``claim``) is committed before the work, because the work is a call to
  someone else (the payment provider) that no transaction can undo; a lease lets a retry take
  over a claim whose owner died.
* An HTTP claim (``run_idempotent``) is written in the *same transaction* as the work and the
  stored response: a crash or a failure rolls all three back, so a request leaves either its
  work with its key or nothing, and there is no claim of its own to commit first or to release
  after (one commit per keyed request fewer; the connection-loss re-run of ``DatabaseRetryMiddleware``
  sees nothing durable). A concurrent duplicate must still hear 409 at once rather than wait
  on the uncommitted row's unique index, so the owner first takes a transaction-scoped
  PostgreSQL advisory lock on the key (``pg_try_advisory_xact_lock``): whoever cannot take it
  answers 409 without touching the row. SQLite (``make run``) runs one writing transaction at a
  time, so there a duplicate waits for the first and replays it.

Only successful (2xx) responses are stored: a failed request left nothing behind, so the
client may retry it with the same key once the cause is fixed.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from shop import durability
from shop.api.errors import ApiError, Conflict
from shop.db import insert_unless_exists, update_rows

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# What ``_header_key`` accepts, for the OpenAPI document: printable ASCII, not only spaces.
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]*[!-~][ -~]*$"}


class IdempotencyRecordBase(models.Model):
    class Status(models.TextChoices):
        IN_FLIGHT = "IN_FLIGHT"
        COMPLETED = "COMPLETED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=100, help_text="Who or what the key belongs to, e.g. user:<id>")
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_FLIGHT)
    locked_until = models.DateTimeField()
    expires_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="%(app_label)s_%(class)s_key")]
        indexes = [models.Index(fields=["expires_at"], name="%(app_label)s_%(class)s_exp")]

    def __str__(self):
        return f"{self.scope} {self.key} ({self.status})"


class IdempotencyKeyReused(Exception):
    """The key was first used with a different request."""


class IdempotencyKeyInUse(Exception):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class Claim:
    record_id: uuid.UUID
    completed: IdempotencyRecordBase | None  # set when the work was already done: replay it


def fingerprint(payload) -> str:
    """Stable hash of a request: key order and whitespace do not matter, values do."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fresh(request_hash: str, ttl: timedelta) -> dict:
    now = timezone.now()
    return {
        "request_hash": request_hash,
        "status": IdempotencyRecordBase.Status.IN_FLIGHT,
        "locked_until": now + timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS),
        "expires_at": now + ttl,
        "response_status": None,
        "response_body": "",
        "completed_at": None,
    }


def claim(model, *, using: str, scope: str, key: str, request_hash: str, ttl: timedelta) -> Claim:
    """Become the one owner of ``(scope, key)``, or learn that the work is done or in progress.

    Outside a transaction the claim commits at once (a service claim); inside one it lives and
    dies with the caller's transaction (``run_idempotent``)."""
    fresh = _fresh(request_hash, ttl)
    record_id = uuid.uuid4()
    if insert_unless_exists(model, using=using, conflict=("scope", "key"), id=record_id, scope=scope, key=key, **fresh):
        return Claim(record_id, None)  # the common case: a new key, one statement
    with transaction.atomic(using=using):
        record = model.objects.using(using).select_for_update().get(scope=scope, key=key)
        now = timezone.now()
        if record.expires_at <= now:  # a forgotten key is a new key
            model.objects.using(using).filter(pk=record.pk).update(**fresh)
            return Claim(record.pk, None)
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused(key)
        if record.status == IdempotencyRecordBase.Status.COMPLETED:
            return Claim(record.pk, record)
        if record.locked_until > now:
            raise IdempotencyKeyInUse(key)
        # The previous owner died before finishing; its work was not committed with the key.
        model.objects.using(using).filter(pk=record.pk).update(locked_until=fresh["locked_until"])
        return Claim(record.pk, None)


def _key_lock(model, *, using: str, scope: str, key: str) -> bool:
    """Take the transaction-scoped lock on ``(scope, key)`` without waiting; False if another
    transaction holds it (the first request with this key is still running)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return True  # SQLite: one writing transaction at a time already
    name = f"{model._meta.db_table}\0{scope}\0{key}".encode()
    lock_id = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return cursor.fetchone()[0]


def complete(model, *, using: str, record_id, response_status: int, response_body: str) -> None:
    """Record the outcome; call it inside the transaction that commits the work itself."""
    values = {
        "status": IdempotencyRecordBase.Status.COMPLETED,
        "response_status": response_status,
        "response_body": response_body,
        "completed_at": timezone.now(),
    }
    update_rows(model, using=using, values=values, pk=record_id)  # every checkout command: built once


def release(model, *, using: str, record_id) -> None:
    """Give the key back after a failure, so a retry with the same key runs the work again."""
    with transaction.atomic(using=using):
        model.objects.using(using).filter(pk=record_id, status=IdempotencyRecordBase.Status.IN_FLIGHT).delete()


def prune(model, *, using: str) -> int:
    deleted, _ = model.objects.using(using).filter(expires_at__lte=timezone.now()).delete()
    return deleted


# --- HTTP -------------------------------------------------------------------------------------


def _header_key(request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the draft sends it as a structured-field string
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
            code="IDEMPOTENCY_KEY_INVALID",
        )
    return key


def run_idempotent(
    request, handler, *, model, using: str, required: bool = False, ttl: timedelta | None = None
) -> Response:
    """Run ``handler()`` (a view body returning a DRF Response) at most once per user and key.

    ``ttl``: how long the key is remembered, ``IDEMPOTENCY_KEY_TTL_HOURS`` unless the view says
    (one whose service keeps its own record under a key made from this one must remember it as
    long: a reuse the HTTP layer took for new would meet the service's record of the old request).

    The claim is written in the work's own transaction (see the module docstring): a request
    whose database session died before its work committed left no claim, so
    ``DatabaseRetryMiddleware`` may re-run it and the re-run claims the key afresh; one whose
    session died during that COMMIT may be re-run too, since the key tells the re-run the outcome."""
    key = _header_key(request)
    if key is None:
        if required:
            raise ApiError(f"This operation requires an {HEADER} header.", code="IDEMPOTENCY_KEY_REQUIRED")
        return handler()
    request_hash = fingerprint({"method": request.method, "path": request.path, "body": request.data})
    scope = f"user:{request.user.pk}"
    ttl = ttl or timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    # A re-run after this COMMIT was lost finds the key COMPLETED (replay) or absent (do the work).
    with durability.replayable(using), transaction.atomic(using=using):
        try:
            if not _key_lock(model, using=using, scope=scope, key=key):
                raise IdempotencyKeyInUse(key)
            owned = claim(model, using=using, scope=scope, key=key, request_hash=request_hash, ttl=ttl)
        except IdempotencyKeyReused:
            raise ApiError(
                f"This {HEADER} was already used with a different request.",
                code="IDEMPOTENCY_KEY_REUSED",
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        except IdempotencyKeyInUse:
            error = Conflict(
                f"A request with this {HEADER} is still being processed; retry later.", code="IDEMPOTENCY_KEY_IN_USE"
            )
            error.wait = 1  # the exception handler turns this into Retry-After
            raise error
        if owned.completed is not None:
            done = owned.completed
            return Response(
                json.loads(done.response_body), status=done.response_status, headers={REPLAYED_HEADER: "true"}
            )
        response = handler()
        if status.is_success(response.status_code):
            body = json.dumps(response.data, cls=DjangoJSONEncoder)
            complete(model, using=using, record_id=owned.record_id, response_status=response.status_code,
                     response_body=body)  # fmt: skip
        else:
            model.objects.using(using).filter(pk=owned.record_id).delete()  # not stored: the key may be retried
    return response
