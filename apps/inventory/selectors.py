"""Reads of the inventory context."""
