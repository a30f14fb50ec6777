"""Subscribers of the accounts context to other contexts' events (idempotent through the inbox)."""
