"""``make chaos`` waits as long as the saga is built to take, and no longer.

The short run once failed on its own bound: a void whose first two attempts met the provider
outage and then the open breaker, and whose third failed on the provider's random failures,
ended FAILED and landed on its re-ask, after a bound that covered only one step's attempts.
"""

from datetime import timedelta

from django.test import override_settings

from apps.orders.saga.orchestrator import _step_timeout, _undo_retry_interval
from bench.chaos import settle_bound


def _every_attempt_of_one_step(attempts: int) -> timedelta:
    """The orchestrator's deadlines for attempts 1..A of one step: T, 2T, ... AT."""
    return sum((_step_timeout() * attempt for attempt in range(1, attempts + 1)), timedelta())


@override_settings(
    SAGA_STEP_TIMEOUT_SECONDS=30, SAGA_MAX_STEP_ATTEMPTS=3, SAGA_SWEEP_SECONDS=5, EVENTS_REDELIVER_AFTER_SECONDS=10
)
def test_the_settle_bound_outlasts_a_step_and_its_undo_running_out_of_attempts_and_one_undo_re_ask():
    recovery = 2 * _every_attempt_of_one_step(3) + _undo_retry_interval()

    assert settle_bound() >= recovery.total_seconds() + 2 * 5  # and a sweep's lateness for each phase
    assert settle_bound() - recovery.total_seconds() <= 2 * 5 + 2 * 10  # sweeps and redeliveries, nothing more
