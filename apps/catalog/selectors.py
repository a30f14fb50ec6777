"""Reads of the catalog context."""
