from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The shared kernel. It owns no tables; it wires logging, tracing and event plumbing."""

    name = "shop"
    label = "shop"

    def ready(self):
        from shop.events import gauges  # noqa: F401 - registers the outbox and dead-letter gauges
        from shop.observability import celery_signals, errors, logging, tracing, worker_metrics

        logging.configure()
        celery_signals.connect()
        worker_metrics.connect()
        tracing.configure()
        errors.configure()
