"""Reads of the accounts context."""
