from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from shop.health import views as health

handler400 = "shop.api.views.bad_request"
handler403 = "shop.api.views.permission_denied"
handler404 = "shop.api.views.not_found"
handler500 = "shop.api.views.server_error"

# Django tries these in order: the API (most of the traffic) first, so its requests skip the other
# patterns. Its version segment also matches "schema" and "docs", whose paths no API route
# continues, so those requests fall through to their own patterns below.
urlpatterns = [
    path("api/<str:version>/", include("config.api_urls")),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", health.prometheus, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("api/schema/v2/", SpectacularAPIView.as_view(api_version="v2"), name="schema-v2"),
    # Split view: the init script is served from this origin, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("api/docs/v2/", SpectacularSwaggerSplitView.as_view(url_name="schema-v2"), name="docs-v2"),
]
