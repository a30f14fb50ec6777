import os
import time

from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from shop.health.access import is_operator
from shop.health.checks import readiness
from shop.observability import metrics

_STARTED = time.monotonic()


@require_GET
def live(request):
    """Liveness: the process answers. No dependency is touched, so a DB outage never restarts pods."""
    return JsonResponse({"status": "alive", "uptimeSeconds": round(time.monotonic() - _STARTED, 1)})


@require_GET
def ready(request):
    """ok/down for everyone; the report per dependency only for operators (shop.health.access)."""
    healthy, checks = readiness()
    status = 200 if healthy else 503
    if not is_operator(request):
        return JsonResponse({"status": "ok" if healthy else "down"}, status=status)
    return JsonResponse(detailed_report(healthy, checks), status=status)


def detailed_report(healthy: bool, checks: dict) -> dict:
    return {
        "status": "ready" if healthy else "unready",
        "timestamp": timezone.now().isoformat(),
        "service": "shop",
        "version": os.environ.get("VERSION", "1.0.0"),
        "checks": checks,
    }


@require_GET
def prometheus(request):
    """Operators only; anyone else gets the same 404 as for a path that does not exist."""
    if not is_operator(request):
        raise Http404
    payload, content_type = metrics.render()
    return HttpResponse(payload, content_type=content_type)
