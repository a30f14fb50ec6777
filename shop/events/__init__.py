"""Domain events: versioned envelopes, transactional outbox, Celery delivery, idempotent inbox.

Public surface for contexts: ``publish``, ``subscriber``, ``register_event``,
``register_upcaster``, ``Envelope``, and ``schemas`` (the JSON Schema fragments every event
schema shares: ``schemas.UUID``, ``schemas.MONEY``).
"""

from shop.events import (
    checks,  # noqa: F401 - registers the system checks
    schemas,
)
from shop.events.bus import subscriber
from shop.events.envelope import Envelope
from shop.events.outbox import publish
from shop.events.registry import register_event, register_upcaster

__all__ = ("Envelope", "publish", "register_event", "register_upcaster", "schemas", "subscriber")
