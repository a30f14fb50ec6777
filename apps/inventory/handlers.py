"""Subscribers of the inventory context to other contexts' events (idempotent through the inbox)."""
