"""Plan and status documents on plain values: shape, schema, fingerprint, round trip, and the
status table drawn from the status document."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError
from referencing import Registry, Resource
from rich.console import Console

from pgtopo import documents, render
from pgtopo.observed import DataFacts, Downstream, NodeFacts, Observed, WalReceiver
from pgtopo.plan import plan

from .test_plan import T, container, converged, pg_primary, pg_replica, volume

ROOT = Path(__file__).resolve().parents[2]


def validator(name: str) -> jsonschema.Draft202012Validator:
    topo = json.loads((ROOT / "schemas/topology.schema.json").read_text())
    registry = Registry().with_resource(topo["$id"], Resource.from_contents(topo))
    return jsonschema.Draft202012Validator(json.loads((ROOT / f"schemas/{name}.schema.json").read_text()),
                                           registry=registry)


def as_json(doc: documents.PlanDocument | documents.StatusDocument) -> dict:
    """The document as a consumer reads it: what pgtopo prints, parsed."""
    return json.loads(doc.to_json())


def test_plan_document_of_a_new_cluster_matches_the_schema_and_round_trips() -> None:
    observed = Observed(cluster="pg")
    p = plan(T, observed)
    doc = as_json(documents.plan_document(T, "seed.yaml", "text", observed, p))
    validator("plan").validate(doc)
    assert doc["summary"] == {"actions": len(p.actions), "destructive": 0,
                              "by_kind": {"create-network": 1, "create-state": 1, "create-volume": 3, "init": 1,
                                          "create-role": 1, "clone": 2}}
    assert tuple(documents.ActionDocument.model_validate(a).action() for a in doc["actions"]) == p.actions


def test_in_sync_document() -> None:
    observed = converged(T)
    doc = as_json(documents.plan_document(T, "seed.yaml", "text", observed, plan(T, observed)))
    validator("plan").validate(doc)
    assert doc["in_sync"] is True and doc["actions"] == []


PLAN_KEYS = ["format", "kind", "pgtopo_version", "cluster", "file", "in_sync", "refusals", "actions", "notes",
             "warnings", "summary", "fingerprint", "topology"]
ACTION_KEYS = ["kind", "node", "reason", "wave", "symbol", "destructive", "data_loss", "fence", "upstream", "slot",
               "target", "settings", "replay_past", "pause_pooler"]


def test_plan_document_keeps_its_keys_in_their_order() -> None:
    observed = Observed(cluster="pg")
    doc = as_json(documents.plan_document(T, "seed.yaml", "text", observed, plan(T, observed)))
    assert list(doc) == PLAN_KEYS
    assert all(list(a) == ACTION_KEYS for a in doc["actions"])
    assert doc["actions"][0]["node"] is None and doc["actions"][0]["kind"] == "create-network"
    assert doc["format"] == 1 and doc["kind"] == "pgtopo-plan"
    assert doc["file"] == {"path": "seed.yaml", "sha256": documents.sha256_text("text")}
    assert doc["topology"] == T.model_dump(mode="json")


def every_field_action_plan():
    """A plan whose actions use every field: settings (with a RESET), fence, data loss, a slot."""
    from pgtopo.actions import Action, Kind, Phase, Plan, Wave

    return Plan(
        actions=(
            Action(Kind.CONFIGURE, "primary", "work_mem differs", wave=Wave(Phase.BUILD, 3),
                   settings=(("work_mem", "8MB"), ("old_setting", None))),
            Action(Kind.FAILOVER, "replica", "the primary is gone", wave=Wave(Phase.RESTART, 5), upstream="primary",
                   fence=("primary", "replica2"), data_loss=True, destructive=True),
            Action(Kind.DROP_SLOT, "primary", "nobody streams from it", wave=Wave(Phase.SLOTS, 7), upstream="primary", slot="s1"),
            Action(Kind.REMOVE_JOB, "", "left over by a killed apply", target="pg-job-1"),
        ),
        refusals=("no",), notes=("a note",), warnings=("a warning",),
    )


def test_plan_model_round_trips_through_its_json() -> None:
    p = every_field_action_plan()
    doc = documents.plan_document(T, "seed.yaml", "text", converged(T), p)
    again = documents.plan_from_json(doc.to_json())
    assert again == doc
    assert again.plan() == p
    assert again.topology == T
    validator("plan").validate(as_json(doc))


def test_documents_are_frozen() -> None:
    doc = documents.plan_document(T, "seed.yaml", "text", converged(T), plan(T, converged(T)))
    with pytest.raises(ValidationError):
        doc.cluster = "other"  # type: ignore[misc]


def test_a_plan_saved_before_data_loss_and_fence_existed_still_reads() -> None:
    doc = as_json(documents.plan_document(T, "seed.yaml", "text", Observed(cluster="pg"),
                                          plan(T, Observed(cluster="pg"))))
    for action in doc["actions"]:
        del action["data_loss"], action["fence"]
    validator("plan").validate(doc)
    assert documents.plan_from_json(json.dumps(doc)).actions[0].fence == ()


DAMAGE = {  # what is damaged: (how, whether the schema sees it too; cross-field checks are the model's)
    "no-topology": (lambda d: d.pop("topology"), True),
    "extra-key": (lambda d: d.update(extra=1), True),
    "unknown-kind": (lambda d: d["actions"][0].update(kind="explode"), True),
    "negative-wave": (lambda d: d["actions"][0].update(wave=-1), True),
    "no-reason": (lambda d: d["actions"][0].update(reason=""), True),
    "bad-sha": (lambda d: d["file"].update(sha256="not-a-digest"), True),
    "wrong-format": (lambda d: d.update(format=2), True),
    "wave-as-text": (lambda d: d["actions"][0].update(wave="3"), True),
    "in-sync-as-text": (lambda d: d.update(in_sync="yes"), True),
    "node-as-number": (lambda d: d["actions"][1].update(node=7), True),
    "primary-not-a-node": (lambda d: d["topology"].update(primary="nobody"), False),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_the_model_rejects_damage_and_so_does_the_schema(case: str) -> None:
    damage, schema_sees_it = DAMAGE[case]
    doc = as_json(documents.plan_document(T, "seed.yaml", "text", Observed(cluster="pg"),
                                          plan(T, Observed(cluster="pg"))))
    damage(doc)
    with pytest.raises(ValidationError):
        documents.plan_from_json(json.dumps(doc))
    assert bool(list(validator("plan").iter_errors(doc))) is schema_sees_it


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
    doc = as_json(documents.status_document(T, observed))
    validator("status").validate(doc)
    assert [n["name"] for n in doc["nodes"]] == ["primary", "replica", "replica2"]
    assert doc["nodes"][2]["upstream"] == "replica" and doc["nodes"][2]["desired_upstream"] == "replica"


def test_status_document_round_trips() -> None:
    doc = documents.status_document(T, UNHEALTHY)
    assert documents.StatusDocument.model_validate_json(doc.to_json()) == doc


def test_plan_schema_lists_every_action_kind() -> None:
    from pgtopo.actions import Kind

    schema = json.loads((ROOT / "schemas/plan.schema.json").read_text())
    kind = schema["$defs"]["ActionDocument"]["properties"]["kind"]
    assert kind["$ref"] == "#/$defs/Kind"
    assert set(schema["$defs"]["Kind"]["enum"]) == {k.value for k in Kind}


# --- the status table, drawn from the status document -------------------------------------------

BASE = converged(T)
LAGGING = converged(
    T,
    primary=replace(BASE.node("primary"), pg=pg_primary(T, downstreams=(Downstream("replica", "streaming", 0),))),
    replica=replace(BASE.node("replica"),
                    pg=pg_replica(T, "replica", downstreams=(Downstream("replica2", "catchup", 1234),))),
)
UNHEALTHY = converged(
    T,
    primary=replace(BASE.node("primary"), pg=pg_primary(T, timeline=None)),
    replica=NodeFacts("replica", container=container(T, "replica", state="exited"), volume=volume(T, "replica"),
                      pg_error="connection refused [x]"),
    replica2=NodeFacts("replica2", volume=volume(T, "replica2"), data=DataFacts(has_pgdata=True)),
    old=NodeFacts("old", container=container(T, "replica", state="exited", hash_="x")),
)
DETACHED = converged(
    T,
    replica=replace(BASE.node("replica"), pg=pg_replica(T, "replica", receiver=WalReceiver("starting", None, None))),
    replica2=replace(BASE.node("replica2"), pg=pg_replica(T, "replica2", receiver=None, timeline=3)),
)

# The table as it showed when it was built from the observed state directly (before the documents
# were models), with the host port column added since: drawn from the document, every cell the same.
TABLES = {
    "converged": (BASE, """\
cluster pg
node      container   port  role     upstream  replication  lag (bytes)  timeline
primary   running    40000  primary  -         -                      -         1
replica   running    40000  replica  primary   streaming              -         1
replica2  running    40000  replica  replica   streaming              -         1
"""),
    "lagging": (LAGGING, """\
cluster pg
node      container   port  role     upstream  replication  lag (bytes)  timeline
primary   running    40000  primary  -         -                      -         1
replica   running    40000  replica  primary   streaming              0         1
replica2  running    40000  replica  replica   catchup             1234         1
"""),
    "unhealthy": (UNHEALTHY, """\
cluster pg
node      container              port  role     upstream  replication             lag (bytes)  timeline
primary   running               40000  primary  -         -                                 -         -
replica   exited                40000  -        -         connection refused [x]            -         -
replica2  missing                   -  -        -         has data                          -         -
old       exited (not in file)  40000  -        -         no data                           -         -
"""),
    "detached": (DETACHED, """\
cluster pg
node      container   port  role     upstream  replication    lag (bytes)  timeline
primary   running    40000  primary  -         -                        -         1
replica   running    40000  replica  -         starting                 -         1
replica2  running    40000  replica  -         not connected            -         3
"""),
}


@pytest.mark.parametrize("case", TABLES)
def test_status_table_is_drawn_from_the_document_unchanged(case: str) -> None:
    observed, expected = TABLES[case]
    doc = documents.status_document(T, observed)
    validator("status").validate(as_json(doc))
    buffer = io.StringIO()
    render.print_status(Console(file=buffer, width=120, color_system=None, highlight=False, soft_wrap=True), doc)
    assert buffer.getvalue() == expected
    again = documents.StatusDocument.model_validate_json(doc.to_json())
    assert [render.status_cells(n) for n in again.nodes] == [render.status_cells(n) for n in doc.nodes]


# (name, role, upstream, replication, lag_bytes, timeline, error, has_data) per node, as the JSON says.
FACTS = {
    "lagging": [("primary", "primary", None, None, None, 1, None, True),
                ("replica", "replica", "primary", "streaming", 0, 1, None, True),
                ("replica2", "replica", "replica", "catchup", 1234, 1, None, True)],
    "unhealthy": [("primary", "primary", None, None, None, None, None, True),
                  ("replica", None, None, None, None, None, "connection refused [x]", False),
                  ("replica2", None, None, None, None, None, None, True),
                  ("old", None, None, None, None, None, None, False)],
    "detached": [("primary", "primary", None, None, None, 1, None, True),
                 ("replica", "replica", None, "starting", None, 1, None, True),
                 ("replica2", "replica", None, "not connected", None, 3, None, True)],
}
FACT_KEYS = ("name", "role", "upstream", "replication", "lag_bytes", "timeline", "error", "has_data")


@pytest.mark.parametrize("case", FACTS)
def test_status_document_values(case: str) -> None:
    doc = as_json(documents.status_document(T, TABLES[case][0]))
    assert [tuple(n[k] for k in FACT_KEYS) for n in doc["nodes"]] == FACTS[case]


def test_status_document_keeps_its_keys_in_their_order() -> None:
    doc = as_json(documents.status_document(T, UNHEALTHY))
    assert list(doc) == ["format", "kind", "pgtopo_version", "cluster", "primary", "nodes", "in_sync", "refusals", "pooler", "read_pooler",
                         "synchronous", "backup", "problems"]
    assert list(doc["nodes"][0]) == ["name", "in_file", "desired_role", "desired_upstream", "container",
                                     "host_port", "role", "upstream", "replication", "sync_state", "delay", "lag_bytes", "timeline",
                                     "lsn", "error", "has_data", "drift"]
    assert (doc["in_sync"], doc["refusals"], doc["nodes"][0]["drift"]) == (None, [], None)  # not checked
    old = doc["nodes"][3]
    assert (old["in_file"], old["desired_role"], old["container"], old["host_port"]) == (False, None, "exited", 40000)


def test_status_check_shows_each_node_s_drift_and_whether_the_cluster_is_in_sync() -> None:
    doc = documents.status_document(T, BASE, plan(T, BASE))
    assert doc.in_sync is True and {n.name: n.drift for n in doc.nodes} == {"primary": (), "replica": (), "replica2": ()}
    unhealthy = plan(T, UNHEALTHY)
    doc = documents.status_document(T, UNHEALTHY, unhealthy)
    assert doc.in_sync is False
    assert {n.name: n.drift for n in doc.nodes} == {
        name: tuple(dict.fromkeys(a.kind.value for a in unhealthy.actions if a.node == name))
        for name in ("primary", "replica", "replica2", "old")}
    assert any(n.drift for n in doc.nodes)
    buffer = io.StringIO()
    render.print_status(Console(file=buffer, width=160, color_system=None, highlight=False, soft_wrap=True), doc)
    assert "drift" in buffer.getvalue().splitlines()[1]
    assert buffer.getvalue().rstrip().endswith("differs from the file: `pgtopo diff` shows what apply would do")
    validator("status").validate(as_json(doc))
