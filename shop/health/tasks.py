from celery import shared_task
from structlog import get_logger

logger = get_logger("shop.health")


@shared_task(name="shop.health.ping", acks_late=True, ignore_result=True)
def ping(note: str = "") -> str:
    """A no-op round trip through the broker, used by operators and tests to prove a worker is alive."""
    logger.info("worker_ping", note=note)
    return "pong"
