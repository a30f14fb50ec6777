"""One error map: domain errors carry their code, status and message; ``shop.api.exceptions`` maps
them all, and views neither catch them nor spell error codes themselves."""

import ast
import importlib
from http import HTTPStatus
from pathlib import Path

import pytest

from shop.api.exceptions import exception_handler
from shop.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]
ERROR_MODULES = sorted(path for path in (ROOT / "apps").glob("*/errors.py"))
VIEW_MODULES = sorted((ROOT / "apps").glob("*/views.py"))
# Query-string validation belongs to the list mechanism (shop/api, issue 15), not to a domain error.
KNOWN_VIEW_CODES = {("orders", "VALIDATION_ERROR")}


def _domain_errors() -> list[type[DomainError]]:
    found = []
    for path in ERROR_MODULES:
        module = importlib.import_module(f"apps.{path.parent.name}.errors")
        found += [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, DomainError)]
    return sorted(set(found) - {DomainError}, key=lambda cls: cls.__qualname__)


def test_every_context_with_domain_errors_keeps_them_in_its_errors_module():
    assert {path.parent.name for path in ERROR_MODULES} >= {"accounts", "catalog", "inventory", "orders", "payments"}


@pytest.mark.parametrize("error_class", _domain_errors(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_each_domain_error_names_a_code_and_an_error_status(error_class):
    assert error_class.code.isupper() and " " not in error_class.code
    assert HTTPStatus(error_class.http_status) >= 400


def test_the_handler_maps_a_domain_error_to_its_envelope_status_and_challenge():
    class Refused(DomainError):
        code = "TEA_REFUSED"
        http_status = HTTPStatus.UNAUTHORIZED
        public_message = "No tea for you."
        auth_header = 'Bearer realm="api"'

        def details(self):
            return {"pot": "empty"}

    response = exception_handler(Refused("internal reason, never shown"), {})
    assert response.status_code == 401
    assert response.data == {
        "success": False,
        "error": {"code": "TEA_REFUSED", "message": "No tea for you.", "details": {"pot": "empty"}},
    }
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def _caught_names(tree: ast.AST) -> set[str]:
    names = set()
    for handler in (node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)):
        for leaf in ast.walk(handler.type) if handler.type else ():
            if isinstance(leaf, ast.Name | ast.Attribute):
                names.add(leaf.attr if isinstance(leaf, ast.Attribute) else leaf.id)
    return names


@pytest.mark.parametrize("path", VIEW_MODULES, ids=lambda p: p.parent.name)
def test_views_neither_catch_domain_errors_nor_spell_error_codes(path):
    tree = ast.parse(path.read_text())
    domain_names = {cls.__name__ for cls in _domain_errors()} | {"OrderError", "PaymentError", "CatalogError"}
    assert _caught_names(tree) & domain_names == set()
    codes = {
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "code" and isinstance(keyword.value, ast.Constant)
    }
    assert {(path.parent.name, code) for code in codes} <= KNOWN_VIEW_CODES
