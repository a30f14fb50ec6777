import pytest


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """E2E runs place hundreds of orders from few users; the limits have their own tests."""
    settings.RATELIMIT_ENABLE = False
