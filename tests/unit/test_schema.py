"""The checked-in JSON Schemas: up to date with their models, valid, and in agreement with the
examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from pgtopo.loader import interpolate, load_topology
from pgtopo.schema import SCHEMAS, document_schema, schema_text, topology_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "topology.schema.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ENVS = [{}, {"PGTOPO_IMAGE": "registry.example/pgtopo/postgres:16"}]


def interpolated(value: Any, env: dict[str, str]) -> Any:
    """`value` with every string value (not key) interpolated, as the loader does."""
    if isinstance(value, dict):
        return {k: interpolated(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolated(v, env) for v in value]
    return interpolate(value, env) if isinstance(value, str) else value


def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", SCHEMAS)
def test_checked_in_schema_is_fresh(name: str) -> None:
    stale = f"schemas/{name}.schema.json is stale: run `make schema`"
    assert (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8") == schema_text(name), stale


def test_every_checked_in_schema_is_generated() -> None:
    assert sorted(p.name for p in (ROOT / "schemas").glob("*.json")) == sorted(f"{n}.schema.json" for n in SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_text_is_deterministic(name: str) -> None:
    assert schema_text(name) == schema_text(name)
    assert schema_text(name).endswith("}\n")
    assert schema_text() == schema_text("topology")


@pytest.mark.parametrize("name", ["plan", "status"])
def test_document_schema_header(name: str) -> None:
    schema = document_schema(name)
    assert list(schema)[:2] == ["$schema", "$id"]
    assert schema["$id"] == f"https://pgtopo.dev/schemas/{name}.schema.json"
    Draft202012Validator.check_schema(schema)


def test_plan_schema_refers_to_the_topology_schema_instead_of_copying_it() -> None:
    schema = document_schema("plan")
    assert schema["properties"]["topology"]["$ref"] == "topology.schema.json"
    assert set(schema["$defs"]) == {"ActionDocument", "Fingerprint", "Kind", "SourceFile", "Summary"}


def test_schema_header() -> None:
    schema = topology_schema()
    assert list(schema)[:2] == ["$schema", "$id"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://pgtopo.dev/schemas/topology.schema.json"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("env", ENVS, ids=["unset", "set"])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_after_interpolation(example: Path, env: dict[str, str]) -> None:
    raw = interpolated(YAML(typ="safe").load(example.read_text(encoding="utf-8")), env)
    errors = [e.message for e in validator().iter_errors(raw)]
    assert errors == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_loaded_examples_dump_to_valid_documents(example: Path) -> None:
    dumped = load_topology(example, {}).model_dump(mode="json", exclude_none=True)
    assert [e.message for e in validator().iter_errors(dumped)] == []


def valid() -> dict[str, Any]:
    return {"version": 1, "cluster": "pg", "image": "postgres:17", "primary": "primary", "nodes": {"primary": {}}}


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"cluster": "Bad Name"},
        {"image": "no spaces allowed"},
        {"nodes": {"Bad Name": {}}},
        {"nodes": {}},
        {"nodes": {"primary": {"port": 70000}}},
        {"nodes": {"primary": {"upstrem": "x"}}},
        {"nodes": {"primary": None}},
        {"parameters": {"work_mem": ["8MB"]}},
        {"auth": {"superuser_password": {"envv": "X"}}},
        {"colour": "blue"},
    ],
    ids=repr,
)
def test_schema_rejects_invalid_documents(change: dict[str, Any]) -> None:
    assert list(validator().iter_errors({**valid(), **change}))


def test_schema_rejects_missing_required_keys() -> None:
    doc = valid()
    del doc["nodes"]
    assert list(validator().iter_errors(doc))


def test_schema_accepts_interpolation_where_files_use_it() -> None:
    doc = {**valid(), "image": "${PGTOPO_IMAGE:-postgres:17}", "network": "${NET}"}
    assert list(validator().iter_errors(doc)) == []


def test_schema_accepts_the_minimal_document() -> None:
    assert list(validator().iter_errors(valid())) == []
