"""The checkout saga: an orchestrator persisted in the orders database.

See ``orchestrator.py`` for the state machine and docs/checkout-saga.md for the story.
"""
