"""Find a context's concrete event tables (declared in that context's models.py)."""

from django.apps import apps


def outbox_model(alias: str):
    return apps.get_model(alias, "OutboxMessage")


def inbox_model(alias: str):
    return apps.get_model(alias, "InboxMessage")


def dead_letter_model(alias: str):
    return apps.get_model(alias, "DeadLetter")
