"""The JSON Schema of topology files, generated from `spec.Topology`.

`schemas/topology.schema.json` is this module's output, checked in so editors can validate files
(`# yaml-language-server: $schema=...`); `make schema` regenerates it and a unit test fails when
it is stale.  The schema describes a file after `${VAR}` interpolation.
"""

from __future__ import annotations

import json
from typing import Any

from pgtopo.spec import Topology

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://pgtopo.dev/schemas/topology.schema.json"


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


def schema_text() -> str:
    """The schema as the checked-in file's exact text: indented JSON and a trailing newline."""
    return json.dumps(topology_schema(), indent=2, ensure_ascii=False) + "\n"
