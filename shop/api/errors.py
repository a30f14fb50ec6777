"""Domain-facing API errors: raise one anywhere in a view and the envelope follows."""

from rest_framework import status
from rest_framework.exceptions import APIException


class ApiError(APIException):
    """An error with a stable machine code, a human message and optional structured details."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "BAD_REQUEST"
    default_detail = "Bad request."

    def __init__(self, message: str | None = None, *, code: str | None = None, details=None, status_code=None):
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.error_code = code or self.default_code
        self.details = details
        if status_code is not None:
            self.status_code = status_code


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "CONFLICT"
    default_detail = "The request conflicts with the current state."


class NotFoundError(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "NOT_FOUND"
    default_detail = "Not found."


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "SERVICE_UNAVAILABLE"
    default_detail = "A dependency is temporarily unavailable; retry later."
