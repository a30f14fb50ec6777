"""A local stand-in for the Stripe API (never the internet), for StripeGateway tests in this
process and for a worker subprocess pointed at it (``STRIPE_API_BASE``).

``slow_seconds`` holds every answer back: a client timeout shorter than that is a real socket
timeout. ``requests`` lists what arrived (path, idempotency key, form), counted on arrival. As
Stripe does, a request whose idempotency key another request is still using is refused with 409,
and a key whose request ended answers that request's response again, at once (also when the
client that sent it gave up waiting), marked ``Idempotent-Replayed: true``.

``failures_inside`` makes the next requests of ``failing_operation`` (the path's last part:
``payment_intents`` for an authorization, ``capture``, ``cancel``, ``refunds``) fail inside Stripe
with a 500 that is kept under their keys and replayed, as Stripe keeps a 500's response;
``failure_after_work`` says whether the work was done all the same. A capture or cancel of a
PaymentIntent no longer awaiting capture is refused (``payment_intent_unexpected_state``).
``GET /v1/payment_intents/search`` finds intents by ``metadata['order_id']`` as they were made (the
changes since lag, as Stripe's index does); ``GET /v1/payment_intents/{id}`` reads one as it is,
with its charge (what was refunded of it) once captured. A refund of more than is left unrefunded
is refused (``charge_already_refunded``), and with ``refund_refused`` every refund (``charge_disputed``).
"""

import contextlib
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CARD_ERRORS = {
    "tok_chargeDeclined": {"code": "card_declined", "decline_code": "generic_decline"},
    "tok_chargeDeclinedInsufficientFunds": {"code": "card_declined", "decline_code": "insufficient_funds"},
    "tok_chargeDeclinedProcessingError": {"code": "processing_error"},
}


class StubStripe(BaseHTTPRequestHandler):
    requests: list[dict] = []
    in_flight: set[str] = set()
    answers: dict[str, tuple[int, dict]] = {}
    intents: dict[str, dict] = {}  # Stripe's own records, by id
    indexed: dict[str, dict] = {}  # what its search finds: each intent as it was made (later changes lag)
    search_refused = False  # a restricted key: the search answers 403
    cancel_refused = False  # every cancel refused as for a PaymentIntent no longer awaiting capture
    refund_refused = False  # every refund refused as for a disputed charge
    slow_seconds = 0.0
    received_cents: int | None = None  # the capture's amount_received; None: what was asked
    failures_inside = 0
    failing_operation = "payment_intents"  # the last part of the path: "capture", "cancel", "refunds"
    failure_after_work = True

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict, *, replayed: bool = False) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()
        form = {key: values[0] for key, values in parse_qs(raw).items()}
        sent = self.headers.get("Idempotency-Key")
        key = sent or f"none-{uuid.uuid4()}"  # without a key every request is new
        refused = key in self.in_flight
        self.in_flight.add(key)
        self.requests.append({"path": self.path, "key": sent, "form": form})
        if key in self.answers:
            self.in_flight.discard(key)
            return self._reply(*self.answers[key], replayed=True)
        if refused:
            message = "There is currently another in-progress request using this Idempotent Key."
            return self._reply(409, {"error": {"type": "idempotency_error", "message": message}})
        try:
            answer = self.answers[key] = self._answer(form)
        finally:
            self.in_flight.discard(key)
        self._reply(*answer)

    def do_GET(self):
        url = urlsplit(self.path)
        self.requests.append({"path": url.path, "key": None, "form": parse_qs(url.query)})
        parts = url.path.strip("/").split("/")
        if url.path == "/v1/payment_intents/search":
            if self.search_refused:
                message = "The provided key does not have the required permissions for this endpoint."
                return self._reply(403, {"error": {"type": "invalid_request_error", "message": message}})
            [query] = parse_qs(url.query)["query"]
            order_id = re.fullmatch(r"metadata\['order_id'\]:'([^']*)'", query).group(1)
            found = [intent for intent in self.indexed.values() if intent["metadata"].get("order_id") == order_id]
            return self._reply(200, {"object": "search_result", "url": url.path, "has_more": False, "data": found})
        if parts[:2] == ["v1", "payment_intents"] and len(parts) == 3 and parts[2] in self.intents:
            intent = dict(self.intents[parts[2]])
            if intent["status"] == "succeeded":  # its charge, as ``expand[]=latest_charge`` returns it
                intent["latest_charge"] = self._charge(intent)
            return self._reply(200, intent)
        self._reply(404, {"error": {"type": "invalid_request_error", "message": "No such route"}})

    @staticmethod
    def _charge(intent: dict) -> dict:
        """A captured PaymentIntent's charge, expanded (``expand[]=...charge``)."""
        return {"id": f"ch_{intent['id'][3:]}", "object": "charge", "amount_refunded": intent["refunded"]}

    def _intent(self, intent_id: str, **changes) -> dict:
        intent = self.intents.setdefault(intent_id, {"id": intent_id, "object": "payment_intent", "metadata": {}})
        intent.update(changes)
        return dict(intent)

    def _answer(self, form: dict) -> tuple[int, dict]:
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        parts = self.path.strip("/").split("/")
        operation = parts[3] if parts[:2] == ["v1", "payment_intents"] and len(parts) == 4 else parts[-1]
        failing = self.failures_inside > 0 and operation == self.failing_operation
        if not failing:
            return self._work(parts, form)
        type(self).failures_inside -= 1
        if self.failure_after_work:
            self._work(parts, form)
        return (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}})

    def _work(self, parts: list[str], form: dict) -> tuple[int, dict]:
        if parts == ["v1", "payment_intents"]:
            token = form["payment_method_data[card][token]"]
            if token in CARD_ERRORS:
                error = {"type": "card_error", "message": "Your card was declined.", **CARD_ERRORS[token]}
                return (402, {"error": error})
            intent_id = f"pi_{uuid.uuid4().hex[:8]}"
            metadata = {name[9:-1]: value for name, value in form.items() if name.startswith("metadata[")}
            self.intents[intent_id] = {"id": intent_id, "object": "payment_intent", "status": "requires_capture",
                                       "amount": int(form["amount"]), "currency": form["currency"],
                                       "metadata": metadata, "refunded": 0}  # fmt: skip
            self.indexed[intent_id] = dict(self.intents[intent_id])
            return (200, dict(self.intents[intent_id]))
        if parts[:2] == ["v1", "payment_intents"] and parts[3] in ("capture", "cancel"):
            refused = parts[3] == "cancel" and self.cancel_refused
            if refused or self.intents.get(parts[2], {}).get("status", "requires_capture") != "requires_capture":
                error = {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                         "message": f"This PaymentIntent's status is {self.intents[parts[2]]['status']}."}  # fmt: skip
                return (400, {"error": error})
            if parts[3] == "cancel":
                return (200, self._intent(parts[2], status="canceled"))
            received = self.received_cents if self.received_cents is not None else int(form["amount_to_capture"])
            return (200, self._intent(parts[2], status="succeeded", amount_received=received))
        if parts == ["v1", "refunds"]:
            intent = self.intents.get(form["payment_intent"])
            if intent is None:
                return (404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                        "message": f"No such payment_intent: {form['payment_intent']}"}})  # fmt: skip
            amount = int(form["amount"])
            if self.refund_refused:  # as Stripe refuses a refund of a charge under dispute
                error = {"type": "invalid_request_error", "code": "charge_disputed",
                         "message": "This charge is disputed and cannot be refunded."}  # fmt: skip
                return (400, {"error": error})
            if intent["status"] != "succeeded" or intent["refunded"] + amount > intent["amount_received"]:
                error = {"type": "invalid_request_error", "code": "charge_already_refunded",
                         "message": "Refund amount is greater than the unrefunded amount on the charge."}  # fmt: skip
                return (400, {"error": error})
            intent["refunded"] += amount
            refund = {"id": f"re_{uuid.uuid4().hex[:8]}", "object": "refund", "status": "succeeded", "amount": amount}
            return (200, refund | {"payment_intent": intent["id"], "charge": self._charge(intent)})
        return (404, {"error": {"type": "invalid_request_error", "message": "No such route"}})


@contextlib.contextmanager
def stripe_stub_running():
    """Serve the stub on a free port; yields (the handler class, its base URL)."""
    StubStripe.requests = []
    StubStripe.in_flight = set()
    StubStripe.answers = {}
    StubStripe.intents = {}
    StubStripe.indexed = {}
    StubStripe.search_refused = False
    StubStripe.cancel_refused = False
    StubStripe.refund_refused = False
    StubStripe.slow_seconds = 0.0
    StubStripe.received_cents = None
    StubStripe.failures_inside = 0
    StubStripe.failing_operation = "payment_intents"
    StubStripe.failure_after_work = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubStripe)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StubStripe, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
