"""Standby-sensitive settings in both directions: the order of restarts, and when copies are made.  Pure.

Called by plan.py.  A standby refuses to start with `max_connections`, `max_worker_processes`,
`max_wal_senders`, `max_prepared_transactions` or `max_locks_per_transaction` below the value in
its own pg_control ("recovery aborted because of insufficient parameter settings"), and that value
is its primary's as of the last parameter-change record it replayed: the primary writes (and
flushes) that record when it starts with changed values (xlog.c, XLogReportParameters), and a
standby's replay of it updates the standby's pg_control.  So:

* raising: the standbys first, deepest first, then the primary;
* lowering: the primary first, then its standbys, upstreams before their downstreams, each only
  after it has replayed the primary's WAL past that restart (`Action.replay_past`; execute waits);
* a standby whose server is down with the file's settings below what its pg_control records
  (restarted before it replayed the change, by an older pgtopo or by hand: it refuses to start,
  and Docker restarts it for ever) is started on those recorded values first (`held_for_replay`);
  a later round lowers them as above, once it has replayed the change;
* a primary that does not run, whose postgresql.auto.conf is rewritten offline from the file (it
  could not start on it), keeps a value the file raises above its running standbys' at what its
  pg_control records (`held_for_standbys`); a later round raises it the usual way;
* lowering: a node whose data is copied from an upstream in the same apply (a new replica, a
  re-clone, a rewind: pg_control comes with the copy) is made after every restart, so the copy
  already holds the lower values.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo import desired
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import HOT_STANDBY_SETTINGS, NodeFacts, Observed, PgFacts
from pgtopo.spec import Topology

# What a node runs with when the file does not set one (a RESET falls back to these): PostgreSQL's
# defaults, and pgtopo's own max_wal_senders in postgresql.conf.
DEFAULTS = {"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": desired.DEFAULT_WAL_SENDERS,
            "max_prepared_transactions": 0, "max_locks_per_transaction": 64}
COPY_KINDS = (Kind.CLONE, Kind.RECLONE, Kind.REWIND)  # the upstream's pg_control comes with the data


def lowered(topo: Topology, node: str, pg: PgFacts | None) -> tuple[str, ...]:
    """The hot-standby settings the file takes below what `node` runs with: 'max_connections 100 → 50'."""
    return _moved(topo, node, pg, lower=True)


def _moved(topo: Topology, node: str, pg: PgFacts | None, lower: bool) -> tuple[str, ...]:
    if pg is None:
        return ()
    out = []
    for name in HOT_STANDBY_SETTINGS:
        have, value = pg.limits.get(name), _wanted(topo, node, name)
        if have is not None and value.isdigit() and int(value) != have and (int(value) < have) == lower:
            out.append(f"{name} {have} → {value}")
    return tuple(out)


def _wanted(topo: Topology, node: str, name: str) -> str:
    want = desired.settings(topo, node)
    return want[name] if name in want else str(DEFAULTS[name])


def held_for_replay(topo: Topology, facts: NodeFacts) -> dict[str, str]:
    """A replica that does not run, whose file values are below those its pg_control records: the
    recorded values, which it must start with until it has replayed its primary's parameter change."""
    data = facts.data
    if facts.pg is not None or data is None or not data.limits or facts.name == topo.primary:
        return {}
    out = {}
    for name in HOT_STANDBY_SETTINGS:
        value, need = _wanted(topo, facts.name, name), data.limits.get(name)
        if need is not None and value.isdigit() and int(value) < need:
            out[name] = str(need)
    return out


def held_for_standbys(topo: Topology, obs: Observed, facts: NodeFacts) -> dict[str, str]:
    """The file's primary, not running, about to start on a postgresql.auto.conf rewritten offline:
    the hot-standby settings the file raises above what a running standby of the cluster has, held
    at the values its pg_control records (what it last ran with).  Started higher, it would write a
    parameter change its standbys cannot replay; a later round raises them the usual way, the
    standbys first."""
    data = facts.data
    if facts.name != topo.primary or facts.pg is not None or data is None or not data.limits:
        return {}
    out = {}
    for name in HOT_STANDBY_SETTINGS:
        value, recorded = _wanted(topo, facts.name, name), data.limits.get(name)
        standbys = [n.pg.limits[name] for n in obs.nodes.values()
                    if n.pg is not None and n.pg.in_recovery and name in n.pg.limits]
        if recorded is not None and standbys and value.isdigit() and int(value) > min(standbys):
            out[name] = str(min(recorded, min(standbys)))
    return out


def raised(topo: Topology, node: str, pg: PgFacts | None) -> tuple[str, ...]:
    """The hot-standby settings the file takes above what `node` runs with: 'max_wal_senders 40 → 60'."""
    return _moved(topo, node, pg, lower=False)


def both_ways_refusals(topo: Topology, obs: Observed) -> list[str]:
    """The primary lowers one hot-standby setting and raises another in one apply: a standby may
    follow a lowering only after the primary's restart, and a raise only before it, so no order of
    restarts works (the standbys would be re-cloned).  Refused before anything changes, with the
    two applies that do it."""
    pg = obs.node(topo.primary).pg
    down, up = lowered(topo, topo.primary, pg), raised(topo, topo.primary, pg)
    if not down or not up or not topo.replicas():
        return []
    keep = ", ".join(f"{d.split()[0]}: {d.split()[1]}" for d in down)
    return [f"{topo.primary}: the file lowers {', '.join(down)} and raises {', '.join(up)} in one apply; a standby "
            "can follow a lowering only after its primary restarts and a raise only before, so no order works. "
            f"Apply the raise first (keep {keep} in the file), then the lowering"]


def primary_lowers(topo: Topology, obs: Observed) -> tuple[str, ...]:
    return lowered(topo, topo.primary, obs.node(topo.primary).pg)


def rolling_rank(topo: Topology, node: str) -> int:
    """Position of `node` in a rolling change: deepest replicas first, the primary last."""
    order = sorted(topo.nodes, key=lambda n: (-topo.depth(n), n))
    return order.index(node)


def order_restarts(topo: Topology, obs: Observed, actions: list[Action]) -> list[Action]:
    """Restarts one node a wave: replicas first (deepest first) and the primary last; when the
    primary lowers a hot-standby setting, the reverse (the primary first, cascades in order).
    A standby that lowers one waits for the primary's parameter change before it restarts."""
    lowering = primary_lowers(topo, obs)
    last = len(topo.nodes) - 1
    out = []
    for a in actions:
        if a.kind is Kind.RESTART:
            rank = rolling_rank(topo, a.node)
            a = _explained(topo, obs, replace(a, wave=Wave(Phase.RESTART, last - rank if lowering else rank)), lowering)
        out.append(a)
    return sorted(out, key=lambda a: a.wave)


def _explained(topo: Topology, obs: Observed, a: Action, lowering: tuple[str, ...]) -> Action:
    if a.node == topo.primary:
        if not lowering:
            return a
        return replace(a, reason=f"{a.reason}; the primary first: it lowers {', '.join(lowering)}, which a "
                                 "standby may only follow once it has replayed the primary's parameter change")
    mine = lowered(topo, a.node, obs.node(a.node).pg)
    if not mine:
        return a
    return replace(a, replay_past=topo.primary,
                   reason=f"{a.reason}; it lowers {', '.join(mine)}: after its upstream, and only once it has "
                          f"replayed {topo.primary}'s WAL past {topo.primary}'s parameter change (started "
                          "earlier, a standby refuses to run)")


def copies_after_restarts(topo: Topology, obs: Observed, node: str, actions: list[Action],
                          deferred: set[str]) -> list[Action]:
    """When the primary lowers a hot-standby setting, a node whose data is copied from an upstream
    (or whose upstream is made so) is built after every restart, at 1 + its depth; `deferred`
    collects those nodes (call in depth order).  Such a node's own restart is left to the next
    round: in this one it could not replay the primary's change, its upstream not streaming yet."""
    lowering = primary_lowers(topo, obs)
    upstream = topo.upstream_of(node)
    if not lowering or not actions or not (upstream in deferred or any(a.kind in COPY_KINDS for a in actions)):
        return actions
    deferred.add(node)
    wave = Wave(Phase.JOIN, 1 + topo.depth(node))
    why = (f"after the restarts: {topo.primary} lowers {', '.join(lowering)}, and a copy taken before that "
           "would keep the higher values, which its server would refuse to start below")
    later = ("; its restart is left to the next round, once its upstream streams again"
             if any(a.kind is Kind.RESTART for a in actions) else "")
    return [replace(a, wave=wave, reason=f"{a.reason}; {why}" if a.kind in COPY_KINDS else a.reason + later)
            if a.wave.phase is Phase.BUILD else a for a in actions if a.kind is not Kind.RESTART]
