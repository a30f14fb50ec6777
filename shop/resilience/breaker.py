"""Named, process-local circuit breakers (pybreaker underneath).

Why a wrapper: pybreaker's ``CircuitBreaker.call`` holds the breaker's lock for the whole
guarded call, so in a threaded server every call through one breaker would run one at a
time. ``guard(name)`` uses pybreaker's ``calling()`` context manager instead, which only
takes the lock to decide and to record the outcome; the guarded work runs outside it.

Only the exception types passed as ``failures`` count against the circuit (e.g. database
errors for a context the BFF aggregates): a ``NotFound`` or a bug is not a sign that a
dependency is down. These breakers are per process, which suits fast local dependencies;
a breaker shared by all processes (for a slow remote provider) belongs with its caller.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pybreaker
import structlog

from shop.observability import metrics

logger = structlog.get_logger("shop.resilience")

CircuitOpenError = pybreaker.CircuitBreakerError

_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_registry_lock = threading.Lock()


class _StateLogger(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state):
        metrics.circuit_state_changes.labels(cb.name, new_state.name).inc()
        metrics.circuit_open.labels(cb.name).set(1 if new_state.name == pybreaker.STATE_OPEN else 0)
        log = logger.warning if new_state.name == pybreaker.STATE_OPEN else logger.info
        log("circuit_state_change", breaker=cb.name, old=getattr(old_state, "name", None), new=new_state.name)


def get_breaker(
    name: str,
    *,
    fail_max: int = 5,
    reset_timeout: float = 30.0,
    failures: tuple[type[BaseException], ...] = (Exception,),
) -> pybreaker.CircuitBreaker:
    """The breaker called ``name``; created on first use with these parameters, then shared."""
    breaker = _breakers.get(name)
    if breaker is not None:
        return breaker
    with _registry_lock:
        if name not in _breakers:
            _breakers[name] = pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                exclude=[lambda exc: not isinstance(exc, failures)],
                listeners=[_StateLogger()],
                name=name,
                throw_new_error_on_trip=False,
            )
        return _breakers[name]


@contextmanager
def guard(name: str, **options) -> Iterator[None]:
    """Run the block through breaker ``name``; raises ``CircuitOpenError`` while it is open."""
    with get_breaker(name, **options).calling():
        yield


def reset_all() -> None:
    """Close every breaker (tests, or an operator after fixing a dependency)."""
    for breaker in list(_breakers.values()):
        breaker.close()
