"""Refuse oversized bodies before anything reads them (413 in the error envelope)."""

from django.conf import settings
from django.http import JsonResponse

from shop.api.envelope import error_body


class BodySizeLimitMiddleware:
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
