"""Request-scoped identifiers, kept in contextvars so threads and tasks never mix them up."""

import re
import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_id() -> str:
    return str(uuid.uuid4())


def sanitize_correlation_id(value: str | None) -> str:
    """Accept a client's id only when it is short and harmless; logs must not be injectable."""
    if value and _SAFE_ID.match(value):
        return value
    return new_id()


def get_correlation_id() -> str | None:
    return correlation_id_var.get()


def get_causation_id() -> str | None:
    return causation_id_var.get()
