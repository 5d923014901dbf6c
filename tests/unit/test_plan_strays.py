"""The rest of what `diff` shows, word for word: nodes removed from the file (their container,
jobs and, with --prune-volumes, volume), slots no node uses, a writable replica whose upstream is
down, a primary that needs its standby.signal removed or its first start finished, an empty
cluster, and the order of the notes.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import DataFacts, NodeFacts, Slot
from pgtopo.pgcontrol import SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import SYSID, T, container, converged, pg_primary, pg_replica, topo, volume
from .test_promotion import TO_REPLICA, stopped
from .test_promotion_refusals import steady


def shown(p) -> list[tuple[str, Kind, str, Wave, str | None, bool]]:
    assert not p.refusals
    return [(a.node, a.kind, a.reason, a.wave, a.target, a.destructive) for a in p.actions]


def stray() -> NodeFacts:
    """A node gone from the file: its container, a job container left behind, its volume."""
    own = replace(container(T, "replica", hash_="x"), name="pg-old", id="id-old")
    job = replace(own, name="pg-old-job-clone", id="id-job")
    return NodeFacts("old", container=own, volume=replace(volume(T, "replica"), name="pg-old-data"), jobs=(job,))


def test_a_node_removed_from_the_file_loses_its_container_and_jobs_and_keeps_its_volume() -> None:
    assert shown(plan(T, converged(T, old=stray()))) == [
        ("old", Kind.REMOVE, "not in the file: remove its container; volume pg-old-data is kept",
         Wave(Phase.REMOVE, 0), "pg-old", True),
        ("old", Kind.REMOVE_JOB, "job container pg-old-job-clone of a removed node", Wave(Phase.REMOVE, 0),
         "pg-old-job-clone", False),
    ]


def test_with_prune_volumes_its_volume_is_deleted_after_its_container() -> None:
    assert shown(plan(T, converged(T, old=stray()), prune_volumes=True)) == [
        ("old", Kind.REMOVE, "not in the file: remove its container", Wave(Phase.REMOVE, 0), "pg-old", True),
        ("old", Kind.REMOVE_JOB, "job container pg-old-job-clone of a removed node", Wave(Phase.REMOVE, 0),
         "pg-old-job-clone", False),
        ("old", Kind.REMOVE_VOLUME, "not in the file and --prune-volumes: delete volume pg-old-data and its data",
         Wave(Phase.REMOVE, 1), "pg-old-data", True),
    ]


def test_a_slot_no_node_uses_is_dropped_on_its_server_even_when_a_node_before_it_is_down() -> None:
    """primary (first in name order) runs no server; replica still holds a pgtopo slot nobody uses."""
    down = stopped(T, "primary", SHUT_DOWN, 0x4000000)
    holder = replace(converged(T).node("replica"),
                     pg=pg_replica(T, "replica", slots=(Slot("pgtopo_replica2"), Slot("pgtopo_gone"))))
    p = plan(T, converged(T, primary=down, replica=holder))
    [drop] = [a for a in p.actions if a.kind is Kind.DROP_SLOT]
    assert (drop.node, drop.reason, drop.wave, drop.upstream, drop.slot) == (
        "replica", "slot pgtopo_gone is used by no node of the file", Wave(Phase.SLOTS, 0), "replica", "pgtopo_gone")


def test_a_writable_replica_whose_upstream_is_down_is_refused_with_what_to_do() -> None:
    writer = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"),
                       pg=pg_replica(T, "replica2", in_recovery=False, receiver=None, timeline=2, lsn=0x5000000,
                                     history=((1, 0x3000000),)))
    down = NodeFacts("replica", container=container(T, "replica", "exited"), volume=volume(T, "replica"),
                     data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x1000000, timeline=1))
    assert plan(T, converged(T, replica=down, replica2=writer), allow_data_loss=True).refusals == (
        "replica2: the file names it a replica but it accepts writes, and its upstream replica cannot be observed to "
        "decide between rewind and re-clone; bring the upstream up first",)


def test_a_primary_left_with_a_standby_signal_by_an_interrupted_promotion_has_it_removed() -> None:
    fenced = replace(converged(T).node("primary"), pg=pg_primary(T, fenced=True))
    assert shown(plan(T, converged(T, primary=fenced))) == [
        ("primary", Kind.UNFENCE, "it accepts writes and the file makes it the primary, but a standby.signal left by "
         "an interrupted promotion would restart it as a standby: remove it", Wave(Phase.BUILD, 1), None, False)]


def test_a_primary_whose_first_start_never_finished_gets_its_role_and_identity() -> None:
    first = stopped(T, "primary", SHUT_DOWN, 0x4000000)
    p = plan(T, replace(converged(T, primary=first), system_identifier=None))
    role = next(a for a in p.actions if a.kind is Kind.CREATE_ROLE)
    assert (role.node, role.wave) == ("primary", Wave(Phase.BUILD, 1))
    assert role.reason == ("its first start never finished (the cluster's identity is not recorded): create the "
                           "replication role repuser and record it")


def test_an_empty_cluster_is_built_from_the_primary_down() -> None:
    empty = replace(converged(T, primary=NodeFacts("primary"), replica=NodeFacts("replica"),
                              replica2=NodeFacts("replica2")), system_identifier=None, credentials=False,
                    state_volume=None)
    assert [(n, k, r, w) for n, k, r, w, _, _ in shown(plan(T, empty))][1:4] == [
        ("primary", Kind.CREATE_VOLUME, "no data volume", Wave(Phase.BUILD, 1)),
        ("primary", Kind.INIT, "no data anywhere in the cluster: initdb with data checksums, then start",
         Wave(Phase.BUILD, 1)),
        ("primary", Kind.CREATE_ROLE, "create the replication role repuser", Wave(Phase.BUILD, 1)),
    ]


def test_a_switchover_still_plans_for_the_nodes_after_the_old_primary() -> None:
    """The old primary is taken care of by the switchover; replica2, after it in the order, is
    still repointed to the new primary."""
    p = plan(TO_REPLICA, steady())
    assert p.notes == ("primary: taken care of by the switchover; rejoins in a later round",)
    assert ("replica2", Kind.REPOINT) in [(a.node, a.kind) for a in p.actions]


def test_notes_read_from_the_primary_down() -> None:
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}})
    assert plan(t, converged(t)).notes == ("replica: in sync (primary, timeline 1)",
                                           "primary: in sync (replica of replica, timeline 1)")
