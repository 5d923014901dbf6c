"""plan(topology, observed) -> Plan: what to do so the cluster matches the file.  Pure.

No side effects: no Docker, no Postgres, no clock.  Called by reconcile.py, for apply and diff;
tested with plain values in tests/unit/test_plan.py.  Every rule is here with its reason string,
so "why did apply clone replica2?" is answered by reading this file.

Waves: 0 cluster-wide objects; 1 + depth for each node (the primary first, then its replicas,
then cascaded ones, so an upstream is up before its downstreams clone from it); restarts run in
late waves deepest-first, primary last (primary first when it lowers a hot-standby setting, and
copies from an upstream wait until after the restarts then: standby_settings.py); removals and
slot clean-up run at the end.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo import conninfo, desired, labels as L, proof, rollback, synchronous
from pgtopo.actions import Action, Kind, Phase, Plan, PullPolicy, Wave
from pgtopo.backup import planning as backup_planning, restore_plan
from pgtopo.copies import (
    ahead_of,
    behind_upstream,
    copies,
    copy_of,
    most_advanced,
    never_consistent,
    paused_for_settings,
)
from pgtopo.observed import NodeFacts, Observed
from pgtopo.offline_conf import rewrite_conf
from pgtopo.pgcontrol import STATE_NAMES
from pgtopo.pooler import planning as pooler_planning
from pgtopo.promotion import LOSS_FLAG, capacity_refusals, promotion
from pgtopo.roles import planning as roles_planning
from pgtopo.spec import Topology
from pgtopo.standby_settings import both_ways_refusals, copies_after_restarts, order_restarts, rolling_rank
from pgtopo.timelines import Position, Verdict, decide

REMOVE_WAVE = Wave(Phase.REMOVE, 0)
REMOVE_VOLUME_WAVE = Wave(Phase.REMOVE, 1)  # after the containers that used the volumes
SLOT_WAVE = Wave(Phase.SLOTS, 0)

REPLICATION_KEYS = desired.REPLICATION_KEYS
# on existing data: leave the container stopped
DATA_KINDS = (Kind.INIT, Kind.RESTORE, Kind.CLONE, Kind.RECLONE, Kind.REWIND, Kind.DEMOTE, Kind.UPGRADE)


def plan(topo: Topology, obs: Observed, prune_volumes: bool = False, allow_data_loss: bool = False,
         pull: PullPolicy = "never", prune_roles: bool = False, prune_databases: bool = False) -> Plan:
    """The actions that bring `obs` to what `topo` says, or the refusals that forbid trying.
    `prune_volumes`: also delete the data volumes of nodes removed from the file.
    `allow_data_loss`: the user consents to discarding WAL that no other node holds (a promotion
    past a more advanced copy, rewinding a diverged writer); without it such plans are refused.
    `pull`: whether apply may pull the file's image (images.py); a missing image is refused under never.
    `prune_roles`, `prune_databases`: also drop the roles and databases pgtopo made that the file no
    longer names (roles/planning.py)."""
    sysid = cluster_system_identifier(topo, obs)
    promo = promotion(topo, obs, sysid, allow_data_loss)
    stopped_writers = {a.node for a in promo.actions if a.kind is Kind.FENCE}
    refusals = (_refusals(topo, obs, pull, promoting=bool(promo.actions)) + list(promo.refusals)
                + capacity_refusals(topo, obs) + both_ways_refusals(topo, obs))
    if not promo.refusals:  # a promotion's refusal says better what to do about a writable replica
        refusals += _role_refusals(topo, obs, stopped_writers)
    if refusals:
        return Plan(refusals=tuple(refusals))
    actions = _cluster_actions(topo, obs) + list(promo.actions)
    fenced = stopped_writers | {n for a in promo.actions for n in a.fence}
    notes: list[str] = restore_plan.notes(topo, obs)
    deferred: set[str] = set()  # built after the restarts (standby_settings.copies_after_restarts)
    for node in sorted(topo.nodes, key=lambda n: (topo.depth(n), n)):
        if node in promo.handled or node in stopped_writers:
            notes.append(f"{node}: taken care of by the {promo.actions[0].kind.value}; rejoins in a later round")
            continue
        node_actions = copies_after_restarts(topo, obs, node, _node_actions(topo, obs, node, fenced), deferred)
        actions += node_actions
        if not node_actions:
            notes.append(_in_sync_note(topo, obs.node(node)))
    actions += _stray_actions(topo, obs, prune_volumes)
    actions += _slot_cleanup(topo, obs)
    actions, losses = _mark_losses(topo, obs, actions)
    if losses and not allow_data_loss:
        return Plan(refusals=tuple(losses))
    ordered = pooler_planning.actions(topo, obs, _pull(topo, obs) + proof.prove_first(topo, order_restarts(topo, obs, actions)))
    catalog = roles_planning.part(topo, obs, ordered, prune_roles, prune_databases)
    sync_warnings = synchronous.stalls(topo, obs, ordered)
    if (lowered := synchronous.preferred_note(topo, obs, synchronous.wanted_rule(topo, obs))) is not None:
        sync_warnings += (lowered,)
    return Plan(actions=tuple(ordered + catalog.actions), notes=tuple(notes + catalog.notes),
                warnings=(warnings(topo) + _pull_warnings(topo, obs, pull) + tuple(catalog.warnings)
                          + sync_warnings))


def _mark_losses(topo: Topology, obs: Observed, actions: list[Action]) -> tuple[list[Action], list[str]]:
    """A rewind or re-clone of this cluster's data that holds WAL the primary lacks discards that
    WAL: mark it, and say how many bytes on which timeline (the refusal when not allowed)."""
    primary = obs.node(topo.primary)
    reference = copy_of(primary) if primary.pg is not None and not primary.pg.in_recovery else None
    sysid = cluster_system_identifier(topo, obs)
    out, refusals = [], []
    for a in actions:
        facts = obs.node(a.node)
        theirs = copy_of(facts) if a.kind in (Kind.REWIND, Kind.RECLONE) else None
        foreign = sysid is not None and facts.system_identifier not in (None, sysid)
        interrupted = facts.data is not None and facts.data.interrupted
        ahead = ahead_of(theirs, reference) if theirs and reference and not foreign and not interrupted else None
        if ahead is not None:
            lost = "an unknown amount of WAL" if ahead.bytes is None else f"{ahead.bytes} bytes of WAL"
            why = f"discards {lost} on timeline {ahead.timeline} that {topo.primary} does not have"
            a = replace(a, reason=f"{a.reason}; {why}", destructive=True, data_loss=True)
            refusals.append(f"{a.node}: a {a.kind.value} would discard {lost} on timeline {ahead.timeline} that no "
                            f"other node holds ({ahead.why}). If {a.node}'s writes must survive, name it as the "
                            f"primary in the file (primary: {a.node}); to discard them, apply with {LOSS_FLAG}")
        out.append(a)
    return out, refusals


def warnings(topo: Topology) -> tuple[str, ...]:
    """What the file allows but a reviewer should see."""
    return tuple(
        f"{name}: port published on every interface (bind: 0.0.0.0), reachable from other hosts; "
        "only scram-sha-256 stands between them and the server"
        for name, node in topo.nodes.items() if node.bind != "127.0.0.1"
    ) + pooler_planning.warnings(topo)


def cluster_system_identifier(topo: Topology, obs: Observed) -> int | None:
    """The cluster's identity: recorded at initdb, else the primary's data.  A major upgrade makes
    a new one (a new initdb), which its volume says it was upgraded from the recorded one until the
    state volume records it (upgrade.py)."""
    recorded, primary = obs.system_identifier, obs.node(topo.primary)
    if recorded is not None and primary.data is not None and primary.data.upgraded_from == recorded:
        return primary.system_identifier or recorded
    return recorded or primary.system_identifier


def _pull(topo: Topology, obs: Observed) -> list[Action]:
    """A missing image is pulled before anything else (apply does it before it takes the lock, which
    is a container of that image); plan() refuses it instead under --pull never."""
    if obs.image_present:
        return []
    return [Action(Kind.PULL, "", f"{topo.image} is not in the Docker engine: pulled from its registry first",
                   wave=Wave(), target=topo.image)]


def _pull_warnings(topo: Topology, obs: Observed, pull: PullPolicy) -> tuple[str, ...]:
    """What a reviewer of the plan cannot see in it: the image apply will run is the registry's."""
    if not obs.image_present:
        return (f"image {topo.image} is not in the Docker engine yet: the PostgreSQL major it runs is compared "
                "with the data's once apply has pulled it",)
    if pull == "always":
        return (f"image {topo.image}: apply pulls it again first (--pull always); should the registry have a newer "
                "image under that name, the nodes are recreated on it one at a time",)
    return ()


def _refusals(topo: Topology, obs: Observed, pull: PullPolicy, promoting: bool = False) -> list[str]:
    refusals = [
        f"{name} exists but was not made by pgtopo for cluster {topo.cluster!r} (no pgtopo labels); "
        "pgtopo never touches it: rename or remove it, or choose another cluster name"
        for name in obs.foreign
    ]
    refusals += [
        f"{name}: its container {n.container.name} is paused (docker pause); pgtopo does not act on a frozen node: "
        f"`docker unpause {n.container.name}`, then apply again"
        for name, n in sorted(obs.nodes.items()) if n.container is not None and n.container.state == "paused"
    ]
    refusals += [
        f"{node}: host port {port} is taken by {who}; free it or change nodes.{node}.port in the file, "
        "then apply again"
        for node, port, who in obs.ports_taken
    ]
    if not obs.image_present and pull == "never":
        refusals.append(f"image {topo.image} is not in the Docker engine, and --pull never forbids pulling it: "
                        f"build it or `docker load` it, or apply with --pull missing")
    refusals += _major_refusals(topo, obs, promoting)
    refusals += restore_plan.refusals(topo, obs) + backup_planning.repository_refusals(obs.repository)
    primary = obs.node(topo.primary)
    holders = sorted(n.name for n in obs.nodes.values() if n.name != topo.primary and n.has_data)
    swapping = primary.data is not None and primary.data.swap_from is not None
    if not primary.has_data and holders and not swapping:
        best = most_advanced(copies(obs, obs.system_identifier)) or holders[0]
        refusals.append(
            f"{topo.primary}: the primary has no data but {', '.join(holders)} still hold this cluster's data; "
            f"pgtopo never initdbs a new primary while the cluster's data exists. Make one of them the primary "
            f"in the file (primary: {best}) and apply again"
        )
    expected = cluster_system_identifier(topo, obs)
    if expected and primary.system_identifier and primary.system_identifier != expected:
        refusals.append(
            f"{topo.primary}: its data belongs to another cluster (system identifier {primary.system_identifier}, "
            f"this cluster is {expected}); move that volume away or fix the file"
        )
    with_data = sorted(n.name for n in obs.nodes.values() if n.has_data)
    passwords_in_file = topo.auth.superuser_password is not None and topo.auth.replication_password is not None
    if not obs.credentials and with_data and not passwords_in_file:
        state = desired.names(topo).state_volume
        refusals.append(
            f"the state volume {state} {'is missing' if obs.state_volume is None else 'holds no credentials'} "
            f"while {', '.join(with_data)} hold this cluster's data; new passwords would lock pgtopo out of it. "
            f"Restore {state}, or set auth.superuser_password and auth.replication_password in the file to the "
            "passwords in use, and apply again"
        )
    return refusals


def _major_refusals(topo: Topology, obs: Observed, promoting: bool = False) -> list[str]:
    """A server refuses data of another major, and its container would restart forever: data of a
    newer major than the file's image is refused; the primary's of an older one is upgraded
    (upgrade.py) when its old image is known, and the replicas are copied again from it."""
    image = obs.image_major
    if image is None:
        return []
    newer: dict[int, list[str]] = {}
    for name in sorted(topo.nodes):
        major = obs.node(name).major
        if major is not None and major > image:
            newer.setdefault(major, []).append(name)
    out = []
    for major, nodes in sorted(newer.items()):
        held = f"{', '.join(nodes)} {'hold' if len(nodes) > 1 else 'holds'} data of PostgreSQL {major}"
        out.append(f"image: {topo.image} is PostgreSQL {image}, and {held}: a server never starts on data of a "
                   f"newer major, and pgtopo never downgrades. Put back an image of PostgreSQL {major} in the file "
                   "and apply again")
    primary = obs.node(topo.primary)
    if out or primary.major is None or primary.major >= image:
        return out
    p, old = topo.primary, primary.major
    again = f"Put back the image of PostgreSQL {old} in the file and apply, then change image: again"
    if promoting:
        out.append(f"{p} is to be promoted (it is not the primary now) and the image's PostgreSQL major changes too; "
                   f"one at a time. {again}")
    elif primary.container is None or primary.container.image_id is None:
        out.append(f"{p} holds data of PostgreSQL {old} and has no container left to tell which image runs "
                   f"PostgreSQL {old}: the upgrade to {image} dumps the data with its own server. {again}")
    elif (primary.pg is not None and primary.pg.in_recovery) or (primary.data is not None and primary.data.fenced):
        out.append(f"{p} is a standby (its data holds standby.signal): an upgrade starts from a primary. {again}")
    elif obs.system_identifier is None:
        out.append(f"the state volume records no system identifier for this cluster, which an upgrade checks the "
                   f"new cluster's copies against. {again}")
    return out


def _role_refusals(topo: Topology, obs: Observed, stopped_writers: set[str]) -> list[str]:
    out = []
    for name in topo.replicas():
        if name in stopped_writers:
            continue
        pg, upstream = obs.node(name).pg, topo.upstream_of(name)
        if pg is not None and not pg.in_recovery and (upstream is None or obs.node(upstream).pg is None):
            out.append(
                f"{name}: the file names it a replica but it accepts writes, and its upstream {upstream} "
                "cannot be observed to decide between rewind and re-clone; bring the upstream up first"
            )
    return out


def _cluster_actions(topo: Topology, obs: Observed) -> list[Action]:
    actions = []
    if obs.network is None:
        actions.append(Action(Kind.CREATE_NETWORK, "", f"network {topo.network_name} does not exist", wave=Wave()))
    actions += [Action(Kind.REMOVE_JOB, "", f"helper container {name} was left by an interrupted pgtopo", wave=Wave(),
                       target=name) for name in obs.leftovers]
    if obs.state_volume is None or not obs.credentials:
        actions.append(Action(Kind.CREATE_STATE, "", "no stored credentials yet: keep the passwords in the state volume", wave=Wave()))
    return actions + backup_planning.repository_actions(topo, obs)


def _node_actions(topo: Topology, obs: Observed, node: str, fenced: set[str]) -> list[Action]:
    facts = obs.node(node)
    wave = Wave(Phase.BUILD, 1 + topo.depth(node))
    actions = [
        Action(Kind.REMOVE_JOB, node, f"job container {job.name} was left by an interrupted apply", wave=wave,
               target=job.name)
        for job in facts.jobs
    ]
    if node == topo.primary:
        actions += _primary_data(topo, obs, facts, wave)
    else:
        actions += _replica_data(topo, obs, facts, wave)
    data_rebuilt = any(a.kind in DATA_KINDS for a in actions)
    # A node without data gets a new container that initdbs or clones before its server starts
    # (execute._bootstrap), and an upgrade ends with the new image's container running (upgrade.py):
    # that action brings the container too.
    bootstrapped = any(a.kind in (Kind.INIT, Kind.RESTORE, Kind.CLONE, Kind.UPGRADE) for a in actions)
    container = None if bootstrapped else _container_action(topo, facts, wave, data_rebuilt, obs.image_id)
    rewrite = None if data_rebuilt else rewrite_conf(topo, obs, facts, wave)
    if rewrite is not None:
        actions.append(rewrite)
        if container is None and facts.container is not None:
            container = Action(Kind.START, node, "start it on the settings it can run with", wave=wave)
    if container is not None:
        actions += _fence_first(topo, facts, container, fenced)
        actions.append(container)
    if facts.pg is not None and facts.pg.fenced and not facts.pg.in_recovery and node == topo.primary:
        actions.append(Action(Kind.UNFENCE, node, "it accepts writes and the file makes it the primary, but a "
                              "standby.signal left by an interrupted promotion would restart it as a standby: "
                              "remove it", wave=wave))
    if data_rebuilt and node == topo.primary:
        actions.append(Action(Kind.CREATE_ROLE, node, f"create the replication role {topo.auth.replication_user}", wave=wave))
    elif node == topo.primary and container is not None and facts.pg is None and obs.system_identifier is None:
        actions.append(Action(Kind.CREATE_ROLE, node, f"its first start never finished (the cluster's identity is "
                              f"not recorded): create the replication role {topo.auth.replication_user} and record "
                              "it", wave=wave))
    elif facts.pg is not None and not data_rebuilt:
        actions += _server_actions(topo, obs, facts, wave)
    return actions


def _fence_first(topo: Topology, facts: NodeFacts, container: Action, fenced: set[str]) -> list[Action]:
    """A node the file calls a replica whose data last ran as a primary starts only fenced: with
    standby.signal it comes up as a standby, never as a second writer."""
    data = facts.data
    if (facts.name == topo.primary or facts.name in fenced or facts.pg is not None or data is None
            or not data.was_primary or data.fenced or container.kind not in (Kind.START, Kind.CREATE, Kind.RECREATE)):
        return []
    return [Action(Kind.FENCE, facts.name, f"its data last ran as a primary ({_state_name(data.state)}) and the "
                   f"file makes it a replica: write standby.signal before its container starts", wave=container.wave)]


def _state_name(state: int | None) -> str:
    return STATE_NAMES.get(state or 0, "unknown state")


def _primary_data(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> list[Action]:
    upgrade = _upgrade(topo, obs, facts, wave)
    if upgrade is not None:
        return [upgrade]
    if facts.has_data:
        return []
    actions = []
    if facts.volume is None:
        actions.append(Action(Kind.CREATE_VOLUME, facts.name, "no data volume", wave=wave))
    if topo.bootstrap is not None:
        return [*actions, restore_plan.restore_action(topo, facts.name, wave)]
    actions.append(Action(Kind.INIT, facts.name, "no data anywhere in the cluster: initdb with data checksums, "
                          "then start", wave=wave))
    return actions


def _upgrade(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> Action | None:
    """The primary's major upgrade (upgrade.py), or what an interrupted one left to do."""
    data, image, name = facts.data, obs.image_major, facts.name
    volume = desired.names(topo).volume(name)
    if data is not None and data.swap_from is not None and not facts.has_data:
        return Action(Kind.UPGRADE, name, f"the upgrade from PostgreSQL {data.swap_from} was interrupted in its swap: "
                      f"finish it (the new cluster is built; the old data is kept as pgdata.{data.swap_from} in "
                      f"volume {volume})", wave=wave, destructive=True)
    if (image is not None and facts.major is not None and facts.major < image and facts.container is not None
            and facts.container.image_id is not None):
        old = facts.major
        return Action(Kind.UPGRADE, name, f"{old} → {image}: its data is of PostgreSQL {old} and the file's image runs "
                      f"{image}. Writes stop; a server of its current image on the old data, reachable by no client, "
                      f"is dumped (pg_dumpall of {image}) and restored into a new cluster beside it in volume "
                      f"{volume}, analyzed, and swapped in; the old data is kept there as pgdata.{old}. Dump and "
                      "restore, not pg_upgrade: it needs no binaries of the old image in the new one. The replicas "
                      "are copied again from it", wave=wave, target=facts.container.image_id, destructive=True)
    recorded = obs.system_identifier
    if (data is not None and recorded is not None and data.upgraded_from == recorded
            and facts.system_identifier not in (None, recorded)):
        return Action(Kind.UPGRADE, name, f"upgraded from cluster {recorded} to {facts.system_identifier}, which the "
                      "state volume does not record yet: record it before its server starts", wave=wave)
    return None


def _replica_data(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> list[Action]:
    upstream = topo.upstream_of(facts.name)
    expected = cluster_system_identifier(topo, obs)
    if not facts.has_data:
        why, destructive = ("volume holds no data" if facts.volume else "no data volume"), False
    elif obs.image_major is not None and facts.major is not None and facts.major < obs.image_major:
        why = (f"its data is of PostgreSQL {facts.major} and the file's image runs {obs.image_major}: copied again "
               "from its upgraded upstream")
        destructive = True
    elif expected and facts.system_identifier and facts.system_identifier != expected:
        why = f"its data belongs to another cluster (system identifier {facts.system_identifier}, this cluster is {expected})"
        destructive = True
    elif facts.data is not None and facts.data.interrupted:
        why, destructive = "a pg_rewind was interrupted, so its data cannot be trusted", True
    elif (gone := behind_upstream(topo, obs, facts.name) or never_consistent(topo, obs, facts.name)) is not None:
        why, destructive = gone, True
    elif (paused := paused_for_settings(topo, obs, facts.name)) is not None:
        why, destructive = paused, True
    elif facts.pg is not None and (not facts.pg.in_recovery or not _streaming(facts)):
        return _rejoin(topo, obs, facts, wave)
    else:
        return []
    actions = []
    if facts.volume is None:
        actions.append(Action(Kind.CREATE_VOLUME, facts.name, "no data volume", wave=wave))
    then = ", then start" if not facts.has_data else ""
    kind = Kind.RECLONE if facts.has_data else Kind.CLONE
    actions.append(Action(kind, facts.name, f"{why}: pg_basebackup from {upstream}{then}", wave=wave,
                          upstream=upstream, slot=L.slot_name(facts.name), destructive=destructive))
    return actions


def _short_id(image_id: str | None) -> str:
    return (image_id or "").removeprefix("sha256:")[:12]


def _streaming(facts: NodeFacts) -> bool:
    return facts.pg is not None and facts.pg.receiver is not None and facts.pg.receiver.status == "streaming"


def _rejoin(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> list[Action]:
    """A node the file calls a replica accepts writes, or is a standby that cannot stream:
    follow, rewind or re-clone, decided by timelines.  A standby is only ever rewound (when its
    timeline left its upstream's history); one on its upstream's timeline just waits to stream."""
    pg, upstream = facts.pg, topo.upstream_of(facts.name)
    up = obs.node(upstream).pg if upstream else None
    if pg is None or up is None or pg.timeline is None or pg.lsn is None or up.timeline is None or up.lsn is None:
        return []  # a writable one is refused in _role_refusals; a standby waits for its upstream
    verdict, why = decide(Position(pg.timeline, pg.lsn, pg.history), Position(up.timeline, up.lsn, up.history),
                          upstream or "its upstream")
    slot, node = L.slot_name(facts.name), facts.name
    if pg.in_recovery:
        if verdict is not Verdict.REWIND:
            return []
        return [Action(Kind.REWIND, node, f"cannot stream: {why}: pg_rewind from {upstream} (re-clone if that fails)",
                       wave=wave, upstream=upstream, slot=slot, destructive=True)]
    if verdict is Verdict.FOLLOW and pg.timeline == up.timeline:
        return [Action(Kind.RECLONE, node, f"accepts writes on {upstream}'s timeline {pg.timeline}: its WAL may differ "
                       "from its upstream's at the same positions, which pg_rewind cannot see: re-clone from "
                       f"{upstream}", wave=wave, upstream=upstream, slot=slot, destructive=True)]
    match verdict:
        case Verdict.FOLLOW:
            return [Action(Kind.DEMOTE, node, f"accepts writes but {why}: restart it as a standby of {upstream}",
                           wave=wave, upstream=upstream, slot=slot)]
        case Verdict.REWIND:
            return [Action(Kind.REWIND, node, f"accepts writes; {why}: pg_rewind from {upstream} "
                           "(re-clone if that fails)", wave=wave, upstream=upstream, slot=slot, destructive=True)]
    return [Action(Kind.RECLONE, node, f"accepts writes; {why}: re-clone from {upstream}", wave=wave,
                   upstream=upstream, slot=slot, destructive=True)]


def _container_action(topo: Topology, facts: NodeFacts, wave: Wave, data_rebuilt: bool,
                      image_id: str | None = None) -> Action | None:
    """`image_id`: what the file's image name names now; a container made from another image of
    that name (before a pull or a build) is recreated, as docker compose does."""
    c, node = facts.container, facts.name
    if c is None:
        why = "no container; starting on the existing data volume" if facts.has_data else "no container"
        return Action(Kind.CREATE, node, why, wave=wave)
    hash_changed = c.config_hash != desired.node_hash(topo, node)
    other_image = None not in (image_id, c.image_id) and c.image_id != image_id
    if hash_changed or other_image:
        # Docker lists a container by its image's id once its image's name names another image
        renamed = hash_changed and c.image != topo.image and not c.image.startswith("sha256:")
        change = (f"image {c.image} → {topo.image}" if renamed else
                  f"{topo.image} now names another image ({_short_id(c.image_id)} → {_short_id(image_id)}; "
                  "pulled or built since)" if other_image else "container configuration changed")
        rolling = c.running and not data_rebuilt
        when = Wave(Phase.ROLL, rolling_rank(topo, node)) if rolling else wave
        suffix = "; one node at a time, replicas first" if rolling else ""
        return Action(Kind.RECREATE, node, f"{change}; the data volume is kept{suffix}", wave=when)
    detached = c.networks is not None and topo.network_name not in c.networks
    if not c.running and detached and not data_rebuilt:
        return Action(Kind.RECREATE, node, f"container is {c.state} and not attached to network {topo.network_name}: "
                      "recreate it on its volume", wave=wave)
    if data_rebuilt or not c.running:
        return Action(Kind.START, node, f"container is {c.state}" if not c.running else "start on the new data", wave=wave)
    if c.networks is not None and topo.network_name not in c.networks:
        return Action(Kind.CONNECT, node, f"container is not attached to network {topo.network_name}: "
                      f"reconnect it (alias {node})", wave=wave)
    return None


def _server_actions(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> list[Action]:
    pg, node = facts.pg, facts.name
    assert pg is not None
    actions: list[Action] = []
    unrecorded = obs.credentials and obs.system_identifier is None  # (create-role records it too)
    if node == topo.primary and topo.auth.replication_user not in pg.replication_roles:
        also = f"; record the cluster's identity ({pg.system_identifier}) too" if unrecorded else ""
        actions.append(Action(Kind.CREATE_ROLE, node, f"replication role {topo.auth.replication_user} is missing{also}",
                              wave=wave))
    elif node == topo.primary and unrecorded:
        actions.append(Action(Kind.RECORD_IDENTITY, node, f"the state volume records no system identifier (an apply "
                              f"stopped between initdb and recording it, or a state made again): record "
                              f"{pg.system_identifier}, which every clone and rewind source is checked against",
                              wave=wave))
    if node == topo.primary and obs.password_drift:
        fields = " and ".join(f"auth.{name}" for name in obs.password_drift)
        verb = "differs" if len(obs.password_drift) == 1 else "differ"
        actions.append(Action(Kind.SET_PASSWORD, node, f"{fields} in the file {verb} from the one in use: "
                              "ALTER ROLE on the primary, then keep it in the state volume", wave=wave))
    if node != topo.primary:
        actions += _replication_actions(topo, obs, facts, wave)
    else:
        actions += _stale_replication(facts, wave)
    changes = _setting_changes(topo, obs, facts)
    late = synchronous.lowered_last(topo, facts, changes)
    if late is not None:  # the primary's number goes down after every standby's (synchronous.lowered_last)
        changes = tuple(c for c in changes if c not in late.settings)
        actions.append(late)
    if changes:
        names = ", ".join(f"{k}={v}" if v is not None else f"reset {k}" for k, v in changes)
        actions.append(Action(Kind.CONFIGURE, node, f"ALTER SYSTEM {names}", wave=wave, settings=changes))
    pending = sorted(set(pg.pending_restart) | {k for k, _ in changes if k in pg.restart_settings})
    if pending:
        actions.append(Action(Kind.RESTART, node, f"{', '.join(pending)} only apply after a restart; {rollback.PROMISE}",
                              wave=Wave(Phase.RESTART)))  # its rank: order_restarts
    return actions


def _setting_changes(topo: Topology, obs: Observed, facts: NodeFacts) -> tuple[tuple[str, str | None], ...]:
    """The ALTER SYSTEM that brings the node's postgresql.auto.conf to the file: its parameters,
    and the synchronous rule as it must be now (synchronous.wanted_rule: preferred durability
    counts the standbys that stream; left alone while no single node takes writes)."""
    assert facts.pg is not None
    want = desired.settings(topo, facts.name)
    have = {k: v for k, v in facts.pg.auto_conf.items() if k not in REPLICATION_KEYS}
    if synchronous.SETTING in want:
        rule = synchronous.wanted_rule(topo, obs)
        if rule is None:
            want.pop(synchronous.SETTING)
            have.pop(synchronous.SETTING, None)
        else:
            want[synchronous.SETTING] = rule
    changes: list[tuple[str, str | None]] = [(k, v) for k, v in want.items() if have.get(k) != v]
    changes += [(k, None) for k in sorted(have) if k not in want]
    return tuple(changes)


def _stale_replication(facts: NodeFacts, wave: Wave) -> list[Action]:
    """The primary's postgresql.auto.conf matches the file, which gives it no upstream: a node
    promoted by a switchover or failover keeps the primary_conninfo / primary_slot_name it had as a
    standby (harmless while it takes writes, misleading in SHOW, wrong if it were started as a
    standby by hand).  Only once it takes writes: a standby still to be promoted keeps streaming."""
    pg = facts.pg
    assert pg is not None
    stale = [k for k in REPLICATION_KEYS if k in pg.auto_conf]
    if pg.in_recovery or not stale:
        return []
    names = ", ".join(stale)
    return [Action(Kind.CONFIGURE, facts.name, f"ALTER SYSTEM RESET {names}: left from when it was a standby; "
                   "the primary streams from no one (a reload, no restart)", wave=wave,
                   settings=tuple((k, None) for k in stale))]


def _replication_actions(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> list[Action]:
    pg, node = facts.pg, facts.name
    assert pg is not None
    upstream = topo.upstream_of(node)
    slot = L.slot_name(node)
    want = desired.replication_settings(topo, node, pg.server_version)
    have = {k: pg.auto_conf.get(k) for k in REPLICATION_KEYS}
    now = pg.receiver.upstream if pg.receiver else None
    if not _same_source(have, want) or (now is not None and now != upstream):
        # the second: postgresql.auto.conf says the file's upstream but the receiver streams from
        # another (a repoint killed between its ALTER SYSTEM and its reload); a repoint reloads
        why = (f"streams from {now}; the file says {upstream}" if now and now != upstream
               else "primary_conninfo / primary_slot_name differ from the file")
        return [Action(Kind.REPOINT, node, why, wave=wave, upstream=upstream, slot=slot)]
    up = obs.node(upstream).pg if upstream else None
    if up is not None and slot not in {s.name for s in up.slots}:
        return [Action(Kind.CREATE_SLOT, node, f"slot {slot} is missing on {upstream}", wave=wave,
                       upstream=upstream, slot=slot)]
    return []


def _same_source(have: dict[str, str | None], want: dict[str, str]) -> bool:
    """The replication settings a standby has are the file's: the same slot, and a primary_conninfo
    with the same keywords and values (in whatever order or quoting)."""
    if have.get("primary_slot_name") != want.get("primary_slot_name"):
        return False
    mine, theirs = have.get("primary_conninfo"), want.get("primary_conninfo")
    if mine is None or theirs is None:
        return mine == theirs
    try:
        return conninfo.parse(mine) == conninfo.parse(theirs)
    except ValueError:  # not even a connection string: not the file's
        return False


def _stray_actions(topo: Topology, obs: Observed, prune_volumes: bool) -> list[Action]:
    actions = []
    for name, facts in sorted(obs.nodes.items()):
        if name in topo.nodes:
            continue
        if facts.container is not None:
            keep = f"; volume {facts.volume.name} is kept" if facts.volume and not prune_volumes else ""
            actions.append(Action(Kind.REMOVE, name, f"not in the file: remove its container{keep}",
                                  wave=REMOVE_WAVE, target=facts.container.name, destructive=True))
        actions += [Action(Kind.REMOVE_JOB, name, f"job container {j.name} of a removed node", wave=REMOVE_WAVE,
                           target=j.name) for j in facts.jobs]
        if prune_volumes and facts.volume is not None:
            actions.append(Action(Kind.REMOVE_VOLUME, name, f"not in the file and --prune-volumes: delete "
                                  f"volume {facts.volume.name} and its data", wave=REMOVE_VOLUME_WAVE,
                                  target=facts.volume.name, destructive=True))
    return actions


def _slot_cleanup(topo: Topology, obs: Observed) -> list[Action]:
    """Drop slots pgtopo made (pgtopo_*) that no node of the file uses on that server."""
    wanted = {(topo.upstream_of(r), L.slot_name(r)) for r in topo.replicas()}
    actions = []
    for name, facts in sorted(obs.nodes.items()):
        if facts.pg is None or name not in topo.nodes:
            continue
        for slot in facts.pg.slots:
            if slot.name.startswith("pgtopo_") and (name, slot.name) not in wanted:
                actions.append(Action(Kind.DROP_SLOT, name, f"slot {slot.name} is used by no node of the file",
                                      wave=SLOT_WAVE, upstream=name, slot=slot.name))
    return actions


def _in_sync_note(topo: Topology, facts: NodeFacts) -> str:
    pg = facts.pg
    if pg is None:
        return f"{facts.name}: no change planned ({facts.pg_error or 'server not observed'})"
    role = "primary" if not pg.in_recovery else f"replica of {topo.upstream_of(facts.name)}"
    return f"{facts.name}: in sync ({role}, timeline {pg.timeline})"
