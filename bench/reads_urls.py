"""The application's URLs plus the bench's bare view: the floor a cached read is compared to.

The bare view exists only here. It answers a small JSON envelope through the same gunicorn,
middleware stack and URL resolver as every API view, and does nothing else.
"""

from django.http import JsonResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 (same error pages)
from config.urls import urlpatterns as application


def bare(request):
    return JsonResponse({"success": True, "data": {"ok": True}})


urlpatterns = [path("bench/bare", bare), *application]
