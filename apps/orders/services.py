"""Writes of the orders context: each function is one use case in one transaction on its alias."""
