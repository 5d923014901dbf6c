"""What `diff` shows for one node, word for word and wave for wave: a left-over job's removal, a
clone's reason and slot, a re-clone of data of an older major or of another cluster, the three
upgrade actions, a recreate after the image's name moved, the start after a rewrite of the
conf, and the restarts and settings around them.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

from pgtopo import synchronous
from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import ContainerFacts, DataFacts, NodeFacts, WalReceiver
from pgtopo.pgcontrol import SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import OTHER, SYSID, T, container, converged, kinds, pg_primary, pg_replica, topo, volume
from .test_plan_offline_conf import BAD, PAIR, down, waiting
from .test_plan_standby_settings import BEFORE, CASCADE, TODAY, running
from .test_promotion import standby, stopped
from .test_synchronous import running as streaming_to, sync_topo
from .test_upgrade_plan import NEW_SYSID, T18, on17

PRIMARY_WAVE, REPLICA_WAVE = Wave(Phase.BUILD, 1), Wave(Phase.BUILD, 2)


def of(p, node: str) -> list[tuple[Kind, str, Wave]]:
    assert not p.refusals, p.refusals
    return [(a.kind, a.reason, a.wave) for a in p.actions if a.node == node]


def job(node: str) -> ContainerFacts:
    return ContainerFacts(id=f"j-{node}", name=f"pg-{node}-clone", state="exited", image=T.image)


def test_a_job_left_by_an_interrupted_apply_is_removed_in_its_node_s_wave() -> None:
    empty = NodeFacts("replica", volume=volume(T, "replica"), data=DataFacts(False), jobs=(job("replica"),))
    [remove] = [a for a in plan(T, converged(T, replica=empty)).actions if a.kind is Kind.REMOVE_JOB]
    assert (remove.node, remove.reason, remove.wave, remove.target) == (
        "replica", "job container pg-replica-clone was left by an interrupted apply", REPLICA_WAVE, "pg-replica-clone")


def test_the_primary_s_left_over_job_is_removed_too() -> None:
    primary = replace(converged(T).node("primary"), jobs=(job("primary"),))
    assert kinds(plan(T, converged(T, primary=primary))) == [("primary", "remove-job")]


def test_a_replica_without_data_is_cloned_into_its_volume_with_its_own_slot() -> None:
    empty = NodeFacts("replica", volume=volume(T, "replica"), data=DataFacts(False))
    [clone] = [a for a in plan(T, converged(T, replica=empty)).actions if a.node == "replica"]
    assert (clone.kind, clone.reason, clone.slot, clone.upstream, clone.destructive) == (
        Kind.CLONE, "volume holds no data: pg_basebackup from primary, then start", "pgtopo_replica", "primary", False)


def test_a_replica_without_a_volume_gets_one_then_is_cloned() -> None:
    assert of(plan(T, converged(T, replica=NodeFacts("replica"))), "replica") == [
        (Kind.CREATE_VOLUME, "no data volume", REPLICA_WAVE),
        (Kind.CLONE, "no data volume: pg_basebackup from primary, then start", REPLICA_WAVE),
    ]


def test_a_replica_holding_another_cluster_s_data_says_both_identities() -> None:
    foreign = NodeFacts("replica", container=container(T, "replica", "exited"), volume=volume(T, "replica"),
                        data=DataFacts(True, OTHER))
    reclone = of(plan(T, converged(T, replica=foreign)), "replica")[0]
    assert reclone == (Kind.RECLONE, f"its data belongs to another cluster (system identifier {OTHER}, this cluster "
                       f"is {SYSID}): pg_basebackup from primary", REPLICA_WAVE)


def test_a_replica_of_the_image_s_own_major_is_left_alone() -> None:
    assert plan(T, replace(converged(T), image_major=17)).actions == ()


def test_a_replica_of_an_older_major_is_copied_again_destructively() -> None:
    obs = on17(primary=replace(on17().node("primary"), pg=pg_primary(T, server_version=180001,
                                                                     system_identifier=NEW_SYSID)))
    p = plan(T18, replace(obs, system_identifier=NEW_SYSID))
    reclone = next(a for a in p.actions if a.node == "replica")
    assert (reclone.kind, reclone.reason, reclone.destructive) == (
        Kind.RECLONE, "its data is of PostgreSQL 17 and the file's image runs 18: copied again from its upgraded "
        "upstream: pg_basebackup from primary", True)


def test_the_upgrade_says_how_it_runs_and_that_the_replicas_follow() -> None:
    up = plan(T18, on17()).actions[0]
    assert (up.kind, up.wave, up.destructive) == (Kind.UPGRADE, PRIMARY_WAVE, True)
    assert up.reason == (
        "17 → 18: its data is of PostgreSQL 17 and the file's image runs 18. Writes stop; a server of its current "
        "image on the old data, reachable by no client, is dumped (pg_dumpall of 18) and restored into a new cluster "
        "beside it in volume pg-primary-data, analyzed, and swapped in; the old data is kept there as pgdata.17. Dump "
        "and restore, not pg_upgrade: it needs no binaries of the old image in the new one. The replicas are copied "
        "again from it")


def test_a_swap_interrupted_half_way_is_finished_in_the_primary_s_wave_as_a_destructive_step() -> None:
    primary = replace(on17().node("primary"), pg=None, data=DataFacts(has_pgdata=False, swap_from=17, upgraded_from=SYSID),
                      container=replace(container(T, "primary", "exited"), image_id="sha256:old17"))
    up = plan(T18, on17(primary=primary)).actions[0]
    assert (up.kind, up.wave, up.destructive) == (Kind.UPGRADE, PRIMARY_WAVE, True)
    assert up.reason == ("the upgrade from PostgreSQL 17 was interrupted in its swap: finish it (the new cluster is "
                         "built; the old data is kept as pgdata.17 in volume pg-primary-data)")


def test_an_upgraded_identity_is_recorded_in_the_primary_s_wave() -> None:
    upgraded = DataFacts(has_pgdata=True, system_identifier=NEW_SYSID, major=18, upgraded_from=SYSID, state=1,
                         checkpoint=0x2000000, timeline=1, wal_end=0x2000100, wal_timeline=1)
    primary = replace(on17().node("primary"), pg=None, container=container(T, "primary", "exited"), data=upgraded)
    up = plan(T18, on17(primary=primary)).actions[0]
    assert (up.kind, up.wave, up.destructive) == (Kind.UPGRADE, PRIMARY_WAVE, False)
    assert up.reason == (f"upgraded from cluster {SYSID} to {NEW_SYSID}, which the state volume does not record yet: "
                         "record it before its server starts")


def test_a_container_docker_lists_by_its_image_s_id_is_not_said_to_change_image() -> None:
    """Its image's name moved on, so Docker shows `sha256:...`: that is no image change of the file."""
    listed = replace(container(T, "replica", hash_="old"), image="sha256:" + "c" * 64)
    assert of(plan(T, converged(T, replica=replace(converged(T).node("replica"), container=listed))), "replica") == [
        (Kind.RECREATE, "container configuration changed; the data volume is kept; one node at a time, replicas first",
         Wave(Phase.ROLL, 1))]


def test_a_container_of_an_older_image_of_the_same_name_says_it_was_pulled_or_built_since() -> None:
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    base = converged(T)
    obs = replace(base, image_id=new, nodes={n: replace(f, container=replace(f.container, image_id=old))
                                             for n, f in base.nodes.items()})
    assert of(plan(T, obs), "replica")[0][1] == (
        "pgtopo-local/postgres:17 now names another image (aaaaaaaaaaaa → bbbbbbbbbbbb; pulled or built since); the "
        "data volume is kept; one node at a time, replicas first")


def test_a_primary_docker_keeps_restarting_is_started_from_its_container_s_state_after_the_rewrite() -> None:
    p = plan(PAIR, converged(PAIR, primary=down(BAD), replica=waiting(PAIR)))
    assert [(k, r) for k, r, _ in of(p, "primary")][1:] == [(Kind.START, "container is restarting")]


def test_a_primary_caught_running_between_two_crashes_is_started_on_the_rewritten_settings() -> None:
    p = plan(PAIR, converged(PAIR, primary=down(BAD, state="running", restarts=3), replica=waiting(PAIR)))
    assert [(k, r) for k, r, _ in of(p, "primary")][1:] == [(Kind.START, "start it on the settings it can run with")]


def test_a_crash_looping_replica_whose_data_is_copied_again_gets_no_rewrite() -> None:
    """The copy brings a postgresql.auto.conf of its own: nothing to rewrite on the data it replaces."""
    broken = down(BAD, "replica", pg_state=SHUT_DOWN_IN_RECOVERY, fenced=True)
    broken = replace(broken, data=replace(broken.data, interrupted=True))
    assert kinds(plan(PAIR, converged(PAIR, replica=broken))) == [("replica", "re-clone"), ("replica", "start")]


def test_a_standby_below_a_replica_copied_after_the_restarts_is_still_planned() -> None:
    """The primary lowers max_connections and replica must be cloned: its copy waits until after the
    restarts (standby_settings.copies_after_restarts), and so do its downstreams' changes."""
    lowered = topo(nodes=CASCADE, parameters={"max_connections": 50})
    obs = running(BEFORE, TODAY)
    obs = replace(obs, nodes={**obs.nodes, "replica": NodeFacts("replica", volume=volume(T, "replica"),
                                                                 data=DataFacts(False))})
    p = plan(lowered, obs)
    assert not p.refusals, p.refusals
    assert [a.wave.phase for a in p.actions if a.node == "replica" and a.kind is Kind.CLONE] == [Phase.JOIN]
    assert [a.settings for a in p.actions if a.node == "replica2" and a.kind is Kind.CONFIGURE] == [
        (("max_connections", "50"),)]


def test_a_standby_without_a_synchronous_rule_keeps_none_while_no_single_node_takes_writes() -> None:
    t, lowered = sync_topo(number=2, durability="preferred"), sync_topo(durability="preferred")
    bare = standby(lowered, "replica2", 0x3000000)
    bare = replace(bare, pg=replace(bare.pg, auto_conf={k: v for k, v in bare.pg.auto_conf.items()
                                                        if k != synchronous.SETTING}))
    obs = streaming_to(lowered, primary=stopped(lowered, "primary", SHUT_DOWN, 0x3000000),
                       replica=standby(lowered, "replica", 0x3000000), replica2=bare)
    assert kinds(plan(t, obs)) == [("primary", "start")]


def test_a_standby_streaming_from_another_node_is_repointed_not_rewound_against_the_file_s_upstream() -> None:
    """replica2 streams from primary on primary's timeline; the file moved it under replica, whose
    timeline 2 left primary's at 0/3000000 (replica is rewound onto primary's in this plan): replica2
    holds nothing to undo, it only needs the repoint."""
    primary = NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                        pg=pg_primary(T, lsn=0x5000000))
    replica = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                        pg=pg_replica(T, "replica", timeline=2, lsn=0x3500000, history=((1, 0x3000000),),
                                      receiver=None))
    replica2 = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"),
                         pg=pg_replica(T, "replica2", lsn=0x4000000,
                                       receiver=WalReceiver("streaming", "primary", "pgtopo_replica2")))
    p = plan(T, converged(T, primary=primary, replica=replica, replica2=replica2), allow_data_loss=True)
    assert [(k, r) for k, r, _ in of(p, "replica2")] == [(Kind.REPOINT, "streams from primary; the file says replica")]
    assert [k for k, _, _ in of(p, "replica")] == [Kind.REWIND, Kind.START]
