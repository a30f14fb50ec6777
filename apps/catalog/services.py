"""Writes of the catalog context: each function is one use case in one transaction on its alias."""
