"""Domain errors of the catalog context; the HTTP layer maps them to API errors."""


class CatalogError(Exception):
    pass


class ProductNotFound(CatalogError):
    pass


class CategoryNotFound(CatalogError):
    pass


class SkuTaken(CatalogError):
    pass


class ReviewExists(CatalogError):
    pass
