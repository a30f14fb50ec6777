"""Subscribers of the payments context to other contexts' events (idempotent through the inbox)."""
