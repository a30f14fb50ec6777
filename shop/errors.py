"""The base of every context's domain errors (``apps/<context>/errors.py``).

A domain error names its own stable code, HTTP status and client-facing message, so the API
maps all of them in one place (``shop.api.exceptions``) and views need no ``except`` chains.
Plain Python on purpose: services raise these without knowing about HTTP frameworks.
"""

from http import HTTPStatus


class DomainError(Exception):
    """A business rule refused the request.

    ``str(exc)`` is the internal message (logs); ``public_message`` is what a client reads
    (``None``: the internal message is fit for clients). ``details()`` adds structured data.
    """

    code: str = "BAD_REQUEST"
    http_status: int = HTTPStatus.BAD_REQUEST
    public_message: str | None = None
    # For 401 answers: the WWW-Authenticate challenge.
    auth_header: str | None = None
    # For answers a later retry may cure (503): seconds for the Retry-After header.
    retry_after: int | None = None

    def details(self) -> dict | None:
        return None

    @property
    def message(self) -> str:
        return self.public_message or str(self) or self.code
