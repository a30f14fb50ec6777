"""Architecture tests for the facades, the only modules one context may import from another.

Every public facade function takes keyword arguments only and returns primitives, frozen
dataclasses, or containers of them (read from its annotations, which therefore must exist):
never a model instance, which would drag another context's database and invariants along.
Public names follow ``<entity>_<action>`` like the services.
"""

import dataclasses
import datetime
import decimal
import importlib
import inspect
import re
import types
import typing
import uuid
from collections import abc
from pathlib import Path

import pytest
from django.db import models

ROOT = Path(__file__).resolve().parents[2]
FACADES = sorted(f"apps.{path.parent.name}.facade" for path in (ROOT / "apps").glob("*/facade.py"))
PRIMITIVES = (
    type(None), bool, int, float, str, bytes, decimal.Decimal, uuid.UUID, datetime.datetime, datetime.date,
)  # fmt: skip
CONTAINERS = {list, tuple, dict, set, frozenset, abc.Iterable, abc.Iterator, abc.Sequence, abc.Mapping}


def _functions(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [
        (name, fn)
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and fn.__module__ == module_name and not name.startswith("_")
    ]


ALL_FUNCTIONS = [(module, name, fn) for module in FACADES for name, fn in _functions(module)]


def _forbidden_parts(annotation, seen=None) -> list[str]:
    """What in a return annotation is not a primitive, a frozen dataclass or a container of them."""
    seen = seen if seen is not None else set()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [bad for arg in typing.get_args(annotation) for bad in _forbidden_parts(arg, seen)]
    if origin is not None:
        if origin not in CONTAINERS:
            return [repr(annotation)]
        return [
            bad for arg in typing.get_args(annotation) if arg is not Ellipsis for bad in _forbidden_parts(arg, seen)
        ]
    if annotation in PRIMITIVES or annotation in seen:
        return []
    if isinstance(annotation, type) and issubclass(annotation, models.Model):
        return [f"model {annotation.__name__}"]
    if dataclasses.is_dataclass(annotation):
        if not annotation.__dataclass_params__.frozen:
            return [f"mutable dataclass {annotation.__name__}"]
        seen.add(annotation)
        hints = typing.get_type_hints(annotation)
        return [bad for field in dataclasses.fields(annotation) for bad in _forbidden_parts(hints[field.name], seen)]
    if isinstance(annotation, type) and issubclass(annotation, str):  # TextChoices values travel as str
        return []
    return [repr(annotation)]


def test_every_context_has_a_facade_and_each_exports_functions():
    assert {name.split(".")[1] for name in FACADES} >= {"accounts", "catalog", "inventory", "orders", "payments"}
    assert all(_functions(module) for module in FACADES)


@pytest.mark.parametrize(("module", "name", "fn"), ALL_FUNCTIONS, ids=[f"{m}.{n}" for m, n, _ in ALL_FUNCTIONS])
def test_facade_functions_take_keyword_arguments_only(module, name, fn):
    positional = [
        p.name for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY
    ]
    assert positional == [], f"{module}.{name}: make {positional} keyword-only (def {name}(*, ...))"


@pytest.mark.parametrize(("module", "name", "fn"), ALL_FUNCTIONS, ids=[f"{m}.{n}" for m, n, _ in ALL_FUNCTIONS])
def test_facade_functions_return_values_never_model_instances(module, name, fn):
    hints = typing.get_type_hints(fn)
    assert "return" in hints, f"{module}.{name}: annotate the return type"
    assert _forbidden_parts(hints["return"]) == []


@pytest.mark.parametrize(("module", "name", "fn"), ALL_FUNCTIONS, ids=[f"{m}.{n}" for m, n, _ in ALL_FUNCTIONS])
def test_facade_functions_are_named_entity_action(module, name, fn):
    assert re.fullmatch(r"[a-z]+(_[a-z]+)+", name), f"{module}.{name}: name it <entity>_<action>"


def test_the_checker_catches_a_model_a_mutable_dataclass_and_an_unannotated_type():
    from apps.orders.models import Order

    @dataclasses.dataclass
    class Mutable:
        id: int

    @dataclasses.dataclass(frozen=True)
    class Wrapper:
        order: Order

    assert _forbidden_parts(Order | None) == ["model Order"]
    assert _forbidden_parts(list[Mutable]) == ["mutable dataclass Mutable"]
    assert _forbidden_parts(dict[uuid.UUID, Wrapper]) == ["model Order"]
    assert _forbidden_parts(typing.Any) != []
