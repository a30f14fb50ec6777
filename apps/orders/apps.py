from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.orders import events, handlers  # noqa: F401 - registers schemas and subscribers
        from apps.orders.saga import gauges  # noqa: F401 - registers the overdue-saga gauges
