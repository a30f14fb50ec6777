"""Every gateway call goes through here: retries with backoff and jitter inside a circuit breaker.

* Retries (tenacity): transient errors only, exponential backoff with full jitter, a few
  attempts. A decline is an answer, not a fault: never retried.
* Circuit breaker (pybreaker) around the retried call: after ``PAYMENT_BREAKER_FAIL_MAX``
  consecutive failed calls it opens and calls fail fast; after ``PAYMENT_BREAKER_RESET_SECONDS``
  one probe is let through (half-open) and a success closes it. Declines, permanent errors, a
  key in use, a key spent on a kept 5xx and the provider's own "failed, try again" prove the
  provider is answering, so they count as successes.
* The breaker's state lives in Redis, so every web and worker process sees the same circuit.
  pybreaker holds a lock for the whole guarded call, so each thread gets its own breaker
  object over the shared storage: threads never queue behind one another's network calls.
"""

import threading
import time
from functools import cache

import pybreaker
import redis
import structlog
import tenacity
from django.conf import settings
from opentelemetry.trace import SpanKind

from apps.payments.gateway.base import (
    GatewayUnavailable,
    PaymentDeclined,
    PermanentGatewayError,
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderNoAnswer,
    TransientGatewayError,
)
from shop.observability import metrics, tracing
from shop.observability.metrics import scrape_gauge

logger = structlog.get_logger("apps.payments.gateway")
BREAKER_NAME = "payment-gateway"
_local = threading.local()
_memory_storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


class _Metrics(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state):
        metrics.circuit_state_changes.labels(cb.name, new_state.name).inc()
        logger.warning(
            "circuit_state_changed", breaker=cb.name, old=getattr(old_state, "name", None), new=new_state.name
        )


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


class _SharedStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, one round trip per successful call instead of two: the state
    read brings the failure count along (``MGET``), and a success writes the count back to zero
    only when it was not zero already.

    The count is shared by every process: a failure elsewhere that lands between this read and
    this success is not wiped, so the breaker counts "failures since a success that saw zero"
    rather than strictly consecutive ones, which only opens it a little sooner in a failing
    spell. Each thread has its own breaker, hence its own storage object and read."""

    _seen_failures: int | None = None

    @property
    def state(self) -> str:
        try:
            state, failures = self._redis.mget(self._namespace("state"), self._namespace("fail_counter"))
        except redis.RedisError:
            self.logger.exception("RedisError: falling back to default circuit state")
            self._seen_failures = None
            return self._fallback_circuit_state
        self._seen_failures = int(failures) if failures is not None else None
        if state is None:  # lost (a Redis restart): start again, as pybreaker's own storage does
            self._initialize_redis_state(self._fallback_circuit_state)
            return self._fallback_circuit_state
        return state.decode()

    @state.setter
    def state(self, state: str) -> None:
        pybreaker.CircuitRedisStorage.state.fset(self, state)

    def reset_counter(self) -> None:
        if self._seen_failures != 0:
            super().reset_counter()
        self._seen_failures = 0


def _storage() -> pybreaker.CircuitBreakerStorage:
    if not settings.REDIS_URL:  # embedded single-process mode
        return _memory_storage
    return _SharedStorage(pybreaker.STATE_CLOSED, _redis(settings.REDIS_URL), namespace=f"shop:{BREAKER_NAME}")


def _answered(exc: BaseException) -> bool:
    """The provider's own "failed, try again" (``processing_error``) is the provider answering: a
    card that keeps failing must not open the circuit for every other customer."""
    return isinstance(exc, TransientGatewayError) and not isinstance(exc, ProviderNoAnswer)


def breaker() -> pybreaker.CircuitBreaker:
    config = (settings.REDIS_URL, settings.PAYMENT_BREAKER_FAIL_MAX, settings.PAYMENT_BREAKER_RESET_SECONDS)
    cached = getattr(_local, "breaker", None)
    if cached is None or cached[0] != config:
        instance = pybreaker.CircuitBreaker(
            fail_max=settings.PAYMENT_BREAKER_FAIL_MAX,
            reset_timeout=settings.PAYMENT_BREAKER_RESET_SECONDS,
            exclude=[PaymentDeclined, PermanentGatewayError, ProviderKeyInUse, ProviderKeySpent, _answered],
            listeners=[_Metrics()],
            state_storage=_storage(),
            name=BREAKER_NAME,
        )
        cached = _local.breaker = (config, instance)
    return cached[1]


def _log_retry(state: tenacity.RetryCallState) -> None:
    logger.warning(
        "payment_gateway_retry",
        attempt=state.attempt_number,
        error=str(state.outcome.exception()) if state.outcome else None,
        sleep=round(state.next_action.sleep, 3) if state.next_action else None,
    )


def _retrying() -> tenacity.Retrying:
    return tenacity.Retrying(
        # A spent key replays the same 5xx to every attempt: asking again with it tells nothing.
        retry=tenacity.retry_if_exception_type(TransientGatewayError)
        & tenacity.retry_if_not_exception_type(ProviderKeySpent),
        stop=tenacity.stop_after_attempt(settings.PAYMENT_RETRY_ATTEMPTS),
        wait=tenacity.wait_random_exponential(
            multiplier=settings.PAYMENT_RETRY_BASE_SECONDS, max=settings.PAYMENT_RETRY_MAX_SECONDS
        ),
        before_sleep=_log_retry,
        reraise=True,
    )


def _measured(fn):
    """One provider call: a client span (one trace per order) and its latency by outcome."""
    operation = getattr(fn, "__name__", "call")
    provider = settings.PAYMENT_GATEWAY

    def call(**kwargs):
        started = time.perf_counter()
        outcome = "ok"
        with tracing.span(f"payment.{operation}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("payment.provider", provider)
            try:
                return fn(**kwargs)
            except PaymentDeclined:
                outcome = "declined"
                raise
            except TransientGatewayError:
                outcome = "transient_error"
                raise
            except Exception:
                outcome = "error"
                raise
            finally:
                span.set_attribute("payment.outcome", outcome)
                metrics.provider_latency.labels(provider, operation, outcome).observe(time.perf_counter() - started)

    return call


def guarded(fn, /, **kwargs):
    """Call ``fn(**kwargs)`` with retries inside the breaker; declines, permanent errors, a key
    the provider is still working on (``ProviderKeyInUse``: no answer yet, not retried here) and a
    key it answers with a kept 5xx (``ProviderKeySpent``: never an answer) pass through. The
    breaker takes the last three as the provider answering, except a spent key whose 5xx this call
    got first (``_FailedThenSpent``).

    ``GatewayUnavailable.answered`` says whether an attempt got the provider's answer. One is
    enough: every attempt carries the same idempotency key, and the provider keeps the key's first
    answer and replays it (Stripe: "including 500 errors"), so no later attempt can have made
    anything else. The breaker's error cannot tell: pybreaker also raises it from the failed
    attempt that trips it."""
    measured = _measured(fn)
    answered = False
    failed = False  # an attempt of this call got no answer (the provider failing, or unreachable)

    def attempt(**kwargs):
        nonlocal answered, failed
        try:
            return measured(**kwargs)
        except ProviderKeySpent as exc:
            if failed:  # the replay of this call's own 500: the provider did fail, and the breaker counts it
                raise _FailedThenSpent(exc) from exc
            raise
        except TransientGatewayError as exc:
            answered = answered or not isinstance(exc, ProviderNoAnswer)
            failed = failed or isinstance(exc, ProviderNoAnswer)
            raise

    try:
        return breaker().call(_retrying(), attempt, **kwargs)
    except pybreaker.CircuitBreakerError as exc:
        raise GatewayUnavailable(f"payment provider unavailable (circuit open): {exc}", answered=answered) from exc
    except _FailedThenSpent as exc:
        raise exc.spent from None
    except ProviderKeySpent:
        raise
    except TransientGatewayError as exc:
        raise GatewayUnavailable(f"payment provider unavailable after retries: {exc}", answered=answered) from exc


class _FailedThenSpent(Exception):
    """A spent key whose 5xx this very call received first: counted by the breaker as a failure (it
    is not a ``GatewayError`` the breaker excludes, nor one tenacity retries), then raised to the
    caller as the ``ProviderKeySpent`` it carries. Replays alone, in later calls, are the provider
    answering and count for nothing; without this, a provider failing inside every request would
    never open the circuit, each call ending on a replay."""

    def __init__(self, spent: ProviderKeySpent):
        super().__init__(str(spent))
        self.spent = spent


@scrape_gauge(
    "payment_breaker_state", "Payment-provider circuit (shared by every process): 1 for the current state", ["state"]
)
def _breaker_state():
    current = breaker().current_state
    return [((state,), 1.0 if state == current else 0.0) for state in ("closed", "open", "half-open")]
