"""Public reads answered from their rendered bytes.

A cache hit of the product page used to do most of the work of a miss: DRF's dispatch,
authentication, permissions, the query serializer, the facade's dataclass, the output
serializer and the camelCase renderer, to produce the same bytes every time. For anonymous
GETs of public, cached reads the response itself is cached: status, the headers the view
set and the body. A hit then costs one cache round trip plus the middleware every request
pays (correlation id, security headers, rate limits, logs), which stay in front.

Only what anyone may see is stored: requests with an ``Authorization`` header (staff see
inactive products, and their writes at once) always reach the view; only 200 responses are
kept, never one marked ``Cache-Control: no-store`` (the BFF's degraded page); a request
with a query string is keyed by it, so an unknown parameter reaches the view and its 400.
Invalidation is the owner's: a key it deletes, or a namespace version it bumps
(``shop.cache``), exactly like the data caches behind the views.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse

from shop import cache
from shop.observability import metrics


@dataclass(frozen=True)
class PublicCache:
    name: str  # metrics label, e.g. "product_http"
    key: Callable[..., str | None]  # (request, **url kwargs) -> key, or None: do not cache this request
    ttl: Callable[[], float]  # seconds (read at store time, so settings overrides apply)
    namespace: str | None = None  # a version family the owner bumps to drop every entry

    @functools.cached_property
    def counters(self):
        """The hit and miss counters, labelled once (not on every request)."""
        return metrics.cache_requests.labels(self.name, "hit"), metrics.cache_requests.labels(self.name, "miss")


def public_cached(view: Callable, policy: PublicCache) -> Callable:
    """Wrap a DRF ``as_view()`` callable; attributes (``cls``, ``csrf_exempt``) are kept for
    the URL resolver, the rate-limit middleware and the OpenAPI generator."""

    @functools.wraps(view)
    def cached_view(request, *args, **kwargs):
        key = policy.key(request, **kwargs) if _public(request) else None
        if key is None:
            return view(request, *args, **kwargs)
        # What DRF's JWT authentication would conclude without an Authorization header; it also
        # keeps the middleware that logs the user from loading a session (a query, Vary: Cookie).
        request.user = AnonymousUser()
        hit = cache.lookup(key, namespace=policy.namespace)
        hits, misses = policy.counters
        if hit is not None:
            hits.inc()
            return _replay(hit)
        misses.inc()
        seen = _version_before_the_view(policy)
        response = view(request, *args, **kwargs)
        if _storable(response) and (policy.namespace is None or seen is not None):
            response.render()
            cache.store(key, _recording(response), ttl=policy.ttl(), namespace=policy.namespace, seen=seen)
        return response

    return cached_view


def _version_before_the_view(policy: PublicCache) -> int | None:
    """The policy's family version before the view reads its rows (None: no family, or the cache is
    down, and then nothing is stored): the response is stored under it, so a write that bumps the
    family while the view runs leaves this response where no lookup finds it."""
    if policy.namespace is None:
        return None
    try:
        return cache.version(policy.namespace)
    except cache.CacheUnavailable:
        return None


def _public(request) -> bool:
    return request.method == "GET" and "HTTP_AUTHORIZATION" not in request.META


def _storable(response) -> bool:
    """A 200 that the view produced for an anonymous caller and did not mark ``no-store``."""
    drf_request = (getattr(response, "renderer_context", None) or {}).get("request")
    anonymous = drf_request is None or not drf_request.user.is_authenticated
    return response.status_code == 200 and anonymous and "no-store" not in response.get("Cache-Control", "")


def _recording(response) -> dict:
    return {"status": response.status_code, "headers": list(response.items()), "body": response.content.decode()}


def _replay(recording: dict) -> HttpResponse:
    return HttpResponse(recording["body"].encode(), status=recording["status"], headers=dict(recording["headers"]))
