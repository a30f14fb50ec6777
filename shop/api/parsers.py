"""The one JSON body parser of the API (and of the rate limiter's look at login bodies).

Stricter than ``json.loads`` in two ways, both answered with 400 ``MALFORMED_REQUEST``:

* **Nesting** deeper than ``MAX_DEPTH``: Python's decoder (and the camelCase conversion after
  it) recurse per level, so a 1 MiB body of ``[[[[…`` used to end in a ``RecursionError``, a
  500 and a logged traceback on every request. No API body is nested more than a few levels.
* **Ambiguous keys**: two keys of one object that are the same name once case and
  underscores are ignored (``email``/``EMAIL``, ``email``/``e_mail``, or an exact duplicate).
  The camelCase parser maps them onto one field and the last one silently won, so
  ``{"email": "decoy", "EMAIL": "victim"}`` was throttled as ``decoy`` and authenticated as
  ``victim``. What a client means must be unambiguous before anything counts or checks it.
"""

import json
from typing import Any

from django.conf import settings
from djangorestframework_camel_case.parser import CamelCaseJSONParser
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


class UnsafeJSON(ValueError):
    """The body is not JSON, or not JSON this API accepts (too deep, ambiguous keys)."""


def _fold(key: str) -> str:
    return key.replace("_", "").casefold()


def _unambiguous_object(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, str] = {}
    for key, _value in pairs:
        folded = _fold(key)
        if folded in seen:
            raise UnsafeJSON(f"keys {seen[folded]!r} and {key!r} name the same field; send it once")
        seen[folded] = key
    return dict(pairs)


def _check_depth(data: Any) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise UnsafeJSON(f"nested deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def loads(raw: str | bytes) -> Any:
    """``json.loads`` that refuses deep nesting and ambiguous keys (``UnsafeJSON``)."""
    try:
        data = json.loads(raw, object_pairs_hook=_unambiguous_object)
    except RecursionError:
        raise UnsafeJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise UnsafeJSON(f"not UTF-8: {exc.reason}") from None
    _check_depth(data)
    return data


def decoded(raw: bytes, encoding: str | None) -> str:
    """A body's text as the API reads it: in the charset its ``Content-Type`` declares (Django's
    ``request.encoding``), else ``DEFAULT_CHARSET``. Whatever else reads a body before the view
    (the rate limiter, for a sign-in's account) reads it through here: read as UTF-8 while the view
    honoured a declared ``charset=latin-1``, a body valid only in that charset hid the account from
    the per-account sign-in limits while the view still signed in to it."""
    return raw.decode(encoding or settings.DEFAULT_CHARSET)


def loads_snake_case(raw: str | bytes) -> Any:
    """What a view sees of a JSON body: ``loads`` then the camelCase → snake_case conversion."""
    return underscoreize(loads(raw), **CamelCaseJSONParser.json_underscoreize)


class StrictCamelCaseJSONParser(CamelCaseJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding")
        try:
            return loads_snake_case(decoded(stream.read(), encoding))
        except (UnsafeJSON, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}")
