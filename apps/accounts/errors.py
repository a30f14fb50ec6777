"""Domain errors of the accounts context (mapped to the API envelope by ``shop.api.exceptions``)."""

from http import HTTPStatus

from shop.errors import DomainError

_BEARER = 'Bearer realm="api"'


class AccountsError(DomainError):
    pass


class EmailTaken(AccountsError):
    code = "EMAIL_TAKEN"
    http_status = HTTPStatus.CONFLICT
    public_message = "An account with this email already exists."


class InvalidCredentials(AccountsError):
    code = "INVALID_CREDENTIALS"
    http_status = HTTPStatus.UNAUTHORIZED
    public_message = "Invalid email or password."
    auth_header = _BEARER


class InvalidRefreshToken(AccountsError):
    # The internal reason (unknown, reused, password changed...) stays in the logs.
    code = "UNAUTHORIZED"
    http_status = HTTPStatus.UNAUTHORIZED
    public_message = "The refresh token is invalid, expired, already used or revoked; sign in again."
    auth_header = _BEARER
