import os
import time

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from shop.health.checks import readiness
from shop.observability import metrics

_STARTED = time.monotonic()


@require_GET
def live(request):
    """Liveness: the process answers. No dependency is touched, so a DB outage never restarts pods."""
    return JsonResponse({"status": "alive", "uptimeSeconds": round(time.monotonic() - _STARTED, 1)})


@require_GET
def ready(request):
    healthy, checks = readiness()
    body = {
        "status": "ready" if healthy else "unready",
        "timestamp": timezone.now().isoformat(),
        "service": "shop",
        "version": os.environ.get("VERSION", "1.0.0"),
        "checks": checks,
    }
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def prometheus(request):
    payload, content_type = metrics.render()
    return HttpResponse(payload, content_type=content_type)
