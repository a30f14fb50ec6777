"""Reads of the orders context."""
