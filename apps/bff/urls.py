from django.urls import path

from apps.bff import views

urlpatterns = [
    path("bff/products/<uuid:product_id>/complete", views.ProductPageApi.as_view(), name="bff-product-complete"),
]
