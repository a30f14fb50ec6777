"""HTTP edge: correlation ids in, request log lines out."""

import time

import structlog

from shop.observability import dbpool, metrics
from shop.observability.context import correlation_id_var, sanitize_correlation_id

HEADER = "X-Correlation-ID"
logger = structlog.get_logger("shop.request")


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cid = sanitize_correlation_id(request.headers.get(HEADER))
        request.correlation_id = cid
        token = correlation_id_var.set(cid)
        structlog.contextvars.bind_contextvars(correlation_id=cid)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")
            correlation_id_var.reset(token)
        response[HEADER] = cid
        return response


class RequestLogMiddleware:
    """One line per request; the route template (not the raw path) labels the metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = match.route if match else "unmatched"
        method = metrics.method_label(request.method)
        metrics.http_requests.labels(method, route, str(response.status_code)).inc()
        metrics.http_latency.labels(method, route).observe(elapsed)
        dbpool.sample()
        if not request.path.startswith(("/health/", "/metrics")):
            user = getattr(request, "user", None)
            logger.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round(elapsed * 1000, 2),
                user_id=str(user.pk) if user is not None and user.is_authenticated else None,
            )
        return response
