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
from pgtopo.spec import POOLER_NODE, Topology

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


def _own(topo: Topology, obs: Observed, planned: list[Action]) -> list[Action]:
    facts = obs.pooler
    container = facts.container
    name = config.container_name(topo.cluster)
    wave = Wave(Phase.POOLER, 0)
    if topo.pooler is None:
        if container is None:
            return []
        return [Action(Kind.REMOVE_POOLER, POOLER_NODE, f"the file has no pooler: remove {name} (its clients are "
                       "disconnected)", wave=Wave(Phase.REMOVE, 0), target=name)]
    primary = obs.node(topo.primary)
    if container is None:
        return [Action(Kind.CREATE_POOLER, POOLER_NODE, f"create {name}: the applications' endpoint on port "
                       f"{topo.pooler.port}, pointing at {topo.primary}", wave=wave)]
    if container.config_hash != config.config_hash(topo):
        return [Action(Kind.RECREATE_POOLER, POOLER_NODE, f"{name} was made with other settings (image, port or "
                       "parameters): make it again (its clients reconnect)", wave=wave)]
    if not container.running:
        return [Action(Kind.START_POOLER, POOLER_NODE, f"{name} is {container.state}: start it, pointing at "
                       f"{topo.primary}", wave=wave)]
    if not facts.answers:
        return [Action(Kind.RECREATE_POOLER, POOLER_NODE, f"{name} runs but its admin console does not answer "
                       f"({facts.error or 'no answer'}): make it again", wave=wave)]
    promoting = any(a.kind in PROMOTIONS for a in planned)
    writable = primary.pg is not None and not primary.pg.in_recovery
    if facts.target != topo.primary and not promoting and writable:
        return [Action(Kind.REPOINT_POOLER, POOLER_NODE, f"it points at {facts.target or 'no node'}, the primary is "
                       f"{topo.primary}: point it there and resume", wave=wave)]
    if facts.paused and not any(a.pause_pooler for a in planned):
        return [Action(Kind.RESUME_POOLER, POOLER_NODE, "it is paused and no apply is running (a pgtopo stopped while "
                       "it held it paused): resume it", wave=Wave(Phase.BUILD, 0))]
    return []
