"""Database helpers shared by every context: the hot path's statements, built once.

Django's query compiler builds every statement in Python on every call. On the checkout's hot
path (a row locked, read, changed and written back, once per delivery) that costs more than the
database's own work: measured in-process (``time.process_time``, 2,000 calls each, one saga
row), ``CheckoutSaga.objects.select_for_update().filter(order_id=...).first()`` took 450 µs of
CPU against 110 µs for the same statement built once here; ``save(update_fields=...)`` of seven
fields 280 µs against 105. So the hot path inserts (``insert_objects``), reads
(``select_objects``) and updates (``update_object``, ``update_rows``) through statements cached
per model and shape; everything else keeps using the ORM. Rows read here are ordinary model
instances (``Model.from_db``, the field converters applied), and no value is ever written into
the SQL by us: it is a parameter the server binds, or, for a deferred write (below), bound into
the statement's text by psycopg's own quoting.

Inside the outermost transaction on PostgreSQL (no savepoint open, no other execute wrapper,
queries not logged), the writes here return before they reach the database: they wait on the
connection and leave with its next round trip, before the next statement or with the COMMIT
(``shop.postgresql``). So an insert's or update's error is raised by that later statement (a
read, a nested ``atomic``'s SAVEPOINT, the COMMIT) and the transaction is marked for rollback
and rolls back whole. A caller that handles a write's refusal where it makes it asks for it
``now`` (the event store's sequence key); an insert with a conflict target
(``insert_unless_exists``) always runs at once, since its count is the answer.
"""

import datetime
import uuid
from typing import NamedTuple

from django.db import connections
from django.db.models import fields as model_fields
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone

# Statement text and fields per (model, database vendor, conflict target): built once, like a
# prepared statement, instead of by the query compiler on every call.
_STATEMENTS: dict[tuple, tuple[str, list["_Column"]]] = {}


def _execute(connection, sql: str, params: list, *, fetch: bool = False, defer: bool = False):
    """Run one statement on a cursor kept for the connection's current database session; returns
    the rows when ``fetch``, else the row count (None for a write that was deferred).

    ``defer``: the caller reads nothing back, so on PostgreSQL inside a transaction the write may
    wait on the connection and leave with its next round trip (``shop.postgresql``'s
    ``defer_write``: the next read, or the COMMIT).

    ``with connection.cursor()`` per statement made a Django cursor wrapper and a psycopg cursor
    (which copies the connection's adapter map) and closed them again: a fifth of the CPU of an
    insert on the hot path (py-spy, session 6). The kept cursor is Django's own wrapper, so the
    connection's execute wrappers and error translation apply as before; it is replaced when the
    connection hands out another session (pool checkout, reconnect). While Django logs queries
    (``DEBUG``, ``django_assert_num_queries``) every statement gets its own logging cursor.

    Inside ``atomic``, with no execute wrapper but the backend's own (which only notes writes
    made outside ``atomic``), the statement goes to the database cursor under Django's error
    translation and broken-transaction check, without the wrapper chain Django builds per
    statement: 13 µs of the 66-79 an insert cost (3,000 inserts, process time). A wrapper
    installed by anyone else (a test counting statements, say) sees every statement as before.
    """
    kept = getattr(connection, "_shop_kept_cursor", None)
    if (
        kept is None
        or connection.queries_logged
        or connection.connection is None
        or kept.cursor.connection is not connection.connection
        or getattr(kept.cursor, "closed", False)
    ):
        if connection.queries_logged:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if fetch else cursor.rowcount
        kept = connection._shop_kept_cursor = connection.cursor()
    if connection.in_atomic_block and _only_own_wrappers(connection):
        connection.validate_no_broken_transaction()
        if hasattr(connection, "defer_write"):  # shop.postgresql
            if defer and connection.defer_write(sql, params):
                return None
            return connection.execute_now(kept.cursor, sql, params, fetch=fetch)
        with connection.wrap_database_errors:
            kept.cursor.execute(sql, params)
            return kept.cursor.fetchall() if fetch else kept.cursor.rowcount
    kept.execute(sql, params)
    return kept.fetchall() if fetch else kept.rowcount


def _only_own_wrappers(connection) -> bool:
    own = getattr(connection, "_note_autocommit_write", None)
    return all(wrapper == own for wrapper in connection.execute_wrappers)


def _statement(model, connection, conflict: tuple[str, ...], rows: int = 1) -> tuple[str, list["_Column"]]:
    """The ``INSERT`` for ``rows`` rows of ``model`` and, per column, how a row fills it (``_plan``)."""
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
        _STATEMENTS[key] = (sql, [_plan(field, connection.vendor) for field in fields])
    return _STATEMENTS[key]


# Values the database adapter takes as they are, per field class: Django's ``get_db_prep_save``
# would hand them back unchanged after several calls (about 330 fields per checkout order).
_AS_IS: dict[type, tuple[type, ...]] = {
    model_fields.CharField: (str,),
    model_fields.TextField: (str,),
    model_fields.IntegerField: (int,),
    model_fields.SmallIntegerField: (int,),
    model_fields.BigIntegerField: (int,),
    model_fields.PositiveIntegerField: (int,),
    model_fields.PositiveSmallIntegerField: (int,),
    model_fields.BooleanField: (bool,),
}
# PostgreSQL's adapter also takes these as they are (SQLite's needs them as text).
_AS_IS_POSTGRESQL: dict[type, tuple[type, ...]] = {
    **_AS_IS,
    model_fields.UUIDField: (uuid.UUID,),
    model_fields.DateTimeField: (datetime.datetime,),
}


def _as_is(field, vendor: str) -> tuple[type, ...] | None:
    return (_AS_IS_POSTGRESQL if vendor == "postgresql" else _AS_IS).get(type(field))


def _db_value(field, value, connection, as_is: tuple[type, ...] | None = ()):
    """``field.get_db_prep_save(value, connection)``, skipped when it would return ``value`` itself:
    ``None``, or a value of the exact type the field's exact class stores (an aware datetime).
    ``as_is``: the field's ``_as_is``, when the caller has it at hand."""
    if as_is == ():
        as_is = _as_is(field, connection.vendor)
    if as_is is not None and (
        value is None or (type(value) in as_is and (type(value) is not datetime.datetime or value.tzinfo is not None))
    ):
        return value
    return field.get_db_prep_save(value, connection)


class _Column(NamedTuple):
    """How an insert fills one field, worked out once per statement: the row helpers asked the
    field the same questions for every value (about 57 attribute lookups per delivery)."""

    field: model_fields.Field
    attname: str
    name: str
    auto: str | None  # "now" (auto_now/auto_now_add on a datetime), "today" (on a date), or None
    related_attname: str | None  # for a relation given by its object: the attribute holding its key
    as_is: tuple[type, ...] | None  # ``_as_is``


def _plan(field, vendor: str) -> _Column:
    auto = None
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        auto = "now" if isinstance(field, model_fields.DateTimeField) else "today"
    related = field.target_field.attname if field.is_relation else None
    return _Column(field, field.attname, field.name, auto, related, _as_is(field, vendor))


def _values_row(model, plan: list[_Column], values: dict) -> list:
    """The Python values of a row given as ``field=value`` (a related object or its id), in
    ``plan`` order, with defaults and ``auto_now``/``auto_now_add`` applied as ``save()`` would:
    ``Model(**values)`` built an instance only to read these back (50 µs a row)."""
    given = dict(values)
    row = []
    for column in plan:
        if column.auto is not None:
            given.pop(column.name, None)
            given.pop(column.attname, None)
            row.append(timezone.now() if column.auto == "now" else datetime.date.today())
        elif column.attname in given:
            row.append(given.pop(column.attname))
        elif column.name in given:
            related = given.pop(column.name)  # a relation given by its object (other fields match by attname)
            row.append(related if related is None else getattr(related, column.related_attname))
        else:
            row.append(column.field.get_default())
    if given:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(given))}")
    return row


def _execute_insert(objs: list, using: str) -> None:
    """One ``INSERT`` of ``objs`` (instances of one model), deferred where it can be."""
    model = type(objs[0])
    connection = connections[using]
    sql, plan = _statement(model, connection, (), len(objs))
    params = []
    for obj in objs:
        # ``pre_save`` applies defaults and ``auto_now``/``auto_now_add`` to the instance itself.
        params.extend(_db_value(c.field, c.field.pre_save(obj, add=True), connection, c.as_is) for c in plan)
    _execute(connection, sql, params, defer=True)


def _execute_insert_values(
    model, rows: list[dict], using: str, conflict: tuple[str, ...] = (), *, now: bool = False
) -> int | None:
    """``_execute_insert`` for rows given as ``field=value``, without building instances; with a
    ``conflict`` target (or ``now``) it runs at once and returns the rows written."""
    connection = connections[using]
    sql, plan = _statement(model, connection, conflict, len(rows))
    params = []
    for values in rows:
        params.extend(
            _db_value(c.field, value, connection, c.as_is)
            for c, value in zip(plan, _values_row(model, plan, values), strict=True)
        )
    return _execute(connection, sql, params, defer=not (conflict or now))  # a conflict target: the count answers


def insert_objects(objs: list, *, using: str) -> None:
    """``INSERT`` unsaved instances of one model in one statement and read nothing back: for the
    rows a hot path writes (an order and its lines, the saga row, outbox rows, logs).

    ``objects.create``/``save()``/``bulk_create`` build every statement through Django's query
    compiler and ask for the new primary key back: 180 µs of CPU per row against 105 µs here,
    of which a ``SELECT 1`` round trip alone is about 58 (docs/performance.md). The model's
    ``save()`` and its signals do not run, so use this only for models whose ``save()`` adds
    nothing to an insert (``OrderEventRecord``'s refuses only updates) and that no signal
    receiver listens to. An
    instance whose primary key is set in Python (a UUID) is marked saved, so a later ``save()``
    updates it; one with an auto-increment key does not learn it and must not be saved again.
    """
    if not objs:
        return
    _execute_insert(objs, using)
    for obj in objs:
        if obj.pk is not None:
            obj._state.adding, obj._state.db = False, using


def insert_row(model, *, using: str, **values) -> None:
    """``insert_objects`` for one row given as field values (no instance is built)."""
    _execute_insert_values(model, [values], using)


def insert_rows(model, *, using: str, rows: list[dict], now: bool = False) -> None:
    """``insert_objects`` for several rows given as field values (a reservation's lines).

    ``now``: the insert reaches the database before this returns, for a caller that handles its
    refusal here (a unique key that means "someone else was first"); otherwise, inside a
    transaction, it may travel with the next round trip and fail there."""
    if rows:
        _execute_insert_values(model, rows, using, now=now)


def insert_unless_exists(model, *, using: str, conflict: tuple[str, ...], **values) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING``: True when the row was inserted, False when a
    row with the same ``conflict`` fields already exists.

    One statement. The usual ways to learn "was it already there?" inside a transaction,
    ``get_or_create`` or catching ``IntegrityError``, need a savepoint around the insert: two more
    round trips on every call, which the inbox (once per delivery) and the idempotency keys (once
    per command) paid on the hot path. Defaults and ``auto_now_add`` apply as in ``save()``.
    Works on PostgreSQL and SQLite (both know ``ON CONFLICT``).
    """
    return _execute_insert_values(model, [values], using, tuple(conflict)) == 1


# --- reads and updates ------------------------------------------------------------------------

_READS: dict[tuple, tuple[str, list, list, list]] = {}
_WRITES: dict[tuple, tuple[str, list, list]] = {}


def _shape(where: dict) -> tuple:
    """What a ``where`` looks like to the statement: its names, and the length of each ``__in`` list."""
    return tuple((name, len(value)) if name.endswith("__in") else name for name, value in where.items())


def _where(meta, connection, shape: tuple) -> tuple[str, list]:
    """``col = %s`` per field, ``col IN (%s, ...)`` per ``field__in``; the field of each parameter."""
    quote = connection.ops.quote_name
    clauses, fields = [], []
    for item in shape:
        name, count = item if isinstance(item, tuple) else (item, None)
        field_name, _, lookup = name.partition("__")
        if lookup not in ("", "in"):
            raise ValueError(f"only equality and __in are supported, not {name!r}")
        field = meta.pk if field_name == "pk" else meta.get_field(field_name)
        if count is None:
            clauses.append(f"{quote(field.column)} = %s")
            fields.append(field)
        else:
            clauses.append(f"{quote(field.column)} IN ({', '.join(['%s'] * count)})")
            fields.extend([field] * count)
    return " AND ".join(clauses), fields


def _params(fields: list, where: dict, connection) -> list:
    values = [v for value in where.values() for v in (value if isinstance(value, list | tuple) else [value])]
    return [field.get_db_prep_value(value, connection) for field, value in zip(fields, values, strict=True)]


def select_objects(
    model,
    *,
    using: str,
    lock: bool = False,
    order_by: tuple[str, ...] = (),
    limit=None,
    only: tuple[str, ...] = (),
    **where,
):
    """The ``model`` rows matching ``where`` (``field=value`` or ``field__in=[...]``), as instances:
    ``model.objects.filter(**where).order_by(*order_by)[:limit]`` with ``select_for_update()``
    when ``lock`` (and the database supports it), and ``.only(*only)`` when given."""
    connection = connections[using]
    key = (model, connection.vendor, _shape(where), lock, order_by, limit, only)
    if key not in _READS:
        meta = model._meta
        where_sql, where_fields = _where(meta, connection, key[2])
        quote = connection.ops.quote_name
        # In the model's field order, whatever the order of ``only``: ``Model.from_db`` fills the
        # fields it is given in that order and defers the rest.
        wanted = {meta.get_field(name) for name in only}
        fields = [f for f in meta.concrete_fields if f in wanted] if only else meta.concrete_fields
        columns = ", ".join(quote(f.column) for f in fields)
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {where_sql}"  # noqa: S608 - quoted metadata
        if order_by:
            sql += " ORDER BY " + ", ".join(
                f"{quote(meta.get_field(name.lstrip('-')).column)}{' DESC' if name.startswith('-') else ''}"
                for name in order_by
            )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        converters = []
        for index, field in enumerate(fields):
            column = field.get_col(meta.db_table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((index, column, found))
        _READS[key] = (sql, where_fields, [f.attname for f in fields], converters)
    sql, where_fields, attnames, converters = _READS[key]
    rows = _execute(connection, sql, _params(where_fields, where, connection), fetch=True)
    objects = []
    for row in rows:
        values = list(row)
        for index, column, found in converters:
            for convert in found:
                values[index] = convert(values[index], column, connection)
        objects.append(model.from_db(using, attnames, values))
    return objects


def select_object(
    model, *, using: str, lock: bool = False, order_by: tuple[str, ...] = (), only: tuple[str, ...] = (), **where
):
    """The first row ``select_objects`` finds, or None."""
    found = select_objects(model, using=using, lock=lock, order_by=order_by, limit=1, only=only, **where)
    return found[0] if found else None


def update_rows(model, *, using: str, values: dict, **where) -> None:
    """``model.objects.filter(**where).update(**values)`` (no ``auto_now``: pass it), for rows the
    caller knows are there (it has read or locked them): the count is not returned, so the write
    can travel with the transaction's next round trip."""
    connection = connections[using]
    key = (model, connection.vendor, tuple(values), _shape(where))
    if key not in _WRITES:
        meta = model._meta
        where_sql, where_fields = _where(meta, connection, key[3])
        quote = connection.ops.quote_name
        set_fields = [meta.get_field(name) for name in values]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in set_fields)
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where_sql}"  # noqa: S608 - quoted metadata
        _WRITES[key] = (sql, set_fields, where_fields)
    sql, set_fields, where_fields = _WRITES[key]
    params = [_db_value(field, value, connection) for field, value in zip(set_fields, values.values(), strict=True)]
    _execute(connection, sql, params + _params(where_fields, where, connection), defer=True)


def update_object(obj, fields: list[str], *, using: str) -> None:
    """``obj.save(update_fields=fields)`` for a row the hot path has just read: ``auto_now``
    fields among ``fields`` are set, as ``save()`` would; ``save()`` itself and signals do not run."""
    meta = type(obj)._meta
    values = {name: meta.get_field(name).pre_save(obj, add=False) for name in fields}
    update_rows(type(obj), using=using, values=values, pk=obj.pk)


def update_objects(objs: list, fields: list[str], *, using: str) -> None:
    """``update_object`` for several rows of one model, in one statement on PostgreSQL
    (``UPDATE ... FROM (VALUES ...)``, one shape per row count): an order's two or three stock
    rows are written with one round trip, not one each. The first row's values carry their
    column types, which the others take. Elsewhere (SQLite, the embedded mode) one per row."""
    connection = connections[using]
    if len(objs) < 2 or connection.vendor != "postgresql":
        for obj in objs:
            update_object(obj, fields, using=using)
        return
    meta = type(objs[0])._meta
    key = (type(objs[0]), "from values", tuple(fields), len(objs))
    if key not in _WRITES:
        quote = connection.ops.quote_name
        table, columns = quote(meta.db_table), [meta.pk] + [meta.get_field(name) for name in fields]
        typed = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
        plain = "(" + ", ".join(["%s"] * len(columns)) + ")"
        names = ", ".join(f"v{index}" for index in range(len(columns)))
        assignments = ", ".join(f"{quote(field.column)} = v.v{index}" for index, field in enumerate(columns) if index)
        rows = ", ".join([typed] + [plain] * (len(objs) - 1))
        # Identifiers and types come from the model's metadata, quoted; every value is a parameter.
        sql = (
            f"UPDATE {table} SET {assignments} FROM (VALUES {rows}) AS v({names}) "  # noqa: S608
            f"WHERE {table}.{quote(meta.pk.column)} = v.v0"
        )
        _WRITES[key] = (sql, columns, [])
    sql, columns, _ = _WRITES[key]
    params = []
    for obj in objs:
        params.append(_db_value(columns[0], obj.pk, connection))
        params.extend(_db_value(field, field.pre_save(obj, add=False), connection) for field in columns[1:])
    _execute(connection, sql, params, defer=True)


def release_to_pool(using: str) -> None:
    """Give this thread's connection to ``using`` back to its pool now, when it is pooled and not
    in a transaction: for a thread about to wait on something else (a payment provider) that
    would otherwise hold an idle connection for the whole wait. The next statement takes one
    from the pool again."""
    connection = connections[using]
    if connection.connection is not None and not connection.in_atomic_block and getattr(connection, "pool", None):
        connection.close()
