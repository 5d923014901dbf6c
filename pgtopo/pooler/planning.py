"""The pooler's part of a plan (pure): its container made, started, pointed at the file's primary
or resumed, and which of the plan's steps it is paused around.

Called by plan.py once the nodes' actions are ordered.  A step that interrupts the primary's
writes (a switchover, a restart or a recreate of the primary) is paused around when the pooler
answers and pools transactions: clients then wait instead of failing, and the pool points at the
new primary before it resumes.  A session pool cannot pause while clients hold their sessions,
so it is not paused (diff warns); a failover is never paused around (the primary is gone), and
the pool is pointed at the promoted node in the next round.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import Observed
from pgtopo.pooler import config
from pgtopo.spec import Topology

# Steps that stop the primary's writes for a moment, when they act on the primary (a
# switchover's node is the candidate: it always interrupts the old primary).
INTERRUPTING = (Kind.SWITCHOVER, Kind.RESTART, Kind.RECREATE)
PROMOTIONS = (Kind.SWITCHOVER, Kind.FAILOVER)


def actions(topo: Topology, obs: Observed, planned: list[Action]) -> list[Action]:
    """`planned` with the pauses marked, and the pooler's own actions after them."""
    marked = _paused(topo, obs, planned)
    return marked + _own(topo, obs, marked)


def warnings(topo: Topology) -> tuple[str, ...]:
    pooler = topo.pooler
    if pooler is None:
        return ()
    out = []
    if pooler.pool_mode == "session":
        out.append("pooler.pool_mode is session: a switchover or a restart of the primary cannot be hidden from "
                   "clients (a session pool cannot pause while they stay connected); transaction hides them")
    if pooler.bind == "0.0.0.0":
        out.append(f"the pooler's port {pooler.port} is published on every interface (bind: 0.0.0.0)")
    return tuple(out)


def _interrupts_primary(topo: Topology, obs: Observed, action: Action) -> bool:
    if action.kind is Kind.SWITCHOVER:
        return True
    facts = obs.node(action.node)
    return (action.kind in INTERRUPTING and action.node == topo.primary and facts.pg is not None
            and not facts.pg.in_recovery)


def _paused(topo: Topology, obs: Observed, planned: list[Action]) -> list[Action]:
    pooler = topo.pooler
    if pooler is None or pooler.pool_mode != "transaction" or not obs.pooler.answers:
        return planned
    return [replace(a, pause_pooler=True) if _interrupts_primary(topo, obs, a) else a for a in planned]


def read_targets(topo: Topology, obs: Observed) -> tuple[str, ...]:
    """Where the read-only pool goes: the file's replicas that stream and replay within
    `read_only.max_lag_bytes` of the primary (never a delayed one); the primary (read-only transactions) when none does."""
    pooler = topo.pooler
    primary = obs.node(topo.primary).pg
    if pooler is None or pooler.read_only is None or primary is None or primary.lsn is None:
        return (topo.primary,)
    bound = pooler.read_only.max_lag_bytes
    streaming = tuple(
        node for node in topo.replicas()
        if topo.nodes[node].delay is None and (pg := obs.node(node).pg) is not None and pg.in_recovery and pg.receiver is not None
        and pg.receiver.status == "streaming" and pg.lsn is not None and primary.lsn - pg.lsn <= bound
    )
    return streaming or (topo.primary,)


def _own(topo: Topology, obs: Observed, planned: list[Action]) -> list[Action]:
    read_only = topo.pooler is not None and topo.pooler.read_only is not None
    promoting = any(a.kind in PROMOTIONS for a in planned)
    return (_endpoint(topo, obs, planned, "read-write", topo.pooler is not None, promoting)
            + _endpoint(topo, obs, planned, "read-only", read_only, promoting))


def _endpoint(topo: Topology, obs: Observed, planned: list[Action], pool: config.Pool, wanted: bool,
              promoting: bool) -> list[Action]:
    facts = obs.pooler if pool == "read-write" else obs.read_pooler
    container = facts.container
    name = config.container_name(topo.cluster, pool)
    node = config.node_name(pool)
    wave = Wave(Phase.POOLER, 0 if pool == "read-write" else 1)  # one after the other: both make the role
    if not wanted or topo.pooler is None:
        if container is None:
            return []
        return [Action(Kind.REMOVE_POOLER, node, f"the file has no {_what(pool)}: remove {name} (its clients are "
                       "disconnected)", wave=Wave(Phase.REMOVE, 0), target=name)]
    primary = obs.node(topo.primary)
    writable = primary.pg is not None and not primary.pg.in_recovery
    targets = (topo.primary,) if pool == "read-write" else read_targets(topo, obs)
    if container is None:
        return [Action(Kind.CREATE_POOLER, node, f"create {name}: the applications' {pool} endpoint on port "
                       f"{config.host_port(topo, pool)}, pointing at {', '.join(targets)}", wave=wave)]
    if container.config_hash != config.config_hash(topo, pool):
        return [Action(Kind.RECREATE_POOLER, node, f"{name} was made with other settings (image, port or "
                       "parameters): make it again (its clients reconnect)", wave=wave)]
    if not container.running:
        return [Action(Kind.START_POOLER, node, f"{name} is {container.state}: start it, pointing at "
                       f"{', '.join(targets)}", wave=wave)]
    if not facts.answers:
        return [Action(Kind.RECREATE_POOLER, node, f"{name} runs but its admin console does not answer "
                       f"({facts.error or 'no answer'}): make it again", wave=wave)]
    if facts.targets != targets and not promoting and writable:
        now = ", ".join(facts.targets) or "no node"
        why = ("the primary is" if pool == "read-write"
               else "the replicas that stream are" if targets != (topo.primary,)
               else "no replica streams: the primary, read-only, is")
        return [Action(Kind.REPOINT_POOLER, node, f"it points at {now}, {why} {', '.join(targets)}: point it there "
                       "and resume", wave=wave)]
    if facts.paused and not any(a.pause_pooler for a in planned):
        return [Action(Kind.RESUME_POOLER, node, "it is paused and no apply is running (a pgtopo stopped while "
                       "it held it paused): resume it", wave=Wave(Phase.BUILD, 0))]
    return []


def _what(pool: config.Pool) -> str:
    return "pooler" if pool == "read-write" else "read-only pooler endpoint"
