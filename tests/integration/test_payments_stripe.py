"""StripeGateway through the official library against a local stub of the Stripe API (never the internet)."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.orders.saga.commands import PAYMENT_REVERSAL_REQUESTED
from apps.payments import events, facade, services
from apps.payments.errors import RefundExceedsCaptured
from apps.payments.gateway import (
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderNoAnswer,
    TransientGatewayError,
    get_gateway,
    guarded,
)
from apps.payments.gateway.resilience import breaker
from apps.payments.models import Payment
from shop.events import Envelope, inbox
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.support.stripe_stub import stripe_stub_running
from tests.support.worker import wait_until

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture
def stripe_stub():
    with (
        stripe_stub_running() as (stub, url),
        override_settings(
            PAYMENT_GATEWAY="stripe",
            STRIPE_API_KEY="sk_test_stub",
            STRIPE_API_BASE=url,
            PAYMENT_TIMEOUT_SECONDS=0.5,
            PAYMENT_RETRY_ATTEMPTS=2,
            PAYMENT_RETRY_BASE_SECONDS=0.001,
            PAYMENT_RETRY_MAX_SECONDS=0.002,
        ),
    ):
        breaker().close()
        yield stub
        breaker().close()


def _authorize(order_id, token="tok_visa", key="auth"):
    return facade.payment_authorize(
        order_id=order_id, amount=Decimal("12.34"), currency="USD", token=token, idempotency_key=key
    )


def _stripe_reports_refunded(payment: Payment, total: Decimal, *, event_id: str) -> str:
    """Stripe's charge.refunded report (webhook) of ``total`` refunded in all, as recorded: the outcome."""
    report = services.ProviderReport(
        event_id=event_id, type="charge.refunded", reference=payment.provider_reference, ledger_type="REFUNDED",
        amount=total, details={},
    )  # fmt: skip
    return services.provider_report_record(provider="stripe", report=report)


def test_full_cycle_passes_amounts_in_cents_and_idempotency_keys(stripe_stub):
    assert get_gateway().name == "stripe"
    order_id = uuid.uuid4()

    assert _authorize(order_id, key="auth-1").status == "AUTHORIZED"
    assert facade.payment_capture(order_id=order_id, idempotency_key="cap-1").status == "CAPTURED"
    refund = facade.payment_refund(order_id=order_id, amount=Decimal("2.34"), reason="x", idempotency_key="ref-1")
    assert refund.status == "PARTIALLY_REFUNDED"

    create, capture, refund_request = stripe_stub.requests
    assert create["path"] == "/v1/payment_intents" and create["key"] == "auth-1"
    assert create["form"]["amount"] == "1234" and create["form"]["capture_method"] == "manual"
    assert create["form"]["currency"] == "usd"
    assert capture["path"].endswith("/capture") and capture["key"] == "cap-1"
    assert refund_request["form"]["amount"] == "234" and refund_request["key"] == "ref-1"


def test_the_ledger_records_the_amount_stripe_received_not_the_amount_requested(stripe_stub):
    """Finding 7: the adapter recorded the requested amount as captured. Stripe captured less
    (10.00 of 12.34): the payment says 10.00, and no more than that can be refunded."""
    stripe_stub.received_cents = 1000
    order_id = uuid.uuid4()
    _authorize(order_id)
    assert facade.payment_capture(order_id=order_id, idempotency_key="cap").status == "CAPTURED"

    payment = Payment.objects.get(order_id=order_id)
    assert payment.captured_amount == Decimal("10.00")
    assert payment.events.get(type="CAPTURED").amount == Decimal("10.00")
    with pytest.raises(RefundExceedsCaptured):
        facade.payment_refund(order_id=order_id, amount=Decimal("12.34"), reason="x", idempotency_key="r")


def test_repeated_refund_with_the_same_key_calls_stripe_once(stripe_stub):
    order_id = uuid.uuid4()
    _authorize(order_id)
    facade.payment_capture(order_id=order_id, idempotency_key="cap")

    for _ in range(3):
        facade.payment_refund(order_id=order_id, amount=None, reason="x", idempotency_key="refund-once")

    assert [r["path"] for r in stripe_stub.requests].count("/v1/refunds") == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_chargeDeclined", "generic_decline"), ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_card_errors_are_declines_and_not_retried(stripe_stub, token, code):
    result = _authorize(uuid.uuid4(), token=token)

    assert (result.status, result.declined, result.decline_code) == ("FAILED", True, code)
    assert len(stripe_stub.requests) == 1


def test_processing_error_is_retried_with_the_same_key(stripe_stub):
    result = _authorize(uuid.uuid4(), token="tok_chargeDeclinedProcessingError", key="auth-retry")

    assert (result.status, result.declined) == ("FAILED", False)
    assert [r["key"] for r in stripe_stub.requests] == ["auth-retry", "auth-retry"]


def test_timeout_is_enforced_and_a_retry_finding_stripe_still_at_work_is_no_answer_until_it_finished(stripe_stub):
    """Our client gives up at PAYMENT_TIMEOUT_SECONDS (0.5 s) while Stripe works on (1 s): the retry
    with the same key gets Stripe's 409. No answer yet: nothing recorded, the key released, because
    answering FAILED would cancel an order Stripe is authorizing. Asked again once Stripe finished,
    the key answers with that first request's authorization, the only one Stripe made."""
    stripe_stub.slow_seconds = 1.0
    order_id = uuid.uuid4()
    with pytest.raises(ProviderKeyInUse):
        _authorize(order_id, key="auth-slow")
    assert [r["key"] for r in stripe_stub.requests] == ["auth-slow", "auth-slow"]  # cut off, then 409
    assert not Payment.objects.filter(order_id=order_id).exists()

    wait_until(lambda: "auth-slow" in stripe_stub.answers, message="Stripe to finish the first request")
    assert _authorize(order_id, key="auth-slow").status == "AUTHORIZED"
    assert Payment.objects.get(order_id=order_id).provider_reference == stripe_stub.answers["auth-slow"][1]["id"]


def test_a_request_whose_key_stripe_is_still_working_on_is_not_taken_as_a_refusal(stripe_stub):
    """Stripe answers 409 to a second request with a key in use: a re-sent authorization overtaking
    the first (the checkout asks the provider before any claim of ours). Not a refusal, which
    would cancel an order the provider authorized: the delivery is retried and then gets the
    first request's answer (tests/integration/test_payments_authorization_overtaken.py)."""
    stripe_stub.slow_seconds = 2.0  # Stripe still works on it after our client gave up (0.5 s)
    gateway = get_gateway()
    request = dict(amount=Decimal("12.34"), currency="USD", token="tok_visa", idempotency_key="k-409", metadata={})
    outcomes = []

    def first_request():
        try:
            gateway.authorize(**request)
        except TransientGatewayError as exc:  # our client gave up at 0.5 s; Stripe works on
            outcomes.append(exc)

    first = threading.Thread(target=first_request)
    first.start()
    wait_until(lambda: len(stripe_stub.requests) == 1, message="the first request to reach Stripe")
    with pytest.raises(ProviderKeyInUse):
        gateway.authorize(**request)
    first.join()
    assert len(outcomes) == 1 and [r["key"] for r in stripe_stub.requests] == ["k-409", "k-409"]


def test_a_timeout_and_a_refused_connection_are_no_answer_and_a_processing_error_is_one(stripe_stub):
    """What the saga does after a failed authorization hangs on this: without an answer the
    checkout asks Stripe again with the key before it unwinds, and voids what Stripe made
    (``checkout._unanswered_authorization_settle``); Stripe's own "failed, try again" needs nothing."""
    failed = _authorize(uuid.uuid4(), token="tok_chargeDeclinedProcessingError", key="auth-processing")
    assert (failed.status, failed.declined, failed.provider_unavailable) == ("FAILED", False, False)

    stripe_stub.slow_seconds = 1.0
    with override_settings(PAYMENT_RETRY_ATTEMPTS=1):
        timed_out = _authorize(uuid.uuid4(), key="auth-timeout")
    assert timed_out.provider_unavailable
    with pytest.raises(ProviderNoAnswer):
        get_gateway().authorize(amount=Decimal("1.00"), currency="USD", token="tok_visa", idempotency_key="k-x",
                                metadata={})  # fmt: skip

    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9"):  # the discard port: nothing listens
        refused = _authorize(uuid.uuid4(), key="auth-refused")
        with pytest.raises(ProviderNoAnswer):
            get_gateway().authorize(amount=Decimal("1.00"), currency="USD", token="tok_visa", idempotency_key="k-y",
                                    metadata={})  # fmt: skip
    assert refused.provider_unavailable


def _creates(stub) -> list[dict]:
    return [r for r in stub.requests if r["path"] == "/v1/payment_intents"]


def test_a_500_stripe_replays_to_the_key_is_not_retried_and_the_breaker_counts_only_the_first(stripe_stub):
    """Stripe keeps a 500's response under the idempotency key and replays it to every later request
    with the key (``Idempotent-Replayed: true``). The first attempt's 500 is retried once; the replay
    ends the call: asking again can never tell what the first request did. The breaker counts that
    call's 500 as the provider failing, but a later call that only gets the replay is the provider
    answering (a success, which clears the count of consecutive failures). The key's outcome is
    recorded, so a repeat of the command asks Stripe nothing. Before, every attempt of every call
    asked again (four here), and each call counted towards opening the circuit for every customer."""
    stripe_stub.failures_inside = 1
    order_id = uuid.uuid4()
    with override_settings(PAYMENT_RETRY_ATTEMPTS=4, PAYMENT_BREAKER_FAIL_MAX=3):
        outcome = _authorize(order_id, key="auth-500")
        assert breaker()._state_storage.counter == 1
        request = dict(amount=Decimal("12.34"), currency="USD", token="tok_visa", idempotency_key="auth-500")
        with pytest.raises(ProviderKeySpent):
            guarded(get_gateway().authorize, **request, metadata={"order_id": str(order_id)})
        assert breaker()._state_storage.counter == 0  # the replay alone is an answer: a success
    assert (outcome.status, outcome.provider_unavailable, outcome.decline_code) == ("FAILED", True, facade.KEY_SPENT)
    assert [r["key"] for r in _creates(stripe_stub)] == ["auth-500"] * 3  # the 500, its replay; the direct call

    again = _authorize(order_id, key="auth-500")
    assert (again.status, again.provider_unavailable, again.decline_code) == ("FAILED", True, facade.KEY_SPENT)
    assert len(_creates(stripe_stub)) == 3


def test_an_authorization_stripe_made_behind_a_kept_500_is_found_by_its_search_recorded_and_voided(stripe_stub):
    stripe_stub.failures_inside = 1  # Stripe made the PaymentIntent, then failed inside: a 500, kept
    order_id = uuid.uuid4()
    assert _authorize(order_id, key="auth-made").decline_code == facade.KEY_SPENT
    [intent] = stripe_stub.intents.values()
    assert intent["metadata"] == {"order_id": str(order_id)}

    assert facade.payment_provider_reconcile(order_id=order_id, amount=Decimal("12.34"), currency="USD") is None
    [search] = [r for r in stripe_stub.requests if r["path"] == "/v1/payment_intents/search"]
    assert search["form"]["query"] == [f"metadata['order_id']:'{order_id}'"]
    payment = Payment.objects.get(order_id=order_id, status="AUTHORIZED")
    assert (payment.provider_reference, payment.amount) == (intent["id"], Decimal("12.34"))
    assert payment.events.get().type == "AUTHORIZED"

    assert facade.payment_provider_reconcile(order_id=order_id, amount=Decimal("12.34"), currency="USD") is None
    assert Payment.objects.filter(status="AUTHORIZED").count() == 1  # found once, recorded once
    assert facade.payment_reverse(order_id=order_id, reason="x").done == "VOIDED"
    assert stripe_stub.intents[intent["id"]]["status"] == "canceled"


def test_a_search_that_finds_nothing_is_no_answer_until_stripe_has_had_time_to_index(stripe_stub):
    """Stripe's search finds a payment about a minute after it was made (longer in an incident):
    finding nothing at once does not prove the failed request made nothing."""
    stripe_stub.failures_inside = 1
    stripe_stub.failure_after_work = False  # Stripe failed before making anything
    order_id = uuid.uuid4()
    assert _authorize(order_id, key="auth-none").decline_code == facade.KEY_SPENT

    reconcile = dict(order_id=order_id, amount=Decimal("12.34"), currency="USD")
    assert "not have indexed" in facade.payment_provider_reconcile(**reconcile)
    with override_settings(PAYMENT_PROVIDER_SEARCH_LAG_SECONDS=0):
        assert facade.payment_provider_reconcile(**reconcile) is None
    assert not Payment.objects.filter(order_id=order_id, status="AUTHORIZED").exists()


def test_a_capture_behind_a_kept_500_is_read_from_stripes_record_and_refunded_when_the_order_unwinds(stripe_stub):
    """Stripe captured (10.00 of the 12.34 authorized), then failed inside with a 500 it replays to the
    capture's key. The reversal's void is refused (the PaymentIntent is no longer awaiting capture),
    and asking the capture's key again replays the 500. Stripe's search still lists the
    PaymentIntent as it was made; read by its id, it succeeded, for 10.00, which is recorded and
    refunded. Before, the reversal waited on the capture's key for good. (The capture is made with
    the bare service, which does not read Stripe's record, so that the reversal is what finds it.)"""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.received_cents = "capture", 1, 1000
    captured = services.payment_capture(order_id=order_id, idempotency_key=f"order:{order_id}:capture")
    assert (captured.status, captured.provider_unavailable, captured.decline_code) == ("FAILED", True, facade.KEY_SPENT)

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.captured_amount, payment.refunded_amount) == (
        "REFUNDED", Decimal("10.00"), Decimal("10.00"),
    )  # fmt: skip
    assert [e.type for e in payment.events.order_by("id")] == ["AUTHORIZED", "CAPTURED", "REFUNDED"]
    [refund] = [r for r in stripe_stub.requests if r["path"] == "/v1/refunds"]
    assert refund["form"]["amount"] == "1000"


def test_a_payment_still_in_progress_at_stripe_is_waited_for_and_a_refused_search_lets_the_reversal_go_on(
    stripe_stub, caplog
):
    stripe_stub.failures_inside = 1
    order_id = uuid.uuid4()
    assert _authorize(order_id, key="auth-3ds").decline_code == facade.KEY_SPENT
    [intent] = stripe_stub.intents.values()
    intent["status"] = "requires_action"  # 3-D Secure under way: neither held nor failed yet
    reconcile = dict(order_id=order_id, amount=Decimal("12.34"), currency="USD")
    assert "in progress" in facade.payment_provider_reconcile(**reconcile)

    stripe_stub.search_refused = True  # a restricted key: waiting would never help
    assert facade.payment_provider_reconcile(**reconcile) is None
    assert "payment_provider_search_refused" in caplog.text


@pytest.mark.parametrize("cancelled_before_the_500", [True, False])
def test_a_void_behind_a_kept_500_is_read_from_stripes_record_and_asked_again_under_a_new_key_if_it_did_not_happen(
    stripe_stub, cancelled_before_the_500
):
    """Stripe fails inside the reversal's void with a 500 it replays to the void's key. Read by its id,
    the PaymentIntent is either cancelled (the void happened before the 500: recorded VOIDED) or still
    awaiting capture (the void is asked again under a new key). Before, the reversal waited on the
    void's key until the saga ended FAILED, and the authorization stayed on the card."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside = "cancel", 1
    stripe_stub.failure_after_work = cancelled_before_the_500

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("VOIDED", True)
    [intent] = stripe_stub.intents.values()
    assert intent["status"] == "canceled"
    cancels = [r["key"] for r in stripe_stub.requests if r["path"].endswith("/cancel")]
    void_key = f"order:{order_id}:void"
    assert cancels[:2] == [void_key, void_key]  # the 500, then its replay
    assert len(cancels) == (2 if cancelled_before_the_500 else 3)
    if not cancelled_before_the_500:
        assert cancels[2].startswith(f"{void_key}:after-500:")
    payment = Payment.objects.get(order_id=order_id)
    assert payment.status == "VOIDED"


def test_a_void_behind_a_kept_500_on_a_payment_stripe_had_captured_is_refunded_not_captured_again(stripe_stub):
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    [intent] = stripe_stub.intents.values()
    intent.update(status="succeeded", amount_received=1234)  # captured at Stripe; our answer was lost
    stripe_stub.failing_operation, stripe_stub.failures_inside = "cancel", 1

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    paths = [r["path"] for r in stripe_stub.requests]
    assert not [path for path in paths if path.endswith("/capture")]
    assert paths.count("/v1/refunds") == 1
    assert Payment.objects.get(order_id=order_id).status == "REFUNDED"


def test_a_void_behind_a_kept_500_is_read_by_its_id_even_when_stripe_refuses_the_search(stripe_stub):
    """A restricted key may not search PaymentIntents; the order's own authorization is still read by
    its id, and the void Stripe made before its 500 is recorded, not asked again."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.search_refused = "cancel", 1, True

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("VOIDED", True)
    assert len([r for r in stripe_stub.requests if r["path"].endswith("/cancel")]) == 2  # the 500, its replay
    assert Payment.objects.get(order_id=order_id).status == "VOIDED"


def _keys(stub, suffix: str) -> list[str]:
    return [r["key"] for r in stub.requests if r["path"].endswith(suffix)]


@pytest.mark.parametrize("captured_before_the_500", [True, False])
def test_the_checkouts_capture_behind_a_kept_500_is_settled_by_stripes_record_or_asked_again_under_a_new_key(
    stripe_stub, captured_before_the_500
):
    """Stripe fails inside the checkout's capture with a 500 it replays to the capture's key. Read by its
    id, the PaymentIntent either succeeded (recorded CAPTURED at what Stripe received) or still awaits
    capture (captured again under a new key: Stripe refuses a second capture of one PaymentIntent).
    Before, the capture answered "no answer" to every ask until the saga gave up and unwound a
    checkout whose money Stripe may already have taken."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside = "capture", 1
    stripe_stub.failure_after_work = captured_before_the_500
    capture_key = f"order:{order_id}:capture"

    captured = facade.payment_capture(order_id=order_id, idempotency_key=capture_key)
    assert (captured.status, captured.provider_unavailable) == ("CAPTURED", False)
    keys = _keys(stripe_stub, "/capture")
    assert keys[:2] == [capture_key, capture_key]  # the 500, then its replay
    assert len(keys) == (2 if captured_before_the_500 else 3)
    if not captured_before_the_500:
        assert keys[2].startswith(f"{capture_key}:after-500:")
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.captured_amount) == ("CAPTURED", Decimal("12.34"))
    assert [e.type for e in payment.events.order_by("id")] == ["AUTHORIZED", "CAPTURED"]


@pytest.mark.parametrize("refunded_before_the_500", [True, False])
def test_a_refund_behind_a_kept_500_is_read_from_stripes_record_and_made_again_under_a_new_key_if_it_did_not_happen(
    stripe_stub, refunded_before_the_500
):
    """Stripe fails inside the reversal's refund with a 500 it replays to the refund's key. Its record of
    the PaymentIntent (the charge's ``amount_refunded``) says whether that refund happened: if it did,
    it is recorded once; if not, everything still unrefunded is refunded under a new key, which
    cannot refund twice (Stripe refuses to refund more than it received). Before, the reversal
    waited on the refund's key until the saga ended FAILED, and the customer's money stayed taken."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    stripe_stub.failing_operation, stripe_stub.failures_inside = "refunds", 1
    stripe_stub.failure_after_work = refunded_before_the_500

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    [intent] = stripe_stub.intents.values()
    assert intent["refunded"] == 1234
    keys = _keys(stripe_stub, "/v1/refunds")
    refund_key = f"order:{order_id}:refund:0.00"  # keyed by what our record shows refunded
    assert keys[:2] == [refund_key, refund_key]
    assert len(keys) == (2 if refunded_before_the_500 else 3)
    if not refunded_before_the_500:
        assert keys[2].startswith(f"{refund_key}:after-500:")
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.refunded_amount) == ("REFUNDED", Decimal("12.34"))
    refunds = [e for e in payment.events.order_by("id") if e.type == "REFUNDED"]
    assert [e.amount for e in refunds] == [Decimal("12.34")]
    assert (refunds[0].data.get("found") == "provider record") is refunded_before_the_500


def test_a_refund_asked_again_after_a_kept_500_that_stripe_refuses_for_a_reason_of_its_own_says_so(stripe_stub):
    """The refund's key is spent and Stripe's record shows nothing refunded, but it refuses the refund
    under the new key too (here: the charge no longer holds the money, as after a dispute). That
    refusal is the answer, for staff to see, not an endless wait on the provider."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    [intent] = stripe_stub.intents.values()
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.failure_after_work = "refunds", 1, False
    intent["amount_received"] = 0  # the stub then refuses every refund, and still reports none made

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed, reversal.provider_unavailable) == ("REFUNDED", False, False)
    assert "refused" in reversal.message
    assert len(_keys(stripe_stub, "/v1/refunds")) == 3
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"


def test_a_refund_behind_a_kept_500_refunds_the_rest_when_stripes_record_shows_only_a_partial_refund(stripe_stub):
    """A dashboard refund of 2.34 that no webhook has reported yet, then the reversal's refund fails inside
    Stripe with a 500 it replays, before refunding anything. The record shows 2.34 refunded: that is
    recorded, and the 10.00 still unrefunded is refunded under a new key. A changed status alone is
    not the spent call done: before, the reversal stopped at PARTIALLY_REFUNDED and was retried
    until its message became a dead letter."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    [intent] = stripe_stub.intents.values()
    intent["refunded"] = 234
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.failure_after_work = "refunds", 1, False

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    assert intent["refunded"] == 1234
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.refunded_amount) == ("REFUNDED", Decimal("12.34"))
    refunds = payment.events.filter(type="REFUNDED").order_by("id")
    assert [(e.amount, e.data.get("found")) for e in refunds] == [
        (Decimal("2.34"), "provider record"), (Decimal("10.00"), None),
    ]  # fmt: skip


def test_a_void_asked_again_after_a_kept_500_and_refused_for_a_state_stripes_record_does_not_show_waits(stripe_stub):
    """The void's key is spent; the record still shows the authorization awaiting capture, yet Stripe
    refuses the void under a new key as if it were no longer (its record behind a concurrent call).
    The reversal waits for the record; it never turns to the checkout's capture key, which would take
    the money it meant to release (to refund it later)."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.failure_after_work = "cancel", 1, False
    stripe_stub.cancel_refused = True

    reversal = facade.payment_reverse(order_id=order_id, reason="x")
    assert (reversal.done, reversal.confirmed, reversal.provider_unavailable) == ("VOIDED", False, True)
    assert not _keys(stripe_stub, "/capture")
    [intent] = stripe_stub.intents.values()
    assert intent["status"] == "requires_capture"
    assert Payment.objects.get(order_id=order_id).status == "AUTHORIZED"


def test_a_void_asked_again_after_a_kept_500_voids_the_payment_it_was_for_not_one_the_search_adds(stripe_stub):
    """The reversal's void of the order's authorization fails inside Stripe before voiding, and Stripe's
    search also finds an older authorization of the order that we never recorded. The void asked
    again under a new key acts on the payment the spent key was for, not on the row the search just
    added (the newest)."""
    order_id = uuid.uuid4()
    older = "pi_older001"
    stripe_stub.intents[older] = {"id": older, "object": "payment_intent", "status": "requires_capture",
                                  "amount": 1234, "currency": "usd", "metadata": {"order_id": str(order_id)},
                                  "refunded": 0}  # fmt: skip
    stripe_stub.indexed[older] = dict(stripe_stub.intents[older])
    ours = _authorize(order_id, key="auth")
    stripe_stub.failing_operation, stripe_stub.failures_inside, stripe_stub.failure_after_work = "cancel", 1, False

    facade.payment_reverse(order_id=order_id, reason="x")
    payment = Payment.objects.get(pk=ours.payment_id)
    assert payment.status == "VOIDED"
    assert stripe_stub.intents[payment.provider_reference]["status"] == "canceled"
    cancelled = [r["path"] for r in stripe_stub.requests if r["path"].endswith("/cancel")]
    assert cancelled == [f"/v1/payment_intents/{payment.provider_reference}/cancel"] * 3


def test_a_refund_whose_answer_was_lost_and_reported_by_stripe_is_counted_once_when_its_key_replays_it(stripe_stub):
    """A staff refund of 2.00 outlasts our timeout while Stripe makes it; Stripe's refund report (the
    charge.refunded webhook) then records it by its running total. Asked again with the same key,
    Stripe replays the refund's success: counted by the charge's running total in that answer, it
    adds nothing. Before, the replay added 2.00 again (4.00 refunded in our record, 2.00 at Stripe),
    and a later refund of everything left would have asked for 2.00 too little."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    stripe_stub.slow_seconds = 1.0  # our client gives up at 0.5 s; Stripe refunds all the same
    lost = facade.payment_refund(order_id=order_id, amount=Decimal("2.00"), reason="x", idempotency_key="ref-slow")
    assert (lost.status, lost.provider_unavailable) == ("FAILED", True)
    wait_until(lambda: "ref-slow" in stripe_stub.answers, message="Stripe to finish the refund")
    stripe_stub.slow_seconds = 0.0
    payment = Payment.objects.get(order_id=order_id)
    assert _stripe_reports_refunded(payment, Decimal("2.00"), event_id="evt_refunded") == "refunded 2.00"

    replayed = facade.payment_refund(order_id=order_id, amount=Decimal("2.00"), reason="x", idempotency_key="ref-slow")
    assert replayed.status == "PARTIALLY_REFUNDED"
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("2.00")
    assert [e.amount for e in payment.events.filter(type="REFUNDED")] == [Decimal("2.00")]
    assert stripe_stub.intents[payment.provider_reference]["refunded"] == 200
    assert {r["form"].get("expand[0]") for r in stripe_stub.requests if r["path"] == "/v1/refunds"} == {"charge"}


def test_a_refund_stripe_answers_with_a_dashboard_refund_not_yet_reported_records_each_as_what_it_is(stripe_stub):
    """Staff refunded 1.00 in Stripe's dashboard; its report has not arrived when staff refund 2.00
    through our API. Stripe's answer counts 3.00 refunded in all: the 1.00 is recorded as Stripe's
    own (``source: stripe``), the 2.00 as ours with its reason, and the report, when it comes, adds
    nothing."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    payment = Payment.objects.get(order_id=order_id)
    stripe_stub.intents[payment.provider_reference]["refunded"] = 100

    refund = facade.payment_refund(order_id=order_id, amount=Decimal("2.00"), reason="damaged", idempotency_key="r")
    assert refund.status == "PARTIALLY_REFUNDED"
    rows = [
        (e.amount, e.data.get("source"), e.data.get("reason"))
        for e in payment.events.filter(type="REFUNDED").order_by("id")
    ]
    assert rows == [(Decimal("1.00"), "stripe", None), (Decimal("2.00"), None, "damaged")]
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("3.00")
    assert _stripe_reports_refunded(payment, Decimal("1.00"), event_id="evt_dashboard") == "already recorded"


def test_a_refund_refusal_that_stripes_record_does_not_explain_is_the_answer_and_nothing_is_refunded_again(
    stripe_stub,
):
    """A disputed charge: Stripe refuses every refund, and its record shows nothing more refunded than ours.
    The refusal is what the reversal reports; no second refund is asked for under another key."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    stripe_stub.refund_refused = True

    reversal = facade.payment_reverse(order_id=order_id, reason="x")

    assert (reversal.done, reversal.confirmed, reversal.provider_unavailable) == ("REFUNDED", False, False)
    assert "disputed" in reversal.message
    refunds = [r["key"] for r in stripe_stub.requests if r["path"] == "/v1/refunds"]
    assert refunds == [f"order:{order_id}:refund:0.00"]
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.refunded_amount) == ("CAPTURED", Decimal("0.00"))


def test_a_reversal_refused_for_a_dashboard_refund_not_yet_reported_reads_stripes_record_and_refunds_the_rest_at_once(
    stripe_stub,
):
    """Staff refunded 2.34 in Stripe's dashboard; its report has not arrived when the reversal asks to
    refund everything, 12.34: Stripe refuses more than is left. Stripe's record of the payment (read
    by id) shows the 2.34, which is recorded, and the 10.00 left is refunded at once under a key of its
    own. Before, the reversal waited for the dashboard refund's report (webhook), which may never come,
    the customer's 10.00 still taken meanwhile; the report arriving late changes nothing."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    facade.payment_capture(order_id=order_id, idempotency_key="cap")
    payment = Payment.objects.get(order_id=order_id)
    intent = stripe_stub.intents[payment.provider_reference]
    intent["refunded"] = 234

    reversal = facade.payment_reverse(order_id=order_id, reason="x")

    assert (reversal.done, reversal.confirmed) == ("REFUNDED", True)
    assert intent["refunded"] == 1234
    refunds = [(r["key"], r["form"]["amount"]) for r in stripe_stub.requests if r["path"] == "/v1/refunds"]
    first = f"order:{order_id}:refund:0.00"
    assert refunds == [(first, "1234"), (f"{first}:rest-after-refusal:2.34", "1000")]
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("REFUNDED", Decimal("12.34"))
    refunded_entries = payment.events.filter(type="REFUNDED").values_list("amount", flat=True)
    assert sorted(refunded_entries) == [Decimal("2.34"), Decimal("10.00")]

    _stripe_reports_refunded(payment, Decimal("2.34"), event_id="evt_dashboard")
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("REFUNDED", Decimal("12.34"))
    assert payment.events.filter(type="REFUNDED").count() == 2


def _reversal_command(order_id) -> dict:
    """The saga's reversal command for the order, as a delivery carries it (a new event id each time)."""
    data = {"orderId": str(order_id), "reason": "PAYMENT_FAILED"}
    return Envelope(type=PAYMENT_REVERSAL_REQUESTED, version=1, aggregate_id=str(order_id), data=data).to_wire()


def test_a_reversal_whose_refund_stripe_refuses_keeps_the_capture_it_found_and_leaves_the_saga_to_re_ask(stripe_stub):
    """The checkout's capture timed out on our side while Stripe captured; the saga unwinds. The reversal's
    void is refused (no longer awaiting capture), Stripe's record shows the capture, which is recorded,
    and the refund is refused (the charge is disputed). The delivery ends without a reply and keeps
    what it learned: the payment CAPTURED, as at Stripe, for staff to refund or contest. Before, it
    failed so that it was retried, which rolled the capture back with it: every retry and every re-ask
    of the saga learned it again and lost it again, the payment AUTHORIZED here for good while Stripe
    held the money (and staff's refund hidden). The saga's re-ask replays the same answers."""
    order_id = uuid.uuid4()
    _authorize(order_id, key=f"order:{order_id}:authorize")
    capture_key = f"order:{order_id}:capture"
    stripe_stub.slow_seconds = 1.0  # our client gives up at 0.5 s; Stripe captures all the same
    lost = facade.payment_capture(order_id=order_id, idempotency_key=capture_key)
    assert (lost.status, lost.provider_unavailable) == ("FAILED", True)
    wait_until(lambda: capture_key in stripe_stub.answers, message="Stripe to finish the capture")
    stripe_stub.slow_seconds = 0.0
    stripe_stub.refund_refused = True

    assert inbox.handle("payments.checkout.reverse", _reversal_command(order_id)) is True

    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.captured_amount, payment.refunded_amount) == (
        "CAPTURED", Decimal("12.34"), Decimal("0.00"),
    )  # fmt: skip
    assert [e.type for e in payment.events.order_by("id")] == ["AUTHORIZED", "CAPTURED"]
    replies = outbox_model("payments").objects.filter(aggregate_id=str(order_id), event_type=events.REVERSED)
    assert not replies.exists()  # no reply: the saga re-asks at its deadline

    assert inbox.handle("payments.checkout.reverse", _reversal_command(order_id)) is True  # the saga's re-ask
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("CAPTURED", Decimal("0.00"))
    assert len(_keys(stripe_stub, "/capture")) == 2  # the timed-out capture and its retry (409): none since
    assert [r["key"] for r in stripe_stub.requests if r["path"] == "/v1/refunds"] == [f"order:{order_id}:refund:0.00"]


def test_a_reversal_of_an_authorization_stripe_cancelled_on_its_own_reads_its_record_and_captures_nothing(
    stripe_stub,
):
    """Stripe cancelled the authorization without us (staff in its dashboard, or its own expiry of an
    authorization never captured: seven days). The reversal's void is refused, the PaymentIntent no
    longer awaiting capture; Stripe's record, read by its id, shows it cancelled, which is recorded,
    and the reversal is done. Before, the refusal was taken for a capture whose answer was lost: the
    capture was asked with the checkout's key, refused too, and the reversal waited for good, the
    order never cancelled and the payment AUTHORIZED here."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    payment = Payment.objects.get(order_id=order_id)
    stripe_stub.intents[payment.provider_reference]["status"] = "canceled"

    reversal = facade.payment_reverse(order_id=order_id, reason="x")

    assert (reversal.done, reversal.confirmed) == ("VOIDED", True)
    payment.refresh_from_db()
    assert payment.status == "VOIDED"
    assert [e.type for e in payment.events.order_by("id")] == ["AUTHORIZED", "VOIDED"]
    assert not _keys(stripe_stub, "/capture")


def test_a_void_refused_while_stripes_record_still_shows_the_authorization_waits_and_takes_no_money(stripe_stub):
    """Stripe refuses the void as if the PaymentIntent were no longer awaiting capture, yet its record
    shows it still is (behind a concurrent call). The void is asked once more under a new key, refused
    again, and the reversal waits for the saga's next ask. Before, the refusal sent it to the
    checkout's capture key, which took the customer's money only to refund it."""
    order_id = uuid.uuid4()
    _authorize(order_id, key="auth")
    stripe_stub.cancel_refused = True

    reversal = facade.payment_reverse(order_id=order_id, reason="x")

    assert (reversal.done, reversal.confirmed, reversal.provider_unavailable) == ("VOIDED", False, True)
    void_key = f"order:{order_id}:void"
    [first, again] = _keys(stripe_stub, "/cancel")
    assert first == void_key and again.startswith(f"{void_key}:after-refusal:")
    assert not _keys(stripe_stub, "/capture")
    assert [intent["status"] for intent in stripe_stub.intents.values()] == ["requires_capture"]
    assert Payment.objects.get(order_id=order_id).status == "AUTHORIZED"
