from djangorestframework_camel_case.render import CamelCaseJSONRenderer

from shop.api.envelope import is_enveloped, success_body


class EnvelopeJSONRenderer(CamelCaseJSONRenderer):
    """camelCase JSON; any body a view returns bare is wrapped in the success envelope."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code == 204:
            return b""
        if not is_enveloped(data) and response is not None and response.status_code < 400:
            data = success_body(data)
        return super().render(data, accepted_media_type, renderer_context)
