"""Request-level middleware of the API: body size limit, and one re-run after a lost database session."""

import structlog
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed, RequestDataTooBig
from django.db import connections
from django.http import JsonResponse
from django.http.request import RawPostDataException

from shop import durability
from shop.api.envelope import error_body
from shop.api.exceptions import RETRYABLE
from shop.observability import metrics

logger = structlog.get_logger("shop.api")

ENGINE = "shop.postgresql"
NO_DATABASE = "django.db.backends.dummy"  # ``default``: every model lives in a context's database


class BodySizeLimitMiddleware:
    """Refuse oversized bodies before anything reads them (413 in the error envelope)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(error_body("MALFORMED_REQUEST", "Invalid Content-Length header."), status=400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse(
                error_body(
                    "PAYLOAD_TOO_LARGE",
                    "Request body too large.",
                    {"maxBytes": settings.MAX_REQUEST_BODY_BYTES},
                ),
                status=413,
            )
        return self.get_response(request)


class DatabaseRetryMiddleware:
    """Run a request a second time, on fresh sessions, when its database session died before it
    made anything durable.

    The rule: re-running a request is what the client's own retry would do, so it is safe when the
    failed attempt left nothing behind. The view's 503 must say the database error was one a
    re-run could cure (``shop.api.exceptions.RETRYABLE``: a lost session or a refused
    connection, not a statement timeout or an exhausted pool), and the attempt must have recorded
    nothing durable (``shop.durability``): no commit attempted on any database, no write run in
    autocommit mode. Otherwise the 503 stands. Once only: a second failure is an outage, and the
    client hears of it.

    Placed after the rate limits and the request log, so the request is counted and logged once.
    The body is read before the first attempt, so DRF parses it again from that copy (its
    ``Request._load_stream`` reads a body already read from ``request.body``).

    Only when every database is ``shop.postgresql``: the engine is what records, and a database
    that records nothing (SQLite in ``make run``) would look as if nothing were ever committed.
    """

    def __init__(self, get_response):
        engines = {database["ENGINE"] for database in settings.DATABASES.values()} - {NO_DATABASE}
        if engines != {ENGINE}:
            raise MiddlewareNotUsed(f"Re-runs need every database on {ENGINE} (the engine records commits)")
        self.get_response = get_response

    def __call__(self, request):
        try:
            request.body  # noqa: B018 - read once, so that a second attempt can parse it again
        except (RequestDataTooBig, RawPostDataException):
            return self.get_response(request)
        with durability.attempt() as first:
            response = self.get_response(request)
        error = getattr(response, RETRYABLE, None)
        if not error or first.durable:
            return response
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:  # one around the whole request (a test's) is not ours
                connection.close_if_unusable_or_obsolete()  # a dead session goes; the next use opens one
        match = getattr(request, "resolver_match", None)
        metrics.http_retried.labels(metrics.method_label(request.method), match.route if match else "unmatched").inc()
        logger.warning("request_retried_after_database_error", method=request.method, path=request.path, error=error)
        with durability.attempt():
            return self.get_response(request)
