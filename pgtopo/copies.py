"""Where each node's copy of the cluster's WAL ends, and which copy holds WAL another lacks.  Pure.

Called by promotion.py, plan.py and reconcile.py (which nodes' WAL ends to read).  A promotion is
safe only when the new primary holds every WAL record any other copy of the cluster holds: running
standbys (what they received), stopped nodes and volumes without a container (the end of their last
valid record, read with pg_waldump, see observe.read_wal_ends).  A copy whose end is not known
exactly counts as possibly ahead.  Comparisons follow timeline histories (timelines.decide), never
bare timeline numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology
from pgtopo.timelines import History, Position, Verdict, decide, lsn_text, shared_end


@dataclass(frozen=True)
class Copy:
    """One node's WAL: its timeline, where it ends, and that timeline's history."""

    node: str
    timeline: int
    end: int  # exact end when `exact`, else a lower bound (the last checkpoint)
    history: History = ()
    exact: bool = True
    writer: bool = False  # accepts writes now: its end moves
    unknown: str = ""  # when not exact: why the end is not known

    @property
    def position(self) -> Position:
        return Position(self.timeline, self.end, self.history)

    def describe(self) -> str:
        at = lsn_text(self.end) if self.exact else f"at least {lsn_text(self.end)}"
        return f"timeline {self.timeline}, WAL {at}"


@dataclass(frozen=True)
class Ahead:
    """`node` holds WAL the reference lacks: `bytes` of it on `timeline` (None: cannot tell)."""

    node: str
    bytes: int | None
    timeline: int
    why: str

    def describe(self, ref: str) -> str:
        if self.bytes is None:
            return f"{self.node}: cannot tell whether it holds WAL {ref} lacks ({self.why})"
        return (f"{self.node}: holds {self.bytes} bytes of WAL on timeline {self.timeline} that {ref} "
                f"does not have ({self.why})")


def copy_of(facts: NodeFacts) -> Copy | None:
    """The node's copy of the WAL, or None when it holds no data."""
    pg = facts.pg
    if pg is not None:
        if pg.timeline is None or pg.lsn is None:
            return Copy(facts.name, pg.timeline or 0, 0, pg.history, exact=False,
                        writer=not pg.in_recovery, unknown="its server reports no WAL position")
        end = pg.lsn if not pg.in_recovery else max(pg.lsn, pg.receive_lsn or 0)
        return Copy(facts.name, pg.timeline, end, pg.history, writer=not pg.in_recovery)
    data = facts.data
    if data is None or not data.has_pgdata:
        return None
    if data.wal_end is not None and data.wal_timeline is not None:
        return Copy(facts.name, data.wal_timeline, data.wal_end, data.history)
    running = facts.container is not None and facts.container.running
    why = (f"its server does not answer ({facts.pg_error or 'no connection'})" if running
           else f"its WAL could not be read: {data.wal_error}" if data.wal_error else "its WAL was not read")
    return Copy(facts.name, data.timeline or 0, data.checkpoint or 0, data.history, exact=False, unknown=why)


def ahead_of(copy: Copy, ref: Copy) -> Ahead | None:
    """Does `copy` hold WAL that `ref` lacks?  `ref` must be exact; an inexact `copy` is ahead
    when even its lower bound is, and otherwise "cannot tell"."""
    verdict, why = decide(copy.position, ref.position, ref.node)
    if verdict is Verdict.FOLLOW:
        return None if copy.exact else Ahead(copy.node, None, copy.timeline, copy.unknown)
    shared = shared_end(copy.position, ref.position)
    lost = copy.end - shared if shared is not None else copy.end
    return Ahead(copy.node, lost, copy.timeline, why)


def copies(obs: Observed, cluster_sysid: int | None) -> dict[str, Copy]:
    """Every node's copy of this cluster's WAL (data of another cluster is not a copy)."""
    out = {}
    for name, facts in obs.nodes.items():
        sysid = facts.system_identifier
        if cluster_sysid is not None and sysid is not None and sysid != cluster_sysid:
            continue
        c = copy_of(facts)
        if c is not None:
            out[name] = c
    return out


def most_advanced(all_copies: dict[str, Copy]) -> str | None:
    """The node whose copy holds every other copy's WAL (exact copies only); None when copies
    diverged, or when some copy's end is unknown."""
    exact = [c for c in all_copies.values() if c.exact]
    if len(exact) != len(all_copies):
        return None
    for candidate in sorted(exact, key=lambda c: (-c.timeline, -c.end, c.node)):
        if all(ahead_of(other, candidate) is None for other in exact if other.node != candidate.node):
            return candidate.node
    return None


def wal_end_needed(topo: Topology, obs: Observed) -> tuple[str, ...]:
    """Nodes whose WAL end must be read from their volume before a plan can be made: when the
    file's primary is not a running writer (a promotion, or a primary that must start again),
    every node with data whose server is not running (a container Docker keeps restarting runs
    none); and a stopped replica whose last
    checkpoint is older than the oldest WAL its upstream still has (can it stream once started?
    see behind_upstream).  A steady cluster needs none."""
    target = obs.node(topo.primary).pg
    promoting = target is None or target.in_recovery
    return tuple(sorted(
        name for name, facts in obs.nodes.items()
        if facts.pg is None and facts.data is not None and facts.data.has_pgdata and facts.data.wal_end is None
        and facts.volume is not None
        and (not (facts.container is not None and facts.container.running and not facts.container.crash_looping)
             or _wal_removed(facts))
        and (promoting or _may_be_behind(topo, obs, facts) or _wal_removed(facts))
    ))


def _wal_removed(facts: NodeFacts) -> bool:
    """Its WAL receiver was told its upstream removed the WAL it asked for (since it last started)."""
    return wal_removed(facts.stream_error)


def wal_removed(stream_error: str | None) -> bool:
    """A WAL receiver's complaint (observe.last_stream_error) says its upstream removed the WAL it asked for."""
    return stream_error is not None and "has already been removed" in stream_error


def never_consistent(topo: Topology, obs: Observed, node: str) -> str | None:
    """Why this standby can never open, or None: its server runs but refuses connections (it has
    not replayed up to a consistent state) and its WAL receiver was told its upstream no longer has
    the WAL it must replay first.  After a pg_rewind on PostgreSQL 13 the rewound copy lacks the
    WAL from the last checkpoint the two shared onwards when the upstream had already removed it
    (pg_rewind 13 deletes what the source does not have; 14 and later keep it).  A fresh copy is
    the only way on; whether it discards anything is decided from its WAL end, read off the volume
    (wal_end_needed), as for any re-clone."""
    facts = obs.node(node)
    upstream = topo.upstream_of(node) if node in topo.nodes else None
    running = facts.container is not None and facts.container.running and not facts.container.crash_looping
    if upstream is None or facts.pg is not None or not running or not _wal_removed(facts):
        return None
    return f"can never become consistent: {upstream} no longer has the WAL it must replay first ({facts.stream_error})"


def _may_be_behind(topo: Topology, obs: Observed, facts: NodeFacts) -> bool:
    oldest = _oldest_upstream_wal(topo, obs, facts.name)
    data = facts.data
    return oldest is not None and data is not None and data.checkpoint is not None and data.checkpoint < oldest


def _oldest_upstream_wal(topo: Topology, obs: Observed, node: str) -> int | None:
    upstream = topo.upstream_of(node) if node in topo.nodes else None
    up = obs.node(upstream).pg if upstream else None
    return up.oldest_wal if up is not None else None


def behind_upstream(topo: Topology, obs: Observed, node: str) -> str | None:
    """Why this replica can never stream from its upstream again, or None: the WAL it needs next
    (from where its own copy ends) is older than the oldest its upstream still has, and it is on
    the upstream's history (a diverged copy is a rewind's business).  A running standby counts
    only once its WAL receiver has failed since it started (it streams only after replaying all
    of its own pg_wal, so it then needs WAL from where it has replayed to; before, it may still
    be replaying WAL the upstream no longer has); a stopped one only when the end of its WAL was
    read exactly."""
    facts, upstream = obs.node(node), topo.upstream_of(node) if node in topo.nodes else None
    oldest = _oldest_upstream_wal(topo, obs, node)
    up = obs.node(upstream).pg if upstream else None
    mine = copy_of(facts)
    if oldest is None or up is None or up.timeline is None or up.lsn is None or mine is None or not mine.exact:
        return None
    if facts.pg is not None and (not facts.pg.in_recovery or facts.stream_error is None):
        return None
    if mine.writer or mine.end >= oldest:
        return None
    verdict, _ = decide(mine.position, Position(up.timeline, up.lsn, up.history), upstream or "its upstream")
    if verdict is not Verdict.FOLLOW:
        return None
    return (f"can never stream: {upstream} no longer has the WAL it needs from {lsn_text(mine.end)} on (its oldest "
            f"starts at {lsn_text(oldest)})")


def paused_for_settings(topo: Topology, obs: Observed, node: str) -> str | None:
    """Why this standby cannot go on replaying, or None: PostgreSQL paused its replay at an older
    parameter change of its primary's whose values are above its own settings (a node added back
    onto a volume kept from before a setting was raised and lowered again).  A fresh copy starts
    past that change; it loses nothing when the standby is on its upstream's history."""
    facts, upstream = obs.node(node), topo.upstream_of(node) if node in topo.nodes else None
    pg, up = facts.pg, obs.node(upstream).pg if upstream else None
    mine = copy_of(facts)
    if (pg is None or not pg.in_recovery or not pg.replay_paused or facts.settings_pause is None or mine is None
            or up is None or up.timeline is None or up.lsn is None):
        return None
    verdict, _ = decide(mine.position, Position(up.timeline, up.lsn, up.history), upstream or "its upstream")
    if verdict is not Verdict.FOLLOW:
        return None
    return (f"PostgreSQL paused its replay at an older parameter change ({facts.settings_pause}): it cannot "
            "go on with the settings it runs with")
