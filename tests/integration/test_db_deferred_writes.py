"""Writes nobody reads back wait on the connection and leave with the transaction's next round trip
(``shop.postgresql``'s ``defer_write``), without changing what anyone reads or what commits.

These run in real transactions (``transaction=True``): inside a test's own transaction every
write is a savepoint's, and runs at once (the last test shows it)."""

import uuid

import pytest
from django.db import IntegrityError, connections, transaction
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg import pq

from apps.orders.saga.models import CheckoutSaga, SagaStepLog
from shop.db import insert_row, select_object, update_rows
from shop.observability import tracing

IDLE, INTRANS = pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS


def _status():
    return connections["orders"].connection.info.transaction_status


def _sagas(*order_ids) -> set:
    return set(CheckoutSaga.objects.filter(order_id__in=order_ids).values_list("order_id", flat=True))


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_write_nobody_reads_is_not_sent_before_the_commit_and_then_is_committed():
    order_id = uuid.uuid4()
    connections["orders"].ensure_connection()
    with transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=order_id)
        assert _status() == IDLE  # nothing went to the server, not even BEGIN
    assert _sagas(order_id) == {order_id}
    assert connections["orders"].connection.autocommit  # psycopg's flag is back as Django left it


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_read_after_deferred_writes_sees_them_in_one_transaction():
    order_id = uuid.uuid4()
    with transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=order_id)
        update_rows(CheckoutSaga, using="orders", values={"step_attempts": 4}, order_id=order_id)
        found = select_object(CheckoutSaga, using="orders", order_id=order_id)  # carries BEGIN and both writes
        assert found.step_attempts == 4
        assert _status() == INTRANS
        assert not connections["orders"].connection.autocommit
        insert_row(SagaStepLog, using="orders", saga=found, step="RESERVE_STOCK", outcome="SENT")
        # An ORM statement sends what waits before it runs, too.
        assert SagaStepLog.objects.filter(saga_id=found.pk).count() == 1
    assert SagaStepLog.objects.filter(saga_id=found.pk).count() == 1


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_failing_deferred_write_fails_the_commit_and_nothing_of_the_transaction_stays():
    taken, fresh = uuid.uuid4(), uuid.uuid4()
    insert_row(CheckoutSaga, using="orders", order_id=taken)

    with pytest.raises(IntegrityError), transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=fresh)
        insert_row(CheckoutSaga, using="orders", order_id=taken)  # a duplicate, raised by the COMMIT it rides

    assert _sagas(taken, fresh) == {taken}
    with transaction.atomic(using="orders"):  # the connection is usable, and forgot the failed writes
        insert_row(CheckoutSaga, using="orders", order_id=fresh)
    assert _sagas(taken, fresh) == {taken, fresh}


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_deferred_write_failing_where_a_caller_catches_errors_still_rolls_the_transaction_back():
    """The nested block's SAVEPOINT sends the waiting writes; its caller takes the duplicate for
    its own error and carries on. PostgreSQL would answer the outer COMMIT of the aborted
    transaction with a rollback, not an error: the on-commit work must not run."""
    taken, fresh = uuid.uuid4(), uuid.uuid4()
    insert_row(CheckoutSaga, using="orders", order_id=taken)
    committed = []

    with transaction.atomic(using="orders"):
        transaction.on_commit(lambda: committed.append(True), using="orders")
        insert_row(CheckoutSaga, using="orders", order_id=fresh)
        insert_row(CheckoutSaga, using="orders", order_id=taken)  # a duplicate, still waiting
        try:
            with transaction.atomic(using="orders"):
                pass
        except IntegrityError:
            pass  # "someone else was first": a caller handling what it thinks is its own error

    assert committed == []
    assert _sagas(taken, fresh) == {taken}


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_rollback_discards_the_writes_still_waiting():
    dropped, kept = uuid.uuid4(), uuid.uuid4()

    with pytest.raises(RuntimeError), transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=dropped)
        raise RuntimeError("the caller changed its mind")
    with transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=kept)

    assert _sagas(dropped, kept) == {kept}


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_writes_made_before_a_savepoint_survive_its_rollback_and_those_inside_it_do_not():
    before, inside = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=before)
        with pytest.raises(RuntimeError), transaction.atomic(using="orders"):  # a savepoint
            insert_row(CheckoutSaga, using="orders", order_id=inside)
            raise RuntimeError("undo the savepoint")
    assert _sagas(before, inside) == {before}


@pytest.mark.django_db(databases=["orders"])
def test_inside_a_surrounding_transaction_each_write_runs_at_once():
    order_id = uuid.uuid4()
    with transaction.atomic(using="orders"):  # a savepoint of the test's transaction
        insert_row(CheckoutSaga, using="orders", order_id=order_id)
        assert connections["orders"]._deferred_writes == []
    assert _sagas(order_id) == {order_id}


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.instrument(tracing.build_provider(exporter, SimpleSpanProcessor))
    yield lambda: [span for span in exporter.get_finished_spans() if "deferred" in span.name]
    tracing.uninstrument()


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_each_string_of_deferred_writes_is_traced_as_a_client_span_with_its_statements_but_not_their_values(spans):
    order_id = uuid.uuid4()
    with transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=order_id)
        saga = select_object(CheckoutSaga, using="orders", order_id=order_id)  # sends the insert first
        insert_row(SagaStepLog, using="orders", saga=saga, step="RESERVE_STOCK", outcome="SENT", detail="secret")

    deferred = spans()
    assert [span.kind.name for span in deferred] == ["CLIENT", "CLIENT"]
    first, second = (span.attributes["db.statement"] for span in deferred)
    assert first.startswith('INSERT INTO "orders_checkoutsaga"')
    assert second.startswith('INSERT INTO "orders_sagasteplog"') and second.endswith("; COMMIT")
    assert str(order_id) not in first and "secret" not in second  # values stay out of traces


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_a_failing_string_of_deferred_writes_is_traced_as_an_error_without_the_message_that_quotes_its_values(spans):
    taken = uuid.uuid4()
    insert_row(CheckoutSaga, using="orders", order_id=taken)

    with pytest.raises(IntegrityError, match=str(taken)), transaction.atomic(using="orders"):
        insert_row(CheckoutSaga, using="orders", order_id=taken)  # the key's refusal names the value

    [failed] = spans()
    assert failed.status.status_code.name == "ERROR"
    assert failed.status.description == "UniqueViolation (23505)"
    assert not failed.events  # no exception event: its message would carry the value
