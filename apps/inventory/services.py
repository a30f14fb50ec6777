"""Writes of the inventory context: each function is one use case in one transaction on its alias."""
