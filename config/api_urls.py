"""Every context's HTTP routes under /api/<version>/ (views check the version they serve).

Django tries the patterns in order, and every include before the matching one is tried in
full: the public reads a storefront sends most (catalog, BFF) come first, so resolving them
costs a handful of pattern matches instead of every context's (``make bench-reads``).
"""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.catalog.urls")),
    path("", include("apps.bff.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.inventory.urls")),
    path("", include("apps.orders.urls")),
    path("", include("apps.payments.urls")),
]
