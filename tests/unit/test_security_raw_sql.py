"""No SQL is ever built from strings: the ORM's bound parameters are the injection defense.

ruff's S608 catches string-built SQL that *looks like* SQL; this scan is the stricter half:
any ``.raw()``, ``.extra()``, ``RawSQL()`` or ``cursor.execute[many]()`` whose SQL argument
is an f-string, a ``%``/``+`` expression or a ``.format()`` call fails the build, whatever
the string says. Literal SQL with parameters passed separately is fine (``SELECT 1``).

Migrations are not scanned: their DDL interpolates identifiers (index and column names) that
are constants in the migration file, identifiers cannot be bound as parameters, and migrations
never see request data (ruff skips them for the same reason).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("apps", "shop", "config")
SQL_METHODS = {"raw", "extra", "execute", "executemany"}
SQL_CALLABLES = {"RawSQL"}


def _built_from_strings(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _sql_arguments(call: ast.Call) -> list[ast.AST]:
    args = list(call.args[:1]) + [kw.value for kw in call.keywords if kw.arg in {"sql", "raw_query", "where"}]
    if isinstance(call.func, ast.Attribute) and call.func.attr == "extra":
        # extra(where=[...], select={...}): every element is SQL.
        expanded = []
        for kw in call.keywords:
            if isinstance(kw.value, (ast.List, ast.Tuple)):
                expanded += kw.value.elts
            elif isinstance(kw.value, ast.Dict):
                expanded += kw.value.values
        args += expanded
    return args


def violations(source: str, filename: str = "<string>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name not in SQL_METHODS | SQL_CALLABLES:
            continue
        if any(_built_from_strings(arg) for arg in _sql_arguments(node)):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_no_sql_is_built_from_strings_anywhere_in_the_code_base():
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, "SQL built from strings (use ORM lookups or bound parameters):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "cursor.execute(f\"SELECT * FROM t WHERE email = '{email}'\")",
        'cursor.execute("SELECT * FROM t WHERE id = %s" % user_id)',
        'cursor.execute("SELECT * FROM t WHERE id = " + user_id)',
        'cursor.executemany("INSERT INTO {} VALUES (%s)".format(table), rows)',
        "User.objects.raw(f\"SELECT * FROM accounts_user WHERE name = '{name}'\")",
        "qs.extra(where=[\"name = '%s'\" % name])",
        'qs.annotate(x=RawSQL("SELECT %s" % value, []))',
        'connection.cursor().execute(sql="DELETE FROM t WHERE id = " + str(pk))',
    ],
)
def test_the_scan_catches_string_built_sql(snippet):
    assert violations(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        'cursor.execute("SELECT 1")',
        'cursor.execute("SELECT * FROM t WHERE id = %s", [user_id])',
        'User.objects.raw("SELECT * FROM accounts_user WHERE email = %s", [email])',
        'qs.extra(where=["name = %s"], params=[name])',
        'cursor.execute(f"SELECT 1")',
    ],
)
def test_the_scan_allows_parameterized_sql(snippet):
    assert violations(snippet) == []
