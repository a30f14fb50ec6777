"""Content-Security-Policy chosen by path.

The API only ever returns JSON, so its policy is ``default-src 'none'``: a response that a
browser is tricked into rendering can load and run nothing. The two HTML surfaces get their
own, still minimal, policies from ``CSP_PATH_POLICIES`` (settings): the Django admin needs
its same-origin static files, the Swagger UI page its pinned CDN bundle. A view that sets its
own policy (django-csp's ``@csp``/``@csp_update`` decorators) still wins.
"""

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings


class PathCSPMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only or parts.config is not None:
            return parts
        for prefix, directives in getattr(settings, "CSP_PATH_POLICIES", {}).items():
            if request.path_info.startswith(prefix):
                parts.config = directives
                break
        return parts
