import pytest


def pytest_collection_modifyitems(config, items):
    """Unit tests run without a database: one that needs it belongs in tests/integration."""
    misplaced = [item.nodeid for item in items if "tests/unit/" in item.nodeid and item.get_closest_marker("django_db")]
    if misplaced:
        raise pytest.UsageError("tests/unit must not use the database: " + ", ".join(misplaced))
