"""Domain errors of the catalog context (mapped to the API envelope by ``shop.api.exceptions``)."""

from http import HTTPStatus

from shop.errors import DomainError


class CatalogError(DomainError):
    pass


class ProductNotFound(CatalogError):
    code = "PRODUCT_NOT_FOUND"
    http_status = HTTPStatus.NOT_FOUND
    public_message = "Product not found."


class CategoryNotFound(CatalogError):
    # An unknown category in a product's input is a field error of that input.
    code = "VALIDATION_ERROR"
    public_message = "Invalid request data."

    def details(self) -> dict:
        return {"categoryId": ["Unknown category."]}


class CategoryParentInvalid(CatalogError):
    """A category placed under itself or one of its own subcategories: a cycle, which the category
    filter's walk down the tree would never leave."""

    code = "VALIDATION_ERROR"
    public_message = "Invalid request data."

    def details(self) -> dict:
        return {"parent": [str(self)]}


class SkuTaken(CatalogError):
    code = "SKU_TAKEN"
    http_status = HTTPStatus.CONFLICT
    public_message = "A product with this SKU already exists."

    def details(self) -> dict:
        return {"sku": str(self)}


class ReviewExists(CatalogError):
    code = "REVIEW_EXISTS"
    http_status = HTTPStatus.CONFLICT
    public_message = "You have already reviewed this product."
