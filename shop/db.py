"""Database helpers shared by every context."""

from django.db import connections
from django.db.models.fields import AutoFieldMixin

# Statement text and fields per (model, database vendor, conflict target): built once, like a
# prepared statement, instead of by the query compiler on every call.
_STATEMENTS: dict[tuple, tuple[str, list]] = {}


def _statement(model, connection, conflict: tuple[str, ...], rows: int = 1) -> tuple[str, list]:
    key = (model, connection.vendor, conflict, rows)
    if key not in _STATEMENTS:
        quote = connection.ops.quote_name
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
        columns = ", ".join(quote(f.column) for f in fields)
        values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * rows)
        # Identifiers come from the model's metadata, quoted; every value is a parameter.
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608
        if conflict:
            target = ", ".join(quote(meta.get_field(name).column) for name in conflict)
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        _STATEMENTS[key] = (sql, fields)
    return _STATEMENTS[key]


def _execute_insert(model, using: str, conflict: tuple[str, ...], rows: list[dict]) -> int:
    connection = connections[using]
    sql, fields = _statement(model, connection, conflict, len(rows))
    params = []
    for values in rows:
        row = model(**values)  # defaults and ``auto_now_add`` apply as in ``save()``
        params.extend(f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_row(model, *, using: str, **values) -> None:
    """``INSERT`` one row and read nothing back: for rows the caller writes and does not use
    again (outbox rows, the saga's step log, the orders event store).

    ``objects.create`` builds every statement through Django's query compiler and asks for the
    new primary key back; for these rows that was several times the CPU of the statement itself
    (docs/performance.md). The model's ``save()`` and its signals do not run, so use this only
    for models that define neither.
    """
    _execute_insert(model, using, (), [values])


def insert_rows(model, *, using: str, rows: list[dict]) -> None:
    """``insert_row`` for several rows in one statement (a reservation's lines, its ledger rows):
    ``bulk_create`` pays the query compiler too, and asks for every new primary key back."""
    if rows:
        _execute_insert(model, using, (), rows)


def insert_unless_exists(model, *, using: str, conflict: tuple[str, ...], **values) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING``: True when the row was inserted, False when a
    row with the same ``conflict`` fields already exists.

    One statement. The usual ways to learn "was it already there?" inside a transaction,
    ``get_or_create`` or catching ``IntegrityError``, need a savepoint around the insert: two more
    round trips on every call, which the inbox (once per delivery) and the idempotency keys (once
    per command) paid on the hot path. Defaults and ``auto_now_add`` apply as in ``save()``.
    Works on PostgreSQL and SQLite (both know ``ON CONFLICT``).
    """
    return _execute_insert(model, using, tuple(conflict), [values]) == 1
