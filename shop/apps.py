from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The shared kernel. It owns no tables; it wires logging, tracing and event plumbing."""

    name = "shop"
    label = "shop"

    def ready(self):
        from shop.observability import celery_signals, logging, tracing

        logging.configure()
        celery_signals.connect()
        tracing.configure()
