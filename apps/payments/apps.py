from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.payments import events, handlers  # noqa: F401 - registers schemas and subscribers
        from apps.payments.gateway import resilience  # noqa: F401 - registers the breaker-state gauge
