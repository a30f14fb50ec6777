"""Carry the correlation id (and the causing event id) from publisher to Celery task.

The ids travel as message headers; the worker binds them for the task's logs and for any
event the task publishes.
"""

import structlog
from celery import signals

from shop.observability.context import causation_id_var, correlation_id_var, get_causation_id, get_correlation_id

CORRELATION_HEADER = "shop_correlation_id"
CAUSATION_HEADER = "shop_causation_id"
_tokens: dict[str, tuple] = {}


def _on_publish(headers=None, **kwargs):
    if headers is None:
        return
    cid = get_correlation_id()
    # Not "correlation_id": Celery already uses that message property for the task id.
    if cid and not headers.get(CORRELATION_HEADER):
        headers[CORRELATION_HEADER] = cid
    caused_by = get_causation_id()
    if caused_by and not headers.get(CAUSATION_HEADER):
        headers[CAUSATION_HEADER] = caused_by


def _on_prerun(task_id=None, task=None, **kwargs):
    cid = getattr(task.request, CORRELATION_HEADER, None)
    caused_by = getattr(task.request, CAUSATION_HEADER, None)
    _tokens[task_id] = (correlation_id_var.set(cid), causation_id_var.set(caused_by))
    structlog.contextvars.bind_contextvars(correlation_id=cid, task=task.name, task_id=task_id)


def _on_postrun(task_id=None, **kwargs):
    tokens = _tokens.pop(task_id, None)
    if tokens:
        correlation_id_var.reset(tokens[0])
        causation_id_var.reset(tokens[1])
    structlog.contextvars.unbind_contextvars("correlation_id", "task", "task_id")


def connect() -> None:
    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid="shop-corr-publish")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="shop-corr-prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="shop-corr-postrun")
