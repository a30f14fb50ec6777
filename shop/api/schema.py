"""OpenAPI that tells the truth about the envelope.

drf-spectacular documents serializers as bare bodies; our renderer wraps every success in
``{success, data, message}`` and every error in ``{success: false, error}``. This schema
class applies the same wrapping to the documented responses and adds the error responses
every endpoint can produce.
"""

import copy

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import SAFE_METHODS

from shop.api.permissions import IsStaffOrReadOnly

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_ERROR"},
                "message": {"type": "string"},
                "details": {"nullable": True},
            },
        },
    },
}

_COMMON_ERRORS = {
    "400": "Invalid input (VALIDATION_ERROR, MALFORMED_REQUEST)",
    "401": "Missing, expired or invalid credentials (UNAUTHORIZED)",
    "403": "Authenticated but not allowed (FORBIDDEN)",
    "404": "Not found (NOT_FOUND)",
    "429": "Rate limited (RATE_LIMITED); see Retry-After",
    "500": "Unexpected error (INTERNAL_ERROR); details.correlationId identifies the log lines",
}


def _wrap_success(schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "data": schema,
            "message": {"type": "string"},
        },
    }


class EnvelopeAutoSchema(AutoSchema):
    def get_auth(self):
        # drf-spectacular marks anonymous access ({}) only for its own read-only permissions;
        # ours lets anyone read too, and the document must not claim a token is required.
        auths = super().get_auth()
        public_read = any(isinstance(p, IsStaffOrReadOnly) for p in self.view.get_permissions())
        if public_read and self.method in SAFE_METHODS and {} not in auths:
            auths.append({})
        return auths

    def _error_ref(self) -> dict:
        component = ResolvedComponent(
            # A copy: postprocessing hooks edit registered schemas in place, and the next
            # generation in this process must start from the pristine shape.
            name="ErrorEnvelope",
            type=ResolvedComponent.SCHEMA,
            schema=copy.deepcopy(ERROR_ENVELOPE),
            object="ErrorEnvelope",
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _get_response_for_code(self, serializer, status_code, media_types=None, direction="response"):
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        if not str(status_code).startswith("2") and "content" not in response:
            # ``{409: OpenApiResponse(description="EMAIL_TAKEN")}`` names an error code; its body
            # is still the error envelope, and a client (or schemathesis) must be told so.
            response["content"] = {media: {} for media in media_types or self.map_renderers("media_type")}
        for media in response.get("content", {}).values():
            schema = media.get("schema", {})
            if str(status_code).startswith("2"):
                if not str(schema.get("$ref", "")).startswith("#/components/schemas/Paginated"):
                    media["schema"] = _wrap_success(schema)
            else:
                media["schema"] = self._error_ref()
        return response

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        media_types = self.map_renderers("media_type")
        for code, description in _COMMON_ERRORS.items():
            responses.setdefault(
                code,
                {
                    "description": description,
                    "content": {media: {"schema": self._error_ref()} for media in media_types},
                },
            )
        return responses
