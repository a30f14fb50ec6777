"""Event schemas as committed contract files: ``<dir>/<type>.v<version>.json``.

Each file is a standalone JSON Schema (draft 2020-12) of the whole wire envelope for one
type and version, so a consumer outside this codebase can validate what it receives. A
published version is frozen: changing its schema means registering a new version (with an
upcaster from the previous one). ``problems()`` is what the contract test and
``manage.py events schema --check`` report; ``export()`` writes only new files and refuses to
rewrite a frozen one unless forced.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop.events import registry, schemas

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def document(spec: registry.EventSpec) -> dict[str, Any]:
    """The wire envelope of ``spec`` as a JSON Schema (the description is documentation, not contract)."""
    return {
        "$schema": DRAFT,
        "$id": f"urn:shop:event:{spec.type}:v{spec.version}",
        "title": f"{spec.type} v{spec.version}",
        "type": "object",
        "required": ["id", "type", "version", "occurredAt", "aggregateId", "correlationId", "causationId", "data"],
        "additionalProperties": False,
        "properties": {
            "id": schemas.UUID,
            "type": {"const": spec.type},
            "version": {"const": spec.version},
            "occurredAt": {"type": "string", "format": "date-time"},
            "aggregateId": {"type": "string", "minLength": 1, "maxLength": 64},
            "correlationId": {"type": ["string", "null"]},
            "causationId": {"type": ["string", "null"]},
            "data": spec.schema,
            "metadata": {
                "type": "object",
                "description": "Optional delivery metadata, e.g. the W3C trace context of the publisher",
                "properties": {"traceparent": {"type": "string"}, "tracestate": {"type": "string"}},
            },
        },
    }


def render(spec: registry.EventSpec) -> str:
    return json.dumps(document(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_for(directory: Path, spec: registry.EventSpec) -> Path:
    return Path(directory) / f"{spec.type}.v{spec.version}.json"


@dataclass(frozen=True)
class Problem:
    spec: registry.EventSpec
    path: Path
    kind: str  # "missing" | "changed" | "no-upcaster"

    def __str__(self) -> str:
        name = f"{self.spec.type} v{self.spec.version}"
        if self.kind == "missing":
            return f"{name}: not exported; run `manage.py events schema` and commit {self.path.name}"
        if self.kind == "no-upcaster":
            return f"{name}: no upcaster from v{self.spec.version - 1}; consumers could not read older events"
        return (
            f"{name}: schema differs from the committed {self.path.name}. A published version is frozen: "
            f"register the change as v{self.spec.version + 1} with an upcaster from v{self.spec.version}"
        )


def problems(directory: Path) -> list[Problem]:
    found = []
    for spec in registry.all_specs():
        path = path_for(directory, spec)
        if spec.version > 1 and not registry.has_upcaster(spec.type, spec.version - 1):
            found.append(Problem(spec, path, "no-upcaster"))
        if not path.exists():
            found.append(Problem(spec, path, "missing"))
        elif json.loads(path.read_text()) != document(spec):
            found.append(Problem(spec, path, "changed"))
    return found


def export(directory: Path, *, force: bool = False) -> tuple[list[Path], list[Problem]]:
    """Write missing files (and changed ones only when ``force``); returns (written, refused)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    written, refused = [], []
    for problem in problems(directory):
        if problem.kind == "changed" and not force:
            refused.append(problem)
            continue
        if problem.kind in ("missing", "changed"):
            problem.path.write_text(render(problem.spec))
            written.append(problem.path)
    return written, refused


def stale_files(directory: Path) -> list[Path]:
    """Committed files no registered event matches (removed types, or apps not installed here)."""
    known = {path_for(directory, spec).name for spec in registry.all_specs()}
    return sorted(p for p in Path(directory).glob("*.v*.json") if p.name not in known)
