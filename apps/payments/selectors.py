"""Reads of the payments context."""
