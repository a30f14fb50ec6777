"""Content-Security-Policy chosen by path.

The API only ever returns JSON, so its policy is ``default-src 'none'``: a response that a
browser is tricked into rendering can load and run nothing. The two HTML surfaces get their
own, still minimal, policies from ``CSP_PATH_POLICIES`` (settings): the Django admin needs
its same-origin static files, the Swagger UI page its pinned CDN bundle. A view that sets its
own policy (django-csp's ``@csp``/``@csp_update`` decorators) still wins.

The header of a path's policy is the same string on every response that neither uses a nonce
nor carries a view's own policy: django-csp would rebuild it each time (a tenth of a cached
API read's CPU, ``make bench-reads``), so it is built once per policy, by django-csp itself,
and replayed; everything else goes through django-csp unchanged. A settings change drops it.
"""

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse

# Attributes by which a view asks for its own policy, or for none (django-csp's decorators).
_PER_VIEW = tuple(
    f"_csp_{kind}{suffix}" for kind in ("config", "update", "replace", "exempt") for suffix in ("", "_ro")
)
_built: dict[str | None, list[tuple[str, str]]] = {}  # path policy prefix (None: default) -> headers


@receiver(setting_changed)
def _forget(setting, **kwargs):
    if setting.startswith(("CONTENT_SECURITY_POLICY", "CSP_")) or setting == "DEBUG":
        _built.clear()


def _prefix(path: str) -> str | None:
    return next((prefix for prefix in getattr(settings, "CSP_PATH_POLICIES", {}) if path.startswith(prefix)), None)


class PathCSPMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only or parts.config is not None:
            return parts
        prefix = _prefix(request.path_info)
        if prefix is not None:
            parts.config = settings.CSP_PATH_POLICIES[prefix]
        return parts

    def process_response(self, request, response):
        if not self._fixed(request, response):
            return super().process_response(request, response)
        prefix = _prefix(request.path_info)
        headers = _built.get(prefix)
        if headers is None:
            probe = super().process_response(request, HttpResponse())
            headers = _built[prefix] = [(name, probe[name]) for name in (HEADER, HEADER_REPORT_ONLY) if name in probe]
        for name, value in headers:
            if name not in response:
                response[name] = value
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    @staticmethod
    def _fixed(request, response) -> bool:
        """The header depends on the path alone: no nonce asked for, no policy of the view's own,
        no excluded prefixes configured, and not a debug page django-csp leaves alone."""
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, name) for name in _PER_VIEW):
            return False
        for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
            if (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES"):
                return False
        return not (settings.DEBUG and response.status_code in (404, 500))
