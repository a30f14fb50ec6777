from django.urls import path

from apps.inventory import views

urlpatterns = [
    path("inventory/<uuid:product_id>", views.AvailabilityApi.as_view(), name="inventory-availability"),
    path("inventory/<uuid:product_id>/adjustments", views.AdjustmentCreateApi.as_view(), name="inventory-adjust"),
]
