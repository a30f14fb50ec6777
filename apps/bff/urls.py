from django.conf import settings
from django.urls import path

from apps.bff import views
from shop.api.responsecache import PublicCache, public_cached

PAGE_HTTP = PublicCache(
    name="bff_page_http",
    key=lambda request, *, version, product_id: None if request.GET else f"bff:product:{product_id}:http:{version}",
    ttl=lambda: settings.BFF_PAGE_CACHE_TTL,
)

urlpatterns = [
    path(
        "bff/products/<uuid:product_id>/complete",
        public_cached(views.ProductPageApi.as_view(), PAGE_HTTP),
        name="bff-product-complete",
    ),
]
