from django.urls import path

from apps.catalog import caching, views
from shop.api.responsecache import public_cached

urlpatterns = [
    path("products", public_cached(views.ProductCollectionApi.as_view(), caching.PRODUCTS_HTTP), name="products"),
    path(
        "products/<uuid:product_id>",
        public_cached(views.ProductItemApi.as_view(), caching.PRODUCT_HTTP),
        name="product",
    ),
    path("products/<uuid:product_id>/reviews", views.ProductReviewsApi.as_view(), name="product-reviews"),
    path("categories", views.CategoryListApi.as_view(), name="categories"),
]
