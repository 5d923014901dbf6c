"""Plan and status documents on plain values: shape, schema, fingerprint, round trip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
from referencing import Registry, Resource

from pgtopo import documents
from pgtopo.observed import Observed
from pgtopo.plan import plan
from pgtopo.render import status_rows

from .test_plan import T, converged, pg_replica

ROOT = Path(__file__).resolve().parents[2]


def validator(name: str) -> jsonschema.Draft202012Validator:
    topo = json.loads((ROOT / "schemas/topology.schema.json").read_text())
    registry = Registry().with_resource(topo["$id"], Resource.from_contents(topo))
    return jsonschema.Draft202012Validator(json.loads((ROOT / f"schemas/{name}.schema.json").read_text()),
                                           registry=registry)


def test_plan_document_of_a_new_cluster_matches_the_schema_and_round_trips() -> None:
    observed = Observed(cluster="pg")
    p = plan(T, observed)
    doc = documents.plan_document(T, "seed.yaml", "text", observed, p)
    validator("plan").validate(doc)
    assert doc["summary"] == {"actions": len(p.actions), "destructive": 0,
                              "by_kind": {"create-network": 1, "create-state": 1, "create-volume": 3, "init": 1,
                                          "create-role": 1, "clone": 2}}
    assert tuple(documents.action_from(a) for a in json.loads(json.dumps(doc))["actions"]) == p.actions


def test_in_sync_document() -> None:
    observed = converged(T)
    doc = documents.plan_document(T, "seed.yaml", "text", observed, plan(T, observed))
    validator("plan").validate(doc)
    assert doc["in_sync"] is True and doc["actions"] == []


def test_fingerprint_ignores_wal_positions_but_not_roles() -> None:
    base = converged(T)
    moved = converged(T, replica=replace(base.node("replica"), pg=pg_replica(T, "replica", lsn=999999)))
    promoted = converged(T, replica=replace(base.node("replica"), pg=pg_replica(T, "replica", in_recovery=False)))
    assert documents.fingerprint(base)[0] == documents.fingerprint(moved)[0]
    assert documents.fingerprint(base)[0] != documents.fingerprint(promoted)[0]
    changes = documents.state_changes(documents.fingerprint(base)[1], documents.fingerprint(promoted)[1])
    assert changes == ["nodes.replica.server.in_recovery: true → false"]


def test_status_document_matches_the_schema() -> None:
    observed = converged(T)
    doc = documents.status_document(T, observed, status_rows(T, observed))
    validator("status").validate(doc)
    assert [n["name"] for n in doc["nodes"]] == ["primary", "replica", "replica2"]
    assert doc["nodes"][2]["upstream"] == "replica" and doc["nodes"][2]["desired_upstream"] == "replica"


def test_plan_schema_lists_every_action_kind() -> None:
    from pgtopo.actions import Kind

    schema = json.loads((ROOT / "schemas/plan.schema.json").read_text())
    assert set(schema["$defs"]["action"]["properties"]["kind"]["enum"]) == {k.value for k in Kind}
