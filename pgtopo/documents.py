"""The JSON documents pgtopo prints and saves: plans (`diff --output json`, `diff --out`) and
status (`status --output json`).  Pure: built from the topology, the observed state and the plan.

Called by the CLI and by reconcile.apply_saved.  The shapes are stable and described by
schemas/plan.schema.json and schemas/status.schema.json; `format` bumps on any breaking change.
A saved plan also records the file's sha256 and a fingerprint of the observed state, so apply
can refuse a plan made against another file or another cluster state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pgtopo import __version__
from pgtopo.actions import Action, Kind, Plan, Wave
from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology

PLAN_FORMAT = 1
STATUS_FORMAT = 1


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def action_document(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "node": action.node or None,
        "reason": action.reason,
        "wave": action.wave.number,
        "symbol": "!" if action.destructive else action.kind.symbol,
        "destructive": action.destructive,
        "data_loss": action.data_loss,
        "fence": list(action.fence),
        "upstream": action.upstream,
        "slot": action.slot,
        "target": action.target,
        "settings": {name: value for name, value in action.settings},
    }


def action_from(doc: dict[str, Any]) -> Action:
    return Action(
        kind=Kind(doc["kind"]),
        node=doc.get("node") or "",
        reason=doc["reason"],
        wave=Wave.from_number(int(doc["wave"])),
        upstream=doc.get("upstream"),
        settings=tuple((k, v) for k, v in (doc.get("settings") or {}).items()),
        slot=doc.get("slot"),
        target=doc.get("target"),
        destructive=bool(doc.get("destructive")),
        data_loss=bool(doc.get("data_loss")),
        fence=tuple(doc.get("fence") or ()),
    )


def plan_document(topo: Topology, file: str, file_text: str, observed: Observed, plan: Plan) -> dict[str, Any]:
    """What `diff --output json` prints and `diff --out` saves."""
    digest, state = fingerprint(observed)
    return {
        "format": PLAN_FORMAT,
        "kind": "pgtopo-plan",
        "pgtopo_version": __version__,
        "cluster": topo.cluster,
        "file": {"path": file, "sha256": sha256_text(file_text)},
        "in_sync": plan.empty,
        "refusals": list(plan.refusals),
        "actions": [action_document(a) for a in plan.actions],
        "notes": list(plan.notes),
        "warnings": list(plan.warnings),
        "summary": {
            "actions": len(plan.actions),
            "destructive": len(plan.destructive),
            "by_kind": _count_kinds(plan),
        },
        "fingerprint": {"sha256": digest, "state": state},
        "topology": topo.model_dump(mode="json"),
    }


def _count_kinds(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in plan.actions:
        counts[a.kind.value] = counts.get(a.kind.value, 0) + 1
    return counts


def fingerprint(observed: Observed) -> tuple[str, dict[str, Any]]:
    """A digest of everything the plan was decided from, without what moves on its own (WAL
    positions, lag): a saved plan is stale when this differs at apply time."""
    state = {
        "network": observed.network.name if observed.network else None,
        "state_volume": observed.state_volume is not None,
        "credentials": observed.credentials,
        "system_identifier": observed.system_identifier,
        "foreign": list(observed.foreign),
        "nodes": {name: _node_state(facts) for name, facts in sorted(observed.nodes.items())},
    }
    blob = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest(), state


def _node_state(facts: NodeFacts) -> dict[str, Any]:
    c, pg = facts.container, facts.pg
    return {
        "container": None if c is None else {"id": c.id, "state": c.state, "config_hash": c.config_hash},
        "volume": facts.volume.name if facts.volume else None,
        "data": None if facts.data is None else [facts.data.has_pgdata, facts.data.system_identifier,
                                                 facts.data.interrupted],
        "jobs": sorted(j.name for j in facts.jobs),
        "server": None if pg is None else {
            "system_identifier": pg.system_identifier,
            "in_recovery": pg.in_recovery,
            "timeline": pg.timeline,
            "upstream": pg.receiver.upstream if pg.receiver else None,
            "slots": sorted(s.name for s in pg.slots),
            "pending_restart": list(pg.pending_restart),
            "auto_conf": dict(sorted(pg.auto_conf.items())),
            "replication_roles": list(pg.replication_roles),
        },
    }


def state_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Readable paths of what differs between two fingerprint states."""
    changes: list[str] = []
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}.{key}" if prefix else key
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += state_changes(old, new, path)
        elif old != new:
            changes.append(f"{path}: {json.dumps(old)} → {json.dumps(new)}")
    return changes


def status_document(topo: Topology, observed: Observed, rows: list[list[str]]) -> dict[str, Any]:
    """What `status --output json` prints: one entry per node, the same facts as the table."""
    nodes = []
    for row in rows:
        name = row[0]
        facts = observed.node(name)
        pg = facts.pg
        nodes.append({
            "name": name,
            "in_file": name in topo.nodes,
            "desired_role": ("primary" if name == topo.primary else "replica") if name in topo.nodes else None,
            "desired_upstream": topo.upstream_of(name) if name in topo.nodes else None,
            "container": facts.container.state if facts.container else None,
            "host_port": facts.container.host_port if facts.container else None,
            "role": None if pg is None else ("replica" if pg.in_recovery else "primary"),
            "upstream": pg.receiver.upstream if pg and pg.receiver else None,
            "replication": row[4] if pg and pg.in_recovery else None,
            "lag_bytes": int(row[5]) if row[5].isdigit() else None,
            "timeline": pg.timeline if pg else None,
            "lsn": pg.lsn if pg else None,
            "error": facts.pg_error,
        })
    return {"format": STATUS_FORMAT, "kind": "pgtopo-status", "pgtopo_version": __version__,
            "cluster": topo.cluster, "primary": topo.primary, "nodes": nodes}
