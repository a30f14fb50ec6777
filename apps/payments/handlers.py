"""Subscribers of the payments context to other contexts' events (idempotent through the inbox)."""

from apps.payments import checkout  # noqa: F401 - the checkout saga's commands
