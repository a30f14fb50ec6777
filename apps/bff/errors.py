"""Errors of the backend-for-frontend (mapped to the API envelope by ``shop.api.exceptions``)."""

from http import HTTPStatus

from shop.errors import DomainError


class CatalogUnavailable(DomainError):
    """The product itself could not be read (catalog database down and no cached copy)."""

    code = "CATALOG_UNAVAILABLE"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    public_message = "The catalog is temporarily unavailable."


class ProductPageNotFound(DomainError):
    code = "PRODUCT_NOT_FOUND"
    http_status = HTTPStatus.NOT_FOUND
    public_message = "Product not found."
