"""Database helpers shared by every context."""

from django.db import connections
from django.db.models.fields import AutoFieldMixin


def insert_unless_exists(model, *, using: str, conflict: tuple[str, ...], **values) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING``: True when the row was inserted, False when a
    row with the same ``conflict`` fields already exists.

    One statement. The usual ways to learn "was it already there?" inside a transaction,
    ``get_or_create`` or catching ``IntegrityError``, need a savepoint around the insert: two more
    round trips on every call, which the inbox (once per delivery) and the idempotency keys (once
    per command) paid on the hot path. Defaults and ``auto_now_add`` apply as in ``save()``.
    Works on PostgreSQL and SQLite (both know ``ON CONFLICT``).
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    row = model(**values)
    fields = [f for f in meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
    params = [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]
    columns = ", ".join(quote(f.column) for f in fields)
    target = ", ".join(quote(meta.get_field(name).column) for name in conflict)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from the model's metadata, quoted; every value is a parameter.
    table = quote(meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({target}) DO NOTHING"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
