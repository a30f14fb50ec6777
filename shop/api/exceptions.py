"""One error format for every failure an API client can see.

DRF's exceptions, Django's ``Http404``/``PermissionDenied``, a database that cannot be reached
(``OperationalError``: 503 with ``Retry-After``, marked ``RETRYABLE`` when a re-run could cure
it), the contexts' domain errors
(``shop.errors.DomainError``: each names its code, status and message), our ``ApiError`` and
anything unexpected all leave as ``{success: false, error: {code, message, details}}``. Unexpected
errors are logged with their stack trace; the client gets only the correlation id.
"""

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from shop.api.envelope import error_body
from shop.api.errors import ApiError, ServiceUnavailable
from shop.durability import cured_by_a_fresh_session
from shop.errors import DomainError
from shop.observability.context import get_correlation_id

logger = structlog.get_logger("shop.api")

# Set on a 503 a re-run of the request could cure (shop.api.middleware.DatabaseRetryMiddleware):
# the database error's text, for the log line of the re-run.
RETRYABLE = "shop_retryable"

_CODES = {
    exceptions.ParseError: ("MALFORMED_REQUEST", "The request body could not be parsed."),
    exceptions.AuthenticationFailed: ("UNAUTHORIZED", None),
    exceptions.NotAuthenticated: ("UNAUTHORIZED", "Authentication credentials were not provided."),
    exceptions.PermissionDenied: ("FORBIDDEN", None),
    exceptions.NotFound: ("NOT_FOUND", "Not found."),
    exceptions.MethodNotAllowed: ("METHOD_NOT_ALLOWED", None),
    exceptions.NotAcceptable: ("NOT_ACCEPTABLE", None),
    exceptions.UnsupportedMediaType: ("UNSUPPORTED_MEDIA_TYPE", None),
    exceptions.Throttled: ("RATE_LIMITED", "Too many requests."),
}


def _flatten(detail):
    """DRF ErrorDetail trees → plain strings/lists/dicts (keys camelized later by the renderer)."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(value) for value in detail]
    return str(detail)


def _from_domain(error: DomainError) -> ApiError:
    api_error = ApiError(error.message, code=error.code, details=error.details(), status_code=int(error.http_status))
    if error.auth_header:
        api_error.auth_header = error.auth_header
    if error.retry_after:
        api_error.wait = error.retry_after  # the handler below turns this into Retry-After
    return api_error


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DomainError):
        exc = _from_domain(exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError("Request body too large.", code="PAYLOAD_TOO_LARGE", status_code=413)
    elif isinstance(exc, OperationalError):
        # A database refusing connections (or the pool timing out waiting for one) is an outage
        # the client can retry, not a bug: 503 in the envelope, logged with its cause.
        logger.warning("database_unavailable", view=type(context.get("view")).__name__, error=str(exc))
        retryable = str(exc) if cured_by_a_fresh_session(exc) else None
        exc = ServiceUnavailable("A database is temporarily unavailable; retry shortly.")
        exc.wait = 5
        exc.retryable = retryable  # the response says so: DatabaseRetryMiddleware may re-run it

    headers = {}
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, ApiError):
            body = error_body(exc.error_code, str(exc.detail), exc.details)
        elif isinstance(exc, exceptions.ValidationError):
            details = _flatten(exc.detail)
            if isinstance(details, list):
                details = {"nonFieldErrors": details}
            body = error_body("VALIDATION_ERROR", "Invalid request data.", details)
        else:
            code, message = next(((c, m) for cls, (c, m) in _CODES.items() if isinstance(exc, cls)), (None, None))
            detail = exc.detail if isinstance(exc.detail, str) else _flatten(exc.detail)
            body = error_body(code or str(exc.default_code).upper(), message or str(detail), None)
            if isinstance(exc, exceptions.AuthenticationFailed) and isinstance(exc.detail, dict):
                body["error"]["message"] = str(exc.detail.get("detail", "Authentication failed."))
        response = Response(body, status=exc.status_code, headers=headers)
        if getattr(exc, "retryable", None):
            setattr(response, RETRYABLE, exc.retryable)
        return response

    logger.exception("unhandled_exception", view=type(context.get("view")).__name__)
    return Response(
        error_body("INTERNAL_ERROR", "An unexpected error occurred.", {"correlationId": get_correlation_id()}),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
