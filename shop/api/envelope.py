"""The wire envelope from the spec: ``{success, data, message}`` and ``{success: false, error}``."""

from typing import Any

from rest_framework.response import Response


def success_body(data: Any, message: str | None = None) -> dict:
    body = {"success": True, "data": data}
    if message:
        body["message"] = message
    return body


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


def ok(data: Any = None, *, message: str | None = None, status: int = 200, headers=None) -> Response:
    return Response(success_body(data, message), status=status, headers=headers)


def is_enveloped(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("success"), bool) and ("data" in data or "error" in data)
