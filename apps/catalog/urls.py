from django.urls import path

from apps.catalog import views

urlpatterns = [
    path("products", views.ProductCollectionApi.as_view(), name="products"),
    path("products/<uuid:product_id>", views.ProductItemApi.as_view(), name="product"),
    path("products/<uuid:product_id>/reviews", views.ProductReviewsApi.as_view(), name="product-reviews"),
    path("categories", views.CategoryListApi.as_view(), name="categories"),
]
