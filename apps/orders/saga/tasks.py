from celery import shared_task

from apps.orders.saga import orchestrator


@shared_task(name="orders.sagas.recover", acks_late=True, ignore_result=True)
def sagas_recover() -> dict:
    """Beat: nudge every checkout past its deadline (lost message, killed worker, hung provider)."""
    return orchestrator.sagas_recover()
