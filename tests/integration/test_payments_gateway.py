"""Payments facade over the FakeGateway: outcomes, idempotency log, retries and the shared breaker."""

import threading
import time
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from apps.payments import facade
from apps.payments.gateway import fake, get_gateway, resilience
from apps.payments.gateway.resilience import BREAKER_NAME, breaker
from apps.payments.models import IdempotencyLog, Payment, PaymentEvent, PaymentStatus
from tests.conftest import CONTEXT_DBS
from tests.support.worker import wait_until

pytestmark = [
    pytest.mark.django_db(databases=CONTEXT_DBS),
    pytest.mark.usefixtures("closed_breaker"),
]
FAST_RETRIES = {"PAYMENT_RETRY_BASE_SECONDS": 0.001, "PAYMENT_RETRY_MAX_SECONDS": 0.002}


@pytest.fixture
def closed_breaker():
    with override_settings(**FAST_RETRIES):
        breaker().close()
        yield
        breaker().close()


def calls(operation: str) -> int:
    return get_gateway().calls[operation]


def authorize(token="tok_visa", key=None, order_id=None, amount="25.00"):
    return facade.payment_authorize(
        order_id=order_id or uuid.uuid4(),
        amount=Decimal(amount),
        currency="usd",
        token=token,
        idempotency_key=key or str(uuid.uuid4()),
    )


def test_authorize_capture_refund_void_lifecycle():
    order_id = uuid.uuid4()
    result = authorize(order_id=order_id)
    assert (result.status, result.declined) == ("AUTHORIZED", False)

    captured = facade.payment_capture(order_id=order_id, idempotency_key=f"capture:{order_id}")
    assert captured.status == "CAPTURED"
    partial = facade.payment_refund(order_id=order_id, amount=Decimal("10.00"), reason="damaged", idempotency_key="r1")
    assert partial.status == "PARTIALLY_REFUNDED"
    rest = facade.payment_refund(order_id=order_id, amount=None, reason="returned", idempotency_key="r2")
    assert rest.status == "REFUNDED"

    (view,) = facade.payments_for_order(order_id=order_id)
    assert (view.captured_amount, view.refunded_amount, view.currency) == (Decimal("25.00"), Decimal("25.00"), "USD")
    types = list(PaymentEvent.objects.filter(payment_id=view.id).values_list("type", flat=True))
    assert types == ["AUTHORIZED", "CAPTURED", "REFUNDED", "REFUNDED"]

    other = uuid.uuid4()
    authorize(order_id=other)
    assert facade.payment_void(order_id=other, idempotency_key=f"void:{other}").status == "VOIDED"
    assert facade.payment_void(order_id=other, idempotency_key="void-again").status == "VOIDED"  # idempotent by state


def test_reverse_voids_an_authorization_refunds_a_capture_and_leaves_nothing_alone():
    assert facade.payment_reverse(order_id=uuid.uuid4(), reason="x").done == "NONE"

    authorized = uuid.uuid4()
    authorize(order_id=authorized)
    first = facade.payment_reverse(order_id=authorized, reason="x")
    voids = calls("void")
    assert (first.done, first.confirmed) == ("VOIDED", True)
    assert facade.payment_reverse(order_id=authorized, reason="x").done == "NONE"  # a re-sent command
    assert calls("void") == voids

    captured = uuid.uuid4()
    authorize(order_id=captured)
    facade.payment_capture(order_id=captured, idempotency_key=f"capture:{captured}")
    reversal = facade.payment_reverse(order_id=captured, reason="customer request")
    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    (view,) = facade.payments_for_order(order_id=captured)
    assert (view.status, view.refunded_amount) == ("REFUNDED", Decimal("25.00"))


def test_a_void_refused_because_the_provider_captured_on_a_lost_answer_takes_that_capture_and_refunds_it():
    """Found by make chaos: the provider captured, the worker died before our commit, the
    retried capture failed before reaching the provider, and the saga's void of the
    "authorization" was refused for good (the money was taken): the undo never landed."""
    order_id = uuid.uuid4()
    authorize(order_id=order_id)
    (ours,) = facade.payments_for_order(order_id=order_id)
    capture_key = facade.order_payment_key(order_id=order_id, action="capture")
    get_gateway().capture(  # what the provider did on the call whose answer was lost
        reference=ours.provider_reference, amount=ours.amount, currency=ours.currency, idempotency_key=capture_key
    )

    reversal = facade.payment_reverse(order_id=order_id, reason="PAYMENT_FAILED")

    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    (ours,) = facade.payments_for_order(order_id=order_id)
    assert (ours.status, ours.captured_amount, ours.refunded_amount) == ("REFUNDED", Decimal("25.00"), Decimal("25.00"))
    provider = fake.charge_get(ours.provider_reference)
    assert (provider["captured"], provider["refunded"]) == (Decimal("25.00"), Decimal("25.00"))  # captured once


def test_reverse_is_unconfirmed_while_the_provider_cannot_be_reached():
    order_id = uuid.uuid4()
    authorize(order_id=order_id)
    breaker().open()

    reversal = facade.payment_reverse(order_id=order_id, reason="x")

    assert (reversal.done, reversal.confirmed) == ("VOIDED", False)
    assert facade.payments_for_order(order_id=order_id)[0].status == "AUTHORIZED"


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_chargeDeclined", "card_declined"), ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_declines_are_final_not_retried_and_recorded(token, code):
    before = calls("authorize")

    result = authorize(token=token)

    assert (result.status, result.declined, result.decline_code) == ("FAILED", True, code)
    assert calls("authorize") == before + 1  # not retried
    payment = Payment.objects.get(pk=result.payment_id)
    assert payment.status == PaymentStatus.FAILED and payment.decline_code == code
    assert breaker().fail_counter == 0


@override_settings(PAYMENT_RETRY_ATTEMPTS=3)
def test_transient_errors_are_retried_then_reported_without_a_payment():
    before = calls("authorize")

    result = authorize(token="tok_chargeDeclinedProcessingError", key="k-transient")

    assert (result.status, result.declined, result.payment_id) == ("FAILED", False, None)
    assert calls("authorize") == before + 3
    assert not Payment.objects.exists()
    assert not IdempotencyLog.objects.filter(key="k-transient").exists()  # released: the key may be retried


def test_repeated_command_with_the_same_key_reaches_the_provider_once():
    order_id = uuid.uuid4()
    first = authorize(order_id=order_id, key="auth-1")
    before = calls("authorize")
    assert authorize(order_id=order_id, key="auth-1") == replace(first, replayed=True)
    assert calls("authorize") == before

    facade.payment_capture(order_id=order_id, idempotency_key="cap-1")
    refund_calls = calls("refund")
    one = facade.payment_refund(order_id=order_id, amount=Decimal("5.00"), reason="x", idempotency_key="ref-1")
    two = facade.payment_refund(order_id=order_id, amount=Decimal("5.00"), reason="x", idempotency_key="ref-1")
    assert replace(one, replayed=True) == two and calls("refund") == refund_calls + 1
    assert Payment.objects.get(order_id=order_id).refunded_amount == Decimal("5.00")
    log = IdempotencyLog.objects.get(scope="refund", key="ref-1")
    assert log.status == "COMPLETED" and log.request_hash and str(one.payment_id) in log.response_body


def test_an_answer_asked_before_the_transaction_is_recorded_once_per_key_and_a_decline_as_a_decline():
    """The checkout's way (apps.payments.checkout): ask the provider, then record the answer. A repeat
    asks the provider again with the same key, which answers its first result; one payment."""
    order_id = uuid.uuid4()
    request = dict(order_id=order_id, amount=Decimal("25.00"), currency="usd", token="tok_visa", idempotency_key="a-1")
    first = facade.payment_authorize(**request, answer=facade.payment_authorization_ask(**request))
    again = facade.payment_authorize(**request, answer=facade.payment_authorization_ask(**request))
    assert (first.status, again) == ("AUTHORIZED", replace(first, replayed=True))
    assert Payment.objects.get(order_id=order_id).provider_reference  # one row, the provider's reference

    declined = dict(request, order_id=uuid.uuid4(), token="tok_chargeDeclined", idempotency_key="a-2")
    result = facade.payment_authorize(**declined, answer=facade.payment_authorization_ask(**declined))
    assert (result.status, result.declined, result.decline_code) == ("FAILED", True, "card_declined")
    assert IdempotencyLog.objects.get(key="a-2").status == "COMPLETED"  # a decline is final, not retried


def test_the_fake_provider_refuses_a_second_call_with_a_key_still_in_flight_as_stripe_does():
    """The checkout asks before claiming the key: a re-sent command can reach the provider while the
    first call still runs. Acting twice would authorize twice; Stripe answers 409, and so does the
    fake (not counted as a call: nothing was done)."""
    provider = fake.FakeGateway(latency_ms=2000)
    request = dict(amount=Decimal("5.00"), currency="USD", token="tok_visa", idempotency_key="k-twice", metadata={})
    answers = []
    first = threading.Thread(target=lambda: answers.append(provider.authorize(**request)))
    first.start()
    wait_until(lambda: fake.call_log("authorize", "k-twice")["started"] == 1, message="the first call to start")
    with pytest.raises(fake.ProviderKeyInUse, match="in progress"):
        provider.authorize(**request)
    first.join()
    assert provider.authorize(**request) == answers[0]  # once it ended, the key answers its first result
    assert fake.call_log("authorize", "k-twice") == {"started": 2, "ended": 2}
    assert provider.calls["authorize"] == 2


@override_settings(PAYMENT_RETRY_ATTEMPTS=1, PAYMENT_FAKE_SLOW_RATE=1.0, PAYMENT_TIMEOUT_SECONDS=0.2)
def test_an_authorization_slower_than_the_timeout_is_made_all_the_same_and_the_key_answers_it_afterwards():
    """As a real provider, the fake carries on after our client stopped waiting: the timed-out
    authorization is no answer (``provider_unavailable``), yet it was made; the same key answers it."""
    order_id = uuid.uuid4()
    timed_out = authorize(order_id=order_id, key="k-slow")
    assert (timed_out.status, timed_out.declined, timed_out.provider_unavailable) == ("FAILED", False, True)
    assert not Payment.objects.filter(order_id=order_id).exists()

    def asked_again():
        try:
            return authorize(order_id=order_id, key="k-slow")
        except facade.ProviderKeyInUse:  # the provider is still at work on the first call
            return None

    with override_settings(PAYMENT_FAKE_SLOW_RATE=0.0):
        answered = wait_until(asked_again, timeout=10, message="the provider to finish the first call")
    assert answered.status == "AUTHORIZED"
    assert fake.charge_get(Payment.objects.get(order_id=order_id).provider_reference)["status"] == "requires_capture"
    assert fake.call_log("authorize", "k-slow")["started"] == 2  # the second call made nothing new


@override_settings(PAYMENT_RETRY_ATTEMPTS=2)
def test_only_a_failure_the_provider_answered_is_known_to_have_made_nothing():
    """``provider_unavailable``: no answer came back, so the checkout asks again before it unwinds."""
    failed_for_now = authorize(token="tok_chargeDeclinedProcessingError")  # answered: failed, try again
    assert breaker().fail_counter == 0  # the provider answered: no reason to stand aside
    fake.begin_outage(60)
    try:
        refused = authorize()  # the connection is refused
    finally:
        fake.end_outage()
    breaker().open()
    not_called = authorize()
    breaker().close()
    with override_settings(PAYMENT_FAKE_FAILURE_RATE=1.0):
        server_error = authorize()  # a 5xx: the client cannot know whether it acted
    outcomes = [failed_for_now, refused, not_called, server_error]
    assert [(o.status, o.declined) for o in outcomes] == [("FAILED", False)] * 4
    assert [o.provider_unavailable for o in outcomes] == [False, True, True, True]


def test_a_key_the_provider_answered_once_is_known_even_when_a_later_attempt_gets_no_answer(monkeypatch):
    """Attempt one: the provider answers ``processing_error`` and keeps that answer under the key.
    Attempt two: a 5xx. The provider replays a key's first answer, so the second attempt cannot have
    authorized anything: the call is answered (nothing made), not "no answer". Before, only the last
    attempt counted, and a card that fails to process kept a checkout's reversal asking until the
    saga gave up (the short fault campaign's unsettled order)."""
    draws = iter([0.9, 0.1])  # the fault injection's draws: no 5xx, then a 5xx
    monkeypatch.setattr(fake.random, "random", lambda: next(draws))
    key = str(uuid.uuid4())
    with override_settings(PAYMENT_FAKE_FAILURE_RATE=0.5, PAYMENT_RETRY_ATTEMPTS=2, PAYMENT_RETRY_BASE_SECONDS=0):
        outcome = authorize(token="tok_chargeDeclinedProcessingError", key=key)
    assert (outcome.status, outcome.declined, outcome.provider_unavailable) == ("FAILED", False, False)
    assert fake.call_log("authorize", key) == {"started": 2, "ended": 2}
    again = authorize(token="tok_chargeDeclinedProcessingError", key=key)  # the key's answer, replayed
    assert (again.status, again.provider_unavailable) == ("FAILED", False)


def test_same_key_for_a_different_request_raises():
    authorize(key="auth-2", amount="10.00")
    with pytest.raises(facade.IdempotencyKeyReused):
        authorize(key="auth-2", amount="11.00")


def test_refund_cannot_exceed_captured_and_needs_a_capture():
    order_id = uuid.uuid4()
    authorize(order_id=order_id)
    with pytest.raises(facade.PaymentStateError):
        facade.payment_refund(order_id=order_id, amount=None, reason="x", idempotency_key="early")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    with pytest.raises(facade.RefundExceedsCaptured):
        facade.payment_refund(order_id=order_id, amount=Decimal("25.01"), reason="x", idempotency_key="too-much")
    assert Payment.objects.get(order_id=order_id).refunded_amount == 0


def test_capture_without_authorization_is_a_state_error():
    with pytest.raises(facade.PaymentStateError):
        facade.payment_capture(order_id=uuid.uuid4(), idempotency_key="nothing")


def _redis_state() -> bytes | None:
    return redis.Redis.from_url(settings.REDIS_URL).get(f"shop:{BREAKER_NAME}:pybreaker:state")


@override_settings(PAYMENT_BREAKER_FAIL_MAX=3, PAYMENT_BREAKER_RESET_SECONDS=60, PAYMENT_RETRY_ATTEMPTS=1)
def test_breaker_opens_after_the_threshold_fails_fast_and_recovers_after_a_probe():
    with override_settings(PAYMENT_FAKE_FAILURE_RATE=1.0):  # the provider fails (5xx) on every call
        for _ in range(2):
            assert authorize().declined is False
        assert breaker().current_state == "closed"
        authorize()  # third consecutive failure trips it
    assert _redis_state() == b"open"

    # Every process sees it: another thread's breaker object reads the same Redis state.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(breaker().current_state))
    thread.start()
    thread.join()
    assert seen == ["open"]

    before = calls("authorize")
    fast = authorize(token="tok_visa")
    assert (fast.status, fast.declined) == ("FAILED", False) and "unavailable" in fast.message
    assert calls("authorize") == before  # failed fast: the provider was not called

    # Once the reset timeout has passed (the shared record says it opened 61 s ago; a test that
    # slept through a short timeout instead could reach half-open before the fail-fast call),
    # one probe goes through and its success closes the circuit.
    redis.Redis.from_url(settings.REDIS_URL).set(f"shop:{BREAKER_NAME}:pybreaker:opened_at", int(time.time()) - 61)
    assert authorize(token="tok_visa").status == "AUTHORIZED"
    assert _redis_state() == b"closed"


@override_settings(PAYMENT_BREAKER_FAIL_MAX=2)
def test_declines_do_not_trip_the_breaker():
    for _ in range(4):
        assert authorize(token="tok_chargeDeclined").declined is True
    assert breaker().current_state == "closed" and breaker().fail_counter == 0


@override_settings(PAYMENT_BREAKER_FAIL_MAX=3, PAYMENT_BREAKER_RESET_SECONDS=60)
def test_a_provider_outage_fails_every_call_opens_the_breaker_and_ends_when_it_is_over():
    fake.begin_outage(60)
    try:
        for _ in range(3):
            outcome = authorize(token="tok_visa")
            assert (outcome.status, outcome.declined, outcome.provider_unavailable) == ("FAILED", False, True)
        assert _redis_state() == b"open"
    finally:
        fake.end_outage()
    breaker().close()
    assert authorize(token="tok_visa").status == "AUTHORIZED"


class _Counting:
    """A Redis client or cache, counting the calls made on it (each is one round trip)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


def test_a_provider_call_without_latency_reads_and_writes_the_providers_records_once_each(monkeypatch):
    """The fake stands for one request to a remote provider: its own bookkeeping must not be what
    the checkout bench measures (it took 13 Redis round trips per order before)."""
    counting = _Counting(fake.store())
    monkeypatch.setattr(fake, "store", lambda: counting)
    gateway = fake.FakeGateway()
    key = f"k-{uuid.uuid4()}"

    authorized = gateway.authorize(amount=Decimal("9.99"), currency="EUR", token="tok_visa", idempotency_key=key,
                                   metadata={})  # fmt: skip
    captured = gateway.capture(reference=authorized.reference, amount=Decimal("9.99"), currency="EUR",
                               idempotency_key=f"{key}-capture")  # fmt: skip
    again = gateway.capture(reference=authorized.reference, amount=Decimal("9.99"), currency="EUR",
                            idempotency_key=f"{key}-capture")  # fmt: skip

    assert counting.calls == ["get_many", "set_many"] * 3
    assert again == captured  # the provider's idempotency: the first answer, not a second capture
    assert fake.charge_get(authorized.reference)["captured"] == Decimal("9.99")
    assert fake.call_log("capture", f"{key}-capture") == {"started": 2, "ended": 2}


def test_a_successful_call_costs_the_shared_breaker_one_round_trip_and_still_clears_failures_counted_elsewhere(
    monkeypatch,
):
    counting = _Counting(resilience._redis(settings.REDIS_URL))
    monkeypatch.setattr(resilience, "_redis", lambda url: counting)
    monkeypatch.setattr(resilience._local, "breaker", None)  # a breaker over the counting client
    shared = redis.Redis.from_url(settings.REDIS_URL)
    shared.set(f"shop:{BREAKER_NAME}:pybreaker:fail_counter", 2)  # two failures in other processes

    resilience.guarded(lambda: "ok")
    assert shared.get(f"shop:{BREAKER_NAME}:pybreaker:fail_counter") == b"0"  # a success clears them
    counting.calls.clear()
    for _ in range(3):
        resilience.guarded(lambda: "ok")

    assert counting.calls == ["mget"] * 3  # before: a GET of the state and a SET of the count, each
