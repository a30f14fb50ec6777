"""Subscribers of the catalog context to other contexts' events (idempotent through the inbox)."""
