"""Switchover and failover: when the file's primary is not the node that takes writes.  Pure.

Called by plan.py.  A switchover (the old primary answers) is checked before anything changes:
the candidate streams, its lag is under `switchover.max_lag_bytes`, timelines agree.  A
failover (no node takes writes) promotes the named node only when no reachable replica has
replayed more, unless forced; the old primary is fenced first so it can only come back as a
standby, and is later rewound into a replica by the ordinary rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pgtopo.actions import Action, Kind
from pgtopo.labels import node_of_host
from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology


@dataclass(frozen=True)
class Promotion:
    actions: tuple[Action, ...] = ()
    refusals: tuple[str, ...] = ()
    handled: frozenset[str] = field(default_factory=frozenset)  # nodes the promotion itself takes care of


def promotion(topo: Topology, obs: Observed, force: bool = False) -> Promotion:
    target = obs.node(topo.primary)
    if target.pg is None or not target.pg.in_recovery:
        return Promotion()
    writers = sorted(n.name for n in obs.nodes.values() if n.pg is not None and not n.pg.in_recovery)
    if len(writers) > 1:
        return Promotion(refusals=(f"several nodes accept writes ({', '.join(writers)}); "
                                   "pgtopo will not pick one: stop all but one by hand, then apply",))
    if writers:
        return _switchover(topo, target, obs.node(writers[0]))
    return _failover(topo, obs, target, force)


def _switchover(topo: Topology, target: NodeFacts, old: NodeFacts) -> Promotion:
    assert target.pg is not None and old.pg is not None
    name, receiver = target.name, target.pg.receiver
    refusals = []
    if receiver is None or receiver.status != "streaming":
        refusals.append(f"{name}: cannot switch over to it: it is not streaming "
                        f"({receiver.status if receiver else 'no WAL receiver'}); fix its replication first")
    if target.pg.timeline != old.pg.timeline:
        refusals.append(f"{name}: cannot switch over to it: it is on timeline {target.pg.timeline}, "
                        f"{old.name} on {old.pg.timeline}")
    lag = (old.pg.lsn or 0) - (target.pg.lsn or 0)
    if lag > topo.switchover.max_lag_bytes:
        refusals.append(f"{name}: cannot switch over to it: it replays {lag} bytes behind {old.name} "
                        f"(switchover.max_lag_bytes is {topo.switchover.max_lag_bytes}); wait and apply again")
    if refusals:
        return Promotion(refusals=tuple(refusals))
    after = (f"restart {old.name} as a standby of {topo.upstream_of(old.name)}" if old.name in topo.nodes
             else f"{old.name} is not in the file: leave it stopped for removal")
    reason = (f"the file makes {name} the primary: CHECKPOINT and fast shutdown of {old.name}, wait until {name} "
              f"has replayed its shutdown checkpoint, promote {name}, {after}")
    action = Action(Kind.SWITCHOVER, name, reason, wave=1, upstream=old.name)
    return Promotion(actions=(action,), handled=frozenset({old.name}))


def _failover(topo: Topology, obs: Observed, target: NodeFacts, force: bool) -> Promotion:
    assert target.pg is not None
    name = target.name
    ahead = sorted(
        ((n.pg.lsn or 0) - (target.pg.lsn or 0), n.name)
        for n in obs.nodes.values()
        if n.pg is not None and n.pg.in_recovery and n.name != name and (n.pg.lsn or 0) > (target.pg.lsn or 0)
    )
    if ahead and not force:
        by, other = ahead[-1]
        return Promotion(refusals=(
            f"{name}: refusing to fail over to it: {other} has replayed {by} bytes more; name {other} as the "
            f"primary in the file, or apply with --force to promote {name} anyway (what only {other} has is lost)",))
    old = old_primary(obs, target)
    fence = f"fence {old} so it can only come back as a standby, " if old else ""
    forced = f" (forced past {ahead[-1][1]})" if ahead else ""
    reason = f"no node takes writes and the file makes {name} the primary: {fence}promote {name}{forced}"
    return Promotion(actions=(Action(Kind.FAILOVER, name, reason, wave=1, upstream=old),))


def old_primary(obs: Observed, node: NodeFacts) -> str | None:
    """Follow primary_conninfo hosts upstream from `node` to the first node that does not answer."""
    seen = {node.name}
    current = node
    while current.pg is not None:
        host = conninfo_host(current.pg.auto_conf.get("primary_conninfo", ""), obs.cluster)
        if host is None or host in seen:
            return None
        seen.add(host)
        current = obs.node(host)
    return current.name


def conninfo_host(conninfo: str, cluster: str = "") -> str | None:
    match = re.search(r"(?:^|\s)host\s*=\s*'?([^'\s]+)", conninfo)
    return node_of_host(match.group(1), cluster) if match else None
