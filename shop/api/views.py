"""Django-level error handlers so that even non-DRF paths answer in the envelope."""

from django.http import JsonResponse

from shop.api.envelope import error_body
from shop.observability.context import get_correlation_id


def not_found(request, exception=None):
    return JsonResponse(error_body("NOT_FOUND", "Not found."), status=404)


def bad_request(request, exception=None):
    return JsonResponse(error_body("BAD_REQUEST", "Bad request."), status=400)


def permission_denied(request, exception=None):
    return JsonResponse(error_body("FORBIDDEN", "You do not have permission to perform this action."), status=403)


def server_error(request):
    return JsonResponse(
        error_body("INTERNAL_ERROR", "An unexpected error occurred.", {"correlationId": get_correlation_id()}),
        status=500,
    )
