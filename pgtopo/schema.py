"""The JSON Schemas pgtopo publishes, generated from its models: topology files (`spec.Topology`),
plans, status and history documents (`documents.PlanDocument`, `documents.StatusDocument`,
`history.HistoryDocument`), backup listings (`backup.document.BackupsDocument`).

`schemas/<name>.schema.json` is this module's output, checked in so editors and CI can validate
files (`# yaml-language-server: $schema=...`); `make schema` regenerates them and a unit test
fails when one is stale.  The topology schema describes a file after `${VAR}` interpolation.
Called by the CLI (`pgtopo schema`) and `make schema`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from pgtopo.backup.document import BackupsDocument
from pgtopo.documents import PlanDocument, StatusDocument
from pgtopo.history import HistoryDocument
from pgtopo.spec import Topology

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://pgtopo.dev/schemas/"
SCHEMA_ID = SCHEMA_BASE + "topology.schema.json"


INTERPOLATED = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*"}


def topology_schema() -> dict[str, Any]:
    """The topology model's JSON Schema (draft 2020-12), with `$schema` and `$id` first.

    Two touches on top of pydantic's output, so editors judge files as the loader does: maps
    keyed by names (nodes, parameters) reject keys that do not match the name pattern, and the
    string fields that files usually interpolate (`image`, `network`) also accept `${VAR...}`.
    """
    schema = Topology.model_json_schema()
    _close_pattern_maps(schema)
    for key in ("image", "network"):
        prop = schema["properties"][key]
        if "anyOf" in prop:
            prop["anyOf"].insert(0, INTERPOLATED)
        else:
            typed = {k: prop.pop(k) for k in ("type", "pattern") if k in prop}
            prop["anyOf"] = [typed, INTERPOLATED]
    return {"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID, **schema}


def _close_pattern_maps(node: Any) -> None:
    if isinstance(node, dict):
        if "patternProperties" in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def document_schema(name: str) -> dict[str, Any]:
    """The schema of a plan or status document, with `$schema` and `$id` first.  A plan's
    `topology` refers to topology.schema.json beside it (resolved against the `$id`) instead of
    carrying a second copy of the topology's definitions."""
    models: dict[str, type[BaseModel]] = {"plan": PlanDocument, "status": StatusDocument,
                                          "history": HistoryDocument, "backups": BackupsDocument}
    model = models[name]
    schema = model.model_json_schema()
    topology = schema["properties"].get("topology")
    if topology is not None:
        schema["properties"]["topology"] = {"$ref": "topology.schema.json", "description": topology["description"]}
        _drop_unreferenced_defs(schema)
    return {"$schema": SCHEMA_DIALECT, "$id": f"{SCHEMA_BASE}{name}.schema.json", **schema}


def _drop_unreferenced_defs(schema: dict[str, Any]) -> None:
    """Remove the `$defs` that nothing outside `$defs` reaches, directly or through other defs."""
    defs = schema.get("$defs", {})
    reached: set[str] = set()
    pending = _local_refs({k: v for k, v in schema.items() if k != "$defs"})
    while pending:
        name = pending.pop()
        if name not in reached and name in defs:
            reached.add(name)
            pending |= _local_refs(defs[name])
    schema["$defs"] = {k: v for k, v in defs.items() if k in reached}
    if not schema["$defs"]:
        del schema["$defs"]


def _local_refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix("#/$defs/")} if str(node.get("$ref", "")).startswith("#/$defs/") else set()
        return found.union(*(_local_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_local_refs(v) for v in node))
    return set()


SCHEMAS = ("topology", "plan", "status", "history", "backups")


def schema_text(name: str = "topology") -> str:
    """The schema `name` (one of SCHEMAS) as the checked-in file's exact text: indented JSON and a
    trailing newline."""
    schema = topology_schema() if name == "topology" else document_schema(name)
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
