"""Event schemas are contracts: every registered (type, version) matches its committed file.

A failure here means a published schema changed (register a new version with an upcaster
instead) or a new one was never exported (`manage.py events schema`, then commit the file).
"""

import json

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from shop.events import contract, publish, registry
from shop.management.commands.events import default_schema_dir
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe.events import PINGED

SCHEMA_DIR = default_schema_dir()
SPECS = registry.all_specs()


def _spec(type: str, version: int) -> registry.EventSpec:
    return next(spec for spec in SPECS if (spec.type, spec.version) == (type, version))


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.type}.v{s.version}" for s in SPECS])
def test_registered_schema_matches_its_committed_contract(spec):
    path = contract.path_for(SCHEMA_DIR, spec)
    assert path.exists(), f"{spec.type} v{spec.version} is not exported: run `manage.py events schema`, commit it"
    committed = json.loads(path.read_text())
    assert committed == contract.document(spec), (
        f"{spec.type} v{spec.version} differs from {path.name}. A published version is frozen: register "
        f"v{spec.version + 1} with an upcaster from v{spec.version} instead of editing v{spec.version}."
    )


def test_every_later_version_can_be_upcast_from_the_one_before():
    assert [str(p) for p in contract.problems(SCHEMA_DIR) if p.kind == "no-upcaster"] == []


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_a_published_envelope_validates_against_its_contract_file():
    with transaction.atomic(using="orders"):
        envelope = publish(PINGED, {"note": "contract", "tier": 4}, aggregate_id="c-1", using="orders")
    document = json.loads(contract.path_for(SCHEMA_DIR, _spec(PINGED, 2)).read_text())
    validator = jsonschema.Draft202012Validator(document, format_checker=jsonschema.FormatChecker())
    validator.validate(envelope.to_wire())
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**envelope.to_wire(), "version": 1})


def test_the_command_exports_new_versions_and_refuses_to_rewrite_a_frozen_one(tmp_path, capsys):
    call_command("events", "schema", "--dir", str(tmp_path))
    assert {p.name for p in tmp_path.iterdir()} == {contract.path_for(tmp_path, s).name for s in SPECS}
    call_command("events", "schema", "--check", "--dir", str(tmp_path))

    frozen = contract.path_for(tmp_path, _spec(PINGED, 1))
    edited = json.loads(frozen.read_text())
    edited["properties"]["data"]["required"] = ["note", "tier"]
    frozen.write_text(json.dumps(edited))

    with pytest.raises(CommandError):
        call_command("events", "schema", "--check", "--dir", str(tmp_path))
    assert "probe.pinged v1: schema differs" in capsys.readouterr().err
    with pytest.raises(CommandError):
        call_command("events", "schema", "--dir", str(tmp_path))  # export will not paper over it
    assert json.loads(frozen.read_text()) == edited
    call_command("events", "schema", "--force", "--dir", str(tmp_path))
    call_command("events", "schema", "--check", "--dir", str(tmp_path))


def test_check_reports_a_missing_export(tmp_path):
    contract.export(tmp_path)
    contract.path_for(tmp_path, _spec(PINGED, 2)).unlink()
    assert [(p.spec.type, p.spec.version, p.kind) for p in contract.problems(tmp_path)] == [(PINGED, 2, "missing")]
