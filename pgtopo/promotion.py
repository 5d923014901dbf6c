"""Which node may accept writes, and what it takes to get there safely.  Pure.

Called by plan.py.  The invariants this module keeps (docs/safety.md):
  * at most one writer: several running writers are refused, whatever the file says, unless
    --allow-data-loss lets the file's primary win; a stopped primary is never started while
    another node accepts writes;
  * the old primary is fenced (standby.signal, container stopped) before any promotion, in
    switchover and failover alike, and so is every node with data that is not provably a standby;
  * the new primary holds every WAL record any other copy holds (running, stopped, or a volume
    without a container; see copies.py); if not, refuse and name the most advanced copy, unless
    --allow-data-loss;
  * an upstream can serve its standbys: slots and WAL senders (capacity_refusals) and the
    hot-standby settings of its future standbys, checked before the first change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pgtopo import labels as L, synchronous
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.copies import Ahead, Copy, ahead_of, copies, copy_of, most_advanced
from pgtopo.observed import HOT_STANDBY_SETTINGS, NodeFacts, Observed
from pgtopo.spec import Topology

LOSS_FLAG = "--allow-data-loss"


@dataclass(frozen=True)
class Promotion:
    actions: tuple[Action, ...] = ()
    refusals: tuple[str, ...] = ()
    handled: frozenset[str] = field(default_factory=frozenset)  # nodes the promotion itself takes care of


def promotion(topo: Topology, obs: Observed, sysid: int | None, allow_data_loss: bool = False) -> Promotion:
    target = obs.node(topo.primary)
    if sysid is not None and target.system_identifier not in (None, sysid):
        return Promotion()  # another cluster's data: the plan refuses it as such; no WAL of it compares with ours
    writers = sorted(n.name for n in obs.nodes.values() if n.pg is not None and not n.pg.in_recovery)
    if len(writers) > 1 and not (allow_data_loss and topo.primary in writers):
        return Promotion(refusals=(_several_writers(topo, obs, writers),))
    if target.pg is not None and not target.pg.in_recovery:
        return Promotion()
    if target.pg is not None:
        if writers:
            return _switchover(topo, obs, sysid, target, obs.node(writers[0]), allow_data_loss)
        return _failover(topo, obs, sysid, target, allow_data_loss)
    return _restart_primary(topo, obs, sysid, target, writers, allow_data_loss)


def _several_writers(topo: Topology, obs: Observed, writers: list[str]) -> str:
    listed = "; ".join(f"{w} ({copy.describe()})" for w in writers if (copy := copy_of(obs.node(w))))
    return (f"several nodes accept writes: {listed}. pgtopo will not pick one. Name the one whose writes must "
            f"survive as the primary in the file and apply with {LOSS_FLAG}: the others are rewound and what "
            "only they wrote is discarded")


def _position(facts: NodeFacts) -> str:
    copy = copy_of(facts)
    return copy.describe() if copy else "no data"


def _switchover(topo: Topology, obs: Observed, sysid: int | None, target: NodeFacts, old: NodeFacts,
                allow: bool) -> Promotion:
    assert target.pg is not None and old.pg is not None
    name, receiver = target.name, target.pg.receiver
    refusals = []
    if receiver is None or receiver.status != "streaming":
        refusals.append(f"{name}: cannot switch over to it: it is not streaming "
                        f"({receiver.status if receiver else 'no WAL receiver'}); fix its replication first: keep "
                        f"{old.name} as the primary in the file (primary: {old.name}) and apply, which repairs it, "
                        "then switch over again")
    elif receiver.upstream not in (None, old.name) and obs.node(receiver.upstream).pg is None:
        # its WAL receiver says "streaming" until wal_receiver_timeout while its upstream is cut
        # off: the switchover would fence the primary, wait in vain for the candidate and roll back
        refusals.append(f"{name}: cannot switch over to it: it streams from {receiver.upstream}, whose server does "
                        f"not answer, so the last WAL of {old.name} would never reach it; keep {old.name} as the "
                        f"primary in the file (primary: {old.name}) and apply, which repairs {receiver.upstream}, then "
                        "switch over again")
    if target.pg.timeline != old.pg.timeline:
        refusals.append(f"{name}: cannot switch over to it: it is on timeline {target.pg.timeline}, "
                        f"{old.name} on {old.pg.timeline}")
    lag = (old.pg.lsn or 0) - (target.pg.lsn or 0)
    if lag > topo.switchover.max_lag_bytes:
        refusals.append(f"{name}: cannot switch over to it: it replays {lag} bytes behind {old.name} "
                        f"(switchover.max_lag_bytes is {topo.switchover.max_lag_bytes}); wait and apply again")
    # The candidate gets all of the old primary's WAL before it is promoted: compare the others with that.
    reference = copy_of(old)
    assert reference is not None
    # Standbys streaming on the writer's timeline hold a prefix of its WAL; probed a moment after
    # it, under load, their position can read past the writer's: they are not compared.
    live = {n.name for n in obs.nodes.values() if n.pg is not None and n.pg.in_recovery and n.pg.receiver is not None
            and n.pg.receiver.status == "streaming" and n.pg.timeline == old.pg.timeline}
    losses = _losses(obs, sysid, reference, skip={name, old.name} | live)
    refusals += _loss_refusals(obs, sysid, name, losses, allow)
    refusals += standby_settings_refusals(topo, obs, name)
    if (delay := synchronous.delayed(target)) is not None:
        refusals.append(f"{name}: cannot switch over to it: it is a delayed replica (recovery_min_apply_delay "
                        f"{delay}), which replays WAL that late. Keep {old.name} as the primary in the file "
                        f"(primary: {old.name}), remove {name}'s delay and apply, then switch over again")
    if refusals:
        return Promotion(refusals=tuple(refusals))
    after = (f"restart {old.name} as a standby of {topo.upstream_of(old.name)}" if old.name in topo.nodes
             else f"{old.name} is not in the file: leave it stopped for removal")
    reason = (f"the file makes {name} the primary: fence {old.name} (standby.signal), CHECKPOINT and fast shutdown "
              f"of it, wait until {name} has replayed its shutdown checkpoint, promote {name}, {after}")
    action = Action(Kind.SWITCHOVER, name, reason, wave=Wave(Phase.BUILD, 1), upstream=old.name, data_loss=bool(losses))
    return Promotion(actions=(action,), handled=frozenset({old.name}))


def _failover(topo: Topology, obs: Observed, sysid: int | None, target: NodeFacts, allow: bool) -> Promotion:
    name = target.name
    reference = copy_of(target)
    assert reference is not None
    losses = _losses(obs, sysid, reference, skip={name})
    losses, proven = _quorum(topo, obs, sysid, name, losses)
    refusals = _loss_refusals(obs, sysid, name, losses, allow) + standby_settings_refusals(topo, obs, name)
    if refusals and proven is not None and not proven.holds:
        refusals.append(f"{name}: synchronous.durability is required but {proven.why}")
    if (delay := synchronous.delayed(target)) is not None and not allow:
        refusals.append(f"{name}: refusing to make it the primary: it is a delayed replica (recovery_min_apply_delay "
                        f"{delay}), kept to undo mistakes, not to take over. Name another node as the primary, or "
                        f"apply with {LOSS_FLAG} to promote it anyway")
    if refusals:
        return Promotion(refusals=tuple(refusals))
    fence = fence_set(obs, name)
    fenced = f"fence {', '.join(fence)} (stopped, standby.signal) so none can come back as a writer, " if fence else ""
    forced = f" ({LOSS_FLAG}: discards what only {', '.join(a.node for a in losses)} hold)" if losses else ""
    quorum = f" (unreachable copies left aside: {proven.why})" if proven is not None and proven.holds else ""
    reason = f"no node accepts writes and the file makes {name} the primary: {fenced}promote {name}{forced}{quorum}"
    action = Action(Kind.FAILOVER, name, reason, wave=Wave(Phase.BUILD, 1), fence=fence, data_loss=bool(losses),
                    destructive=bool(losses))
    # what the fenced nodes need next is planned on what they are after it (stopped, fenced)
    return Promotion(actions=(action,), handled=frozenset(fence))


def _restart_primary(topo: Topology, obs: Observed, sysid: int | None, target: NodeFacts, writers: list[str],
                     allow: bool) -> Promotion:
    """The file's primary runs no server: start it again, but never beside another writer and
    never when another copy holds WAL it lacks."""
    if not target.has_data:
        return Promotion()  # plan._refusals and the init rule decide
    if writers:
        w = writers[0]
        if not allow:
            return Promotion(refusals=(
                f"{w} accepts writes ({_position(obs.node(w))}) while the file's primary {target.name} is not "
                f"running ({_position(target)}): starting {target.name} as the primary would make two writers. "
                f"Name {w} as the primary in the file (primary: {w}), or apply with {LOSS_FLAG} to fence {w} "
                f"and discard what only it wrote",))
        fence = Action(Kind.FENCE, w, f"{LOSS_FLAG}: {w} accepts writes but the file makes {target.name} the "
                       f"primary: stop and fence it before {target.name} starts", wave=Wave(), destructive=True,
                       data_loss=True)
        return Promotion(actions=(fence,))
    if target.container is not None and target.container.running and not target.container.crash_looping:
        # Its container runs but its server cannot be reached (cut off its network, still
        # starting): pgtopo starts nothing, so no writer appears; the node rules reconnect it.
        # One Docker keeps restarting runs no server: it is started again (offline_conf), so it
        # is checked as a stopped primary is.
        return Promotion()
    reference = copy_of(target)
    if reference is None or not reference.exact:
        why = reference.unknown if reference else "no data"
        if allow:
            return Promotion()
        return Promotion(refusals=(
            f"{target.name}: the file's primary runs no server and how far its WAL goes is unknown ({why}); "
            f"pgtopo cannot check that no other node holds newer WAL. See the errors above or `docker logs`, fix "
            f"what keeps its volume from being read and apply again, or apply with {LOSS_FLAG}",))
    losses = _losses(obs, sysid, reference, skip={target.name})
    refusals = _loss_refusals(obs, sysid, target.name, losses, allow)
    if refusals:
        return Promotion(refusals=tuple(refusals))
    data = target.data
    unfence = data is not None and data.fenced and data.was_primary
    if not unfence:
        return Promotion()
    action = Action(Kind.UNFENCE, target.name, "a fenced old primary holds the newest WAL and no node accepts "
                    "writes: remove its standby.signal so it starts as the primary again (no promotion, no new "
                    "timeline)", wave=Wave(Phase.BUILD, 1))
    return Promotion(actions=(action,))


def _quorum(topo: Topology, obs: Observed, sysid: int | None, name: str,
            losses: list[Ahead]) -> tuple[list[Ahead], synchronous.Quorum | None]:
    """With `durability: required`, copies whose WAL end is unknown may be left aside when the
    reachable synchronous standbys prove the candidate holds every acknowledged commit
    (synchronous.quorum); copies known to hold WAL it lacks are never left aside."""
    unknown = [a for a in losses if a.bytes is None]
    if not unknown:
        return losses, None
    known = {n for n, c in copies(obs, sysid).items() if c.exact}
    proven = synchronous.quorum(topo, obs, name, known)
    if proven is None or not proven.holds:
        return losses, proven
    return [a for a in losses if a.bytes is not None], proven


def _losses(obs: Observed, sysid: int | None, reference: Copy, skip: set[str]) -> list[Ahead]:
    out = []
    for name, copy in sorted(copies(obs, sysid).items()):
        if name in skip:
            continue
        ahead = ahead_of(copy, reference)
        if ahead is not None:
            out.append(ahead)
    return out


def _loss_refusals(obs: Observed, sysid: int | None, name: str, losses: list[Ahead], allow: bool) -> list[str]:
    if not losses or allow:
        return []
    known = [a for a in losses if a.bytes is not None]
    out = []
    if known:
        lines = "; ".join(a.describe(name) for a in known)
        best = most_advanced(copies(obs, sysid)) or _only_one_ahead(obs, sysid, name, losses)
        if best is not None and best != name:
            instead = f"name {best} as the primary in the file instead (primary: {best}): it holds the newest WAL"
        else:
            instead = "bring those nodes up and apply again"
        out.append(f"{name}: refusing to make it the primary: {lines}. {instead}; or apply with {LOSS_FLAG} to "
                   f"promote {name} anyway and discard that WAL")
    for a in losses:
        copy = copy_of(obs.node(a.node))
        if a.bytes is not None and copy is not None and copy.exact:
            continue
        container = obs.node(a.node).container
        if a.bytes is not None:  # ahead by at least that much; how far exactly is not known
            if container is not None and container.running and copy is not None:
                out.append(f"{a.node}: {copy.unknown}, and its WAL reaches at least that far. Stop its container so "
                           f"its volume can be read (`docker stop {container.name}`), or bring its server back "
                           "(reconnect or restart it), then apply again")
            continue
        if container is not None and container.running:
            todo = (f"Stop its container so its volume can be read (`docker stop {container.name}`), or bring its "
                    "server back, then apply again")
        else:
            todo = "Fix what keeps its volume from being read, then apply again"
        out.append(f"{a.node}: cannot tell whether it holds WAL {name} lacks ({a.why}), so {name} is not made the "
                   f"primary. {todo}; or apply with {LOSS_FLAG} to promote {name} anyway")
    return out


def _only_one_ahead(obs: Observed, sysid: int | None, name: str, losses: list[Ahead]) -> str | None:
    """When a single copy holds WAL the candidate lacks, and it holds all of the candidate's too
    (even counting only what it is known to hold), it is the one to name, exact end or not."""
    if len(losses) != 1 or losses[0].bytes is None:
        return None
    all_copies = copies(obs, sysid)
    ahead, candidate = all_copies.get(losses[0].node), all_copies.get(name)
    if ahead is None or candidate is None or ahead_of(candidate, replace(ahead, exact=True)) is not None:
        return None
    return ahead.node


def fence_set(obs: Observed, candidate: str) -> tuple[str, ...]:
    """Every node with data that is not provably a standby: stopped, unreachable or writable
    (not just the node the candidate's primary_conninfo points at)."""
    return tuple(sorted(
        name for name, facts in obs.nodes.items()
        if name != candidate and facts.has_data and not (facts.pg is not None and facts.pg.in_recovery)
    ))


def standby_settings_refusals(topo: Topology, obs: Observed, new_primary: str) -> list[str]:
    """A standby does not start with a hot-standby setting below its primary's: check every
    running node of the file against the new primary before promoting it."""
    pg = obs.node(new_primary).pg
    if pg is None:
        return []
    out = []
    for node in sorted(topo.nodes):
        other = obs.node(node).pg
        if node == new_primary or other is None:
            continue
        for setting in HOT_STANDBY_SETTINGS:
            need, have = pg.limits.get(setting), other.limits.get(setting)
            if need is not None and have is not None and have < need:
                out.append(f"{new_primary}: cannot become the primary: {setting} is {need} there but {have} on "
                           f"{node}, which would not start as its standby; set {setting} to at least {need} on "
                           f"{node} (or lower it on {new_primary}) and apply that first")
    return out


def capacity_refusals(topo: Topology, obs: Observed) -> list[str]:
    """Each running upstream of the file can hold a slot and a WAL sender for every standby the
    file gives it, counting the slots it already has (slots are dropped only at the end)."""
    out = []
    for upstream in sorted(topo.nodes):
        pg = obs.node(upstream).pg
        downstreams = topo.downstreams(upstream)
        if pg is None or not downstreams:
            continue
        wanted = {L.slot_name(d) for d in downstreams}
        existing = {s.name for s in pg.slots}
        slots, have_slots = len(existing | wanted), pg.limits.get("max_replication_slots")
        if wanted - existing and have_slots is not None and slots > have_slots:
            out.append(f"{upstream}: needs {slots} replication slots ({len(wanted)} for its standbys in the file, "
                       f"{len(existing - wanted)} others it holds) but max_replication_slots is {have_slots}; raise "
                       f"it on {upstream} (parameters: max_replication_slots: {slots}; it takes a restart) and "
                       "apply that before this change")
        senders = pg.limits.get("max_wal_senders")
        if senders is not None and len(downstreams) > senders:
            out.append(f"{upstream}: needs {len(downstreams)} WAL senders for its standbys but max_wal_senders is "
                       f"{senders}; raise it on {upstream} (it takes a restart) and apply that before this change")
    return out
