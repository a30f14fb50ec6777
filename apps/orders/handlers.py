"""Subscribers of the orders context to other contexts' events (idempotent through the inbox)."""
