"""The JSON documents pgtopo prints and saves, as frozen pydantic models: plans (`diff --output
json`, `diff --out`) and status (`status --output json`).  Pure: built from the topology, the
observed state and the plan.

Called by the CLI, planfile (saved plans), render (the status table is drawn from a
StatusDocument) and reconcile.apply_saved (the fingerprint).  schemas/plan.schema.json and
schemas/status.schema.json are generated from these models (`make schema`, see schema.py);
`format` bumps on any breaking change.  A saved plan also records the file's sha256 and a
fingerprint of the observed state, so apply can refuse a plan made against another file or
another cluster state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from pgtopo import __version__, synchronous
from pgtopo.actions import Action, Kind, Plan, Wave
from pgtopo.backup import archiving
from pgtopo.backup.spec import repository_text
from pgtopo.observed import Downstream, NodeFacts, Observed
from pgtopo.spec import POOLER_NODE, READ_POOLER_NODE, Topology

PLAN_FORMAT: Final = 1
STATUS_FORMAT: Final = 1
PLAN_KIND: Final = "pgtopo-plan"
STATUS_KIND: Final = "pgtopo-status"

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Role = Literal["primary", "replica"]


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> str:
        """Indented JSON, keys in the model's order (what pgtopo prints and saves)."""
        return json.dumps(self.model_dump(mode="json"), indent=2)


def _wave_number(number: int) -> int:
    Wave.from_number(number)  # a phase pgtopo does not have is a ValueError: the document is damaged
    return number


class ActionDocument(_Document):
    """One action of a plan."""

    kind: Kind = Field(description="What the action does.")
    node: str | None = Field(description="The node acted on; null for cluster-wide actions.")
    reason: str = Field(min_length=1, description="Why, in words.")
    wave: Annotated[int, AfterValidator(_wave_number)] = Field(
        ge=0, description="Waves run in order; nodes of one wave in parallel (phase * 1000000 + rank).")
    symbol: Literal["+", "~", "-", "!"] = Field(description="+ create, ~ change, - remove, ! destructive.")
    destructive: bool = Field(description="Loses data on that node; needs consent (--yes).")
    data_loss: bool = Field(default=False, description="Discards WAL that no other node holds; "
                                                       "apply needs --allow-data-loss.")
    fence: tuple[str, ...] = Field(default=(), description="A failover: the nodes stopped and fenced "
                                                           "(standby.signal) before the promotion.")
    upstream: str | None = Field(description="Source of a clone/rewind/repoint, old primary of a switchover, "
                                             "holder of a slot.")
    slot: str | None
    target: str | None = Field(description="A Docker object's name, for removals.")
    settings: dict[str, str | None] = Field(description="configure: name -> value (null: RESET).")
    replay_past: str | None = Field(default=None, description="restart: first wait until the node has replayed "
                                    "this node's WAL as far as it is flushed (its parameter change).")
    pause_pooler: bool = Field(default=False, description="The pooler is paused around it, and pointed at the "
                               "file's primary before it resumes.")

    @classmethod
    def of(cls, action: Action) -> ActionDocument:
        return cls(kind=action.kind, node=action.node or None, reason=action.reason, wave=action.wave.number,
                   symbol="!" if action.destructive else action.kind.symbol, destructive=action.destructive,
                   data_loss=action.data_loss, fence=action.fence, upstream=action.upstream, slot=action.slot,
                   target=action.target, settings=dict(action.settings),
                   replay_past=action.replay_past, pause_pooler=action.pause_pooler)

    def action(self) -> Action:
        return Action(kind=self.kind, node=self.node or "", reason=self.reason, wave=Wave.from_number(self.wave),
                      upstream=self.upstream, settings=tuple(self.settings.items()), slot=self.slot,
                      target=self.target, destructive=self.destructive, data_loss=self.data_loss,
                      fence=self.fence, replay_past=self.replay_past, pause_pooler=self.pause_pooler)


class SourceFile(_Document):
    """The topology file the plan was made from."""

    path: str
    sha256: Sha256


class Summary(_Document):
    actions: int = Field(ge=0)
    destructive: int = Field(ge=0)
    by_kind: dict[str, int]


class Fingerprint(_Document):
    sha256: Sha256
    state: dict[str, Any] = Field(description="What the plan was decided from (no WAL positions).")


class PlanDocument(_Document):
    """What `diff --output json` prints and `diff --out` saves; `apply PLAN` carries out exactly it."""

    model_config = ConfigDict(title="pgtopo plan (diff --output json, diff --out)")

    format: Literal[1]
    kind: Literal["pgtopo-plan"]
    pgtopo_version: str
    cluster: str
    file: SourceFile
    in_sync: bool = Field(description="True when apply has nothing to do (diff exits 0).")
    refusals: tuple[str, ...] = Field(description="Why apply would refuse; it changes nothing then.")
    actions: tuple[ActionDocument, ...]
    notes: tuple[str, ...]
    warnings: tuple[str, ...] = Field(description="Allowed, but worth a second look.")
    summary: Summary
    fingerprint: Fingerprint
    topology: Topology = Field(description="The topology as loaded (after interpolation): what apply of a "
                                           "saved plan uses.")

    def plan(self) -> Plan:
        return Plan(actions=tuple(a.action() for a in self.actions), refusals=self.refusals, notes=self.notes,
                    warnings=self.warnings)


def plan_from_json(text: str | bytes) -> PlanDocument:
    """A saved plan read back, as strictly as its schema judges it (no "3" for 3, no "yes" for
    true); raises pydantic.ValidationError."""
    return PlanDocument.model_validate_json(text, strict=True)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plan_document(topo: Topology, file: str, file_text: str, observed: Observed, plan: Plan) -> PlanDocument:
    """What `diff --output json` prints and `diff --out` saves."""
    digest, state = fingerprint(observed)
    return PlanDocument(
        format=PLAN_FORMAT,
        kind=PLAN_KIND,
        pgtopo_version=__version__,
        cluster=topo.cluster,
        file=SourceFile(path=file, sha256=sha256_text(file_text)),
        in_sync=plan.empty,
        refusals=plan.refusals,
        actions=tuple(ActionDocument.of(a) for a in plan.actions),
        notes=plan.notes,
        warnings=plan.warnings,
        summary=Summary(actions=len(plan.actions), destructive=len(plan.destructive), by_kind=_count_kinds(plan)),
        fingerprint=Fingerprint(sha256=digest, state=state),
        topology=topo,
    )


def _count_kinds(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in plan.actions:
        counts[a.kind.value] = counts.get(a.kind.value, 0) + 1
    return counts


def fingerprint(observed: Observed) -> tuple[str, dict[str, Any]]:
    """A digest of everything the plan was decided from, without what moves on its own (WAL
    positions, lag): a saved plan is stale when this differs at apply time."""
    state: dict[str, Any] = {
        "network": observed.network.name if observed.network else None,
        "state_volume": observed.state_volume is not None,
        "credentials": observed.credentials,
        "system_identifier": observed.system_identifier,
        "foreign": list(observed.foreign),
        "nodes": {name: _node_state(facts) for name, facts in sorted(observed.nodes.items())},
    }
    for key, pooler in (("pooler", observed.pooler), ("read_pooler", observed.read_pooler)):
        if pooler.container is not None:  # only when there is one (older saved plans keep their digest)
            state[key] = {"id": pooler.container.id, "state": pooler.container.state,
                          "config_hash": pooler.container.config_hash, "target": ",".join(pooler.targets) or None,
                          "paused": pooler.paused}
    if observed.roles:  # the file's roles and pgtopo's, only when there are some (older saved plans keep their digest)
        state["roles"] = {r.name: [r.managed, r.login, r.createdb, r.inherit, r.connection_limit, r.valid_until,
                                   list(r.in_roles), r.password] for r in observed.roles}
    if observed.databases:
        state["databases"] = {d.name: [d.managed, d.owner] for d in observed.databases}
    if observed.repository is not None:  # a backup repository volume, only when there is one (likewise)
        state["repository"] = observed.repository.name
    blob = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest(), state


def _node_state(facts: NodeFacts) -> dict[str, Any]:
    c, pg = facts.container, facts.pg
    return {
        "container": None if c is None else {"id": c.id, "state": c.state, "config_hash": c.config_hash,
                                             "image_id": c.image_id},
        "volume": facts.volume.name if facts.volume else None,
        "data": None if facts.data is None else [facts.data.has_pgdata, facts.data.system_identifier,
                                                 facts.data.interrupted]
        # a major upgrade's traces, only when there are some (older saved plans keep their digest)
        + [x for x in (facts.data.swap_from, facts.data.upgraded_from) if x is not None],
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


class NodeStatus(_Document):
    """One node: in the file, or found by label."""

    name: str
    in_file: bool
    desired_role: Role | None
    desired_upstream: str | None
    container: str | None = Field(description="Docker state (running, exited, ...); null when missing.")
    host_port: int | None = Field(description="Port published on 127.0.0.1.")
    role: Role | None = Field(description="What the server is now; null when it does not answer.")
    upstream: str | None = Field(description="The node it streams from now.")
    replication: str | None = Field(description="streaming, catchup, ... as its upstream sees it.")
    sync_state: Literal["async", "potential", "sync", "quorum"] | None = Field(
        default=None, description="As its upstream sees it (pg_stat_replication.sync_state); null when not "
                                  "seen there.")
    delay: str | None = Field(default=None, description="The recovery_min_apply_delay it runs with; null: none.")
    lag_bytes: int | None
    timeline: int | None
    lsn: int | None = Field(description="Current (primary) or replayed (replica) WAL position, in bytes.")
    error: str | None = Field(description="Why the server could not be probed.")
    has_data: bool = Field(default=False, description="Its volume holds a PGDATA, as far as observation "
                                                      "could tell (always true when the server answers).")
    drift: tuple[str, ...] | None = Field(default=None, description="status --check: the kinds of the actions "
                                          "apply would take on this node (empty: as the file says); null "
                                          "when not checked.")


class PoolerStatus(_Document):
    """The pooler: its endpoint, where it points and what it serves (docs/pooler.md)."""

    in_file: bool
    endpoint: str | None = Field(description="host:port applications connect to; null when not published.")
    container: str | None = Field(description="Docker state (running, exited, ...); null when missing.")
    points_at: str | None = Field(description="The node its pools go to; null when its console did not answer.")
    paused: bool | None = Field(description="Paused (or pausing); null when its console did not answer.")
    clients: int | None = Field(description="Client connections, pgtopo's own left out.")
    servers: int | None = Field(description="Server connections.")
    error: str | None = Field(description="Why its console did not answer.")
    drift: tuple[str, ...] | None = Field(default=None, description="status --check: the kinds of the actions "
                                          "apply would take on it; null when not checked.")


def pooler_status(topo: Topology, observed: Observed, read_only: bool = False) -> PoolerStatus | None:
    """The pooler's read-write endpoint (or its read-only one); None when the file has none and
    none was found."""
    facts = observed.read_pooler if read_only else observed.pooler
    c = facts.container
    in_file = topo.pooler is not None and (not read_only or topo.pooler.read_only is not None)
    if not in_file and c is None:
        return None
    bind = topo.pooler.bind if topo.pooler is not None else "127.0.0.1"
    return PoolerStatus(
        in_file=in_file,
        endpoint=f"{bind}:{c.host_port}" if c is not None and c.host_port is not None else None,
        container=c.state if c is not None else None,
        points_at=", ".join(facts.targets) or None, paused=facts.paused, clients=facts.clients,
        servers=facts.servers, error=facts.error,
    )


class SynchronousStatus(_Document):
    """The file's synchronous: block and the rule the primary runs with (docs/synchronous.md)."""

    method: Literal["any", "first"] | None = Field(description="null: the file asks for none.")
    number: int | None
    durability: Literal["required", "preferred"] | None
    rule: str | None = Field(description="The synchronous_standby_names the file asks for (preferred: at most).")
    in_effect: str | None = Field(description="synchronous_standby_names on the primary ('' when it has none); "
                                              "null when it does not answer.")


class ArchivingStatus(_Document):
    """WAL archiving as the primary's pg_stat_archiver reports it (docs/backup.md)."""

    node: str = Field(description="The server read: the file's primary.")
    archive_mode: str = Field(description="The archive_mode it runs with.")
    archived_count: int
    last_archived_wal: str | None = Field(description="The newest WAL file archived; null: none yet.")
    last_archived_time: AwareDatetime | None
    failed_count: int
    last_failed_wal: str | None = Field(description="The WAL file of the last failed attempt; null: none.")
    last_failed_time: AwareDatetime | None
    failing: bool = Field(description="The last attempt failed (last_failed_time is newer than "
                                      "last_archived_time): status --check exits 1.")
    newest_backup: str | None = Field(default=None, description="The label of the newest complete backup in the "
                                      "repository, as the primary reads it; null: none.")
    newest_backup_end: AwareDatetime | None = Field(default=None, description="When it ended (its age: now minus "
                                                    "this).")


class BackupStatus(_Document):
    """The file's backup: block and how archiving goes."""

    method: str
    repository: str = Field(description="`volume NAME` or `path /DIR`.")
    archiving: ArchivingStatus | None = Field(description="null: the primary did not answer.")


def backup_status(topo: Topology, observed: Observed) -> BackupStatus | None:
    if topo.backup is None:
        return None
    facts = observed.archiver
    arch = None if facts is None else ArchivingStatus(
        node=facts.node, archive_mode=facts.archive_mode, archived_count=facts.archived_count,
        last_archived_wal=facts.last_archived_wal, last_archived_time=facts.last_archived_time,
        failed_count=facts.failed_count, last_failed_wal=facts.last_failed_wal,
        last_failed_time=facts.last_failed_time, failing=facts.failing,
        newest_backup=facts.newest_backup[0] if facts.newest_backup else None,
        newest_backup_end=facts.newest_backup[1] if facts.newest_backup else None)
    return BackupStatus(method=topo.backup.method, repository=repository_text(topo.backup.repository), archiving=arch)


class StatusDocument(_Document):
    """What `status --output json` prints; the status table shows the same facts."""

    model_config = ConfigDict(title="pgtopo status (status --output json)")

    format: Literal[1]
    kind: Literal["pgtopo-status"]
    pgtopo_version: str
    cluster: str
    primary: str = Field(description="The primary the file names.")
    nodes: tuple[NodeStatus, ...] = Field(description="The file's nodes in order, then nodes found only by label.")
    in_sync: bool | None = Field(default=None, description="status --check: the cluster is as the file says "
                                 "(apply would do nothing); null when not checked.")
    refusals: tuple[str, ...] = Field(default=(), description="status --check: why apply would refuse.")
    pooler: PoolerStatus | None = Field(default=None, description="The pooler; null when the file has none and "
                                        "none was found.")
    read_pooler: PoolerStatus | None = Field(default=None, description="The pooler's read-only endpoint; null "
                                             "when the file has none and none was found.")
    synchronous: SynchronousStatus | None = Field(default=None, description="Synchronous replication; null when "
                                                  "the file asks for none and the primary runs with none.")
    backup: BackupStatus | None = Field(default=None, description="Backups and WAL archiving; null when the file "
                                        "has no backup: block.")
    problems: tuple[str, ...] = Field(default=(), description="Faults that make status --check exit 1 even in "
                                      "sync with the file: WAL archiving that fails.")


def synchronous_status(topo: Topology, observed: Observed) -> SynchronousStatus | None:
    pg = observed.node(topo.primary).pg
    in_effect = pg.auto_conf.get(synchronous.SETTING, "") if pg is not None and not pg.in_recovery else None
    if topo.synchronous is None and not in_effect:
        return None
    sync = topo.synchronous
    return SynchronousStatus(
        method=sync.method if sync else None, number=sync.number if sync else None,
        durability=sync.durability if sync else None,
        rule=synchronous.rule_text(topo, sync.number) if sync else None, in_effect=in_effect)


def status_document(topo: Topology, observed: Observed, plan: Plan | None = None) -> StatusDocument:
    """One entry per node: the file's nodes in order, then nodes found only by label.  With the
    plan (status --check), each node's drift: the actions apply would take on it."""
    names = list(topo.nodes) + sorted(n for n in observed.nodes if n not in topo.nodes)
    nodes = tuple(node_status(topo, observed, observed.node(name)) for name in names)
    pooler, read_pooler = pooler_status(topo, observed), pooler_status(topo, observed, read_only=True)
    backup = backup_status(topo, observed)
    failing = archiving.problem(observed.archiver) if backup is not None else None
    problems = (failing,) if failing is not None else ()
    if plan is None:
        return StatusDocument(format=STATUS_FORMAT, kind=STATUS_KIND, pgtopo_version=__version__,
                              cluster=topo.cluster, primary=topo.primary, nodes=nodes, pooler=pooler,
                              read_pooler=read_pooler, synchronous=synchronous_status(topo, observed),
                              backup=backup, problems=problems)
    kinds: dict[str, list[str]] = {}
    for action in plan.actions:
        kinds.setdefault(action.node, []).append(action.kind.value)
    nodes = tuple(n.model_copy(update={"drift": tuple(dict.fromkeys(kinds.get(n.name, ())))}) for n in nodes)
    if pooler is not None:
        pooler = pooler.model_copy(update={"drift": tuple(dict.fromkeys(kinds.get(POOLER_NODE, ())))})
    if read_pooler is not None:
        read_pooler = read_pooler.model_copy(update={"drift": tuple(dict.fromkeys(kinds.get(READ_POOLER_NODE, ())))})
    return StatusDocument(format=STATUS_FORMAT, kind=STATUS_KIND, pgtopo_version=__version__,
                          cluster=topo.cluster, primary=topo.primary, nodes=nodes, pooler=pooler,
                          read_pooler=read_pooler, synchronous=synchronous_status(topo, observed),
                          backup=backup, problems=problems, in_sync=plan.empty, refusals=plan.refusals)


def node_status(topo: Topology, observed: Observed, facts: NodeFacts) -> NodeStatus:
    """A node's desired place, its container, and what its server says (with its upstream's view
    of its replication: state and lag)."""
    in_file = facts.name in topo.nodes
    pg = facts.pg
    upstream = pg.receiver.upstream if pg and pg.receiver else None
    replication, lag, sync_state = None, None, None
    if pg is not None and pg.in_recovery:
        replication = pg.receiver.status if pg.receiver else "not connected"
        seen = _seen_by_upstream(observed, upstream, facts.name)
        if seen is not None:
            replication, lag, sync_state = seen.state, seen.lag_bytes, seen.sync_state
    return NodeStatus(
        name=facts.name,
        in_file=in_file,
        desired_role=("primary" if facts.name == topo.primary else "replica") if in_file else None,
        desired_upstream=topo.upstream_of(facts.name) if in_file else None,
        container=facts.container.state if facts.container else None,
        host_port=facts.container.host_port if facts.container else None,
        role=None if pg is None else ("replica" if pg.in_recovery else "primary"),
        upstream=upstream,
        replication=replication,
        sync_state=sync_state,  # type: ignore[arg-type]  # what the server says: one of the four
        delay=synchronous.delayed(facts),
        lag_bytes=lag,
        timeline=pg.timeline if pg else None,
        lsn=pg.lsn if pg else None,
        error=facts.pg_error,
        has_data=facts.has_data,
    )


def _seen_by_upstream(observed: Observed, upstream: str | None, node: str) -> Downstream | None:
    """The upstream's pg_stat_replication row for `node`, when the upstream answered."""
    up = observed.nodes.get(upstream) if upstream else None
    if up is None or up.pg is None:
        return None
    return next((d for d in up.pg.downstreams if d.application_name == node), None)
