"""The planner's side of a major upgrade (upgrade.py): a file whose image is of a newer major than
the data upgrades the primary and copies the replicas again; what an interrupted upgrade left is
finished, never taken for an empty volume; a downgrade, or an upgrade it cannot run safely, is
refused before anything changes."""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Kind
from pgtopo.observed import DataFacts, Observed
from pgtopo.plan import cluster_system_identifier, plan

from .test_plan import SYSID, T, container, converged, kinds, pg_primary, pg_replica, topo

T18 = topo(image="pgtopo-local/postgres:18")
NEW_SYSID = 7000000000000000777


def on17(**node_overrides) -> Observed:
    """A healthy 17 cluster whose containers were made from image id old17, the file naming an 18 image."""
    obs = converged(T, **node_overrides)
    nodes = {n: replace(f, container=replace(f.container, image_id="sha256:old17") if f.container else None)
             for n, f in obs.nodes.items()}
    return replace(obs, nodes=nodes, image_major=18, image_id="sha256:new18")


def test_an_image_of_a_newer_major_upgrades_the_primary_then_copies_the_replicas_again() -> None:
    p = plan(T18, on17())
    assert p.refusals == ()
    # the upgrade ends with the new image's container running: no recreate of its own
    assert kinds(p) == [("primary", "major-upgrade"), ("primary", "create-role"),
                        ("replica", "re-clone"), ("replica", "recreate"),
                        ("replica2", "re-clone"), ("replica2", "recreate")]
    up = p.actions[0]
    assert up.kind is Kind.UPGRADE and up.target == "sha256:old17" and up.destructive
    assert up.reason.startswith("17 → 18") and "pgdata.17" in up.reason
    waves = [[(a.node, a.kind.value) for a in w] for w in p.waves()]
    # the replicas are copied only once the primary runs the new major, each from its own upstream
    assert waves[0][0] == ("primary", "major-upgrade") and ("replica", "re-clone") in waves[1]
    assert ("replica2", "re-clone") in waves[2]
    assert all(a.upstream == "primary" for a in p.actions if a.node == "replica" and a.kind is Kind.RECLONE)


def test_an_older_major_s_image_is_refused() -> None:
    on18 = replace(converged(T), image_major=17)  # the file names a 17 image; its servers run 18
    on18 = replace(on18, nodes={n: replace(f, pg=replace(f.pg, server_version=180001)) for n, f in on18.nodes.items()})
    p = plan(T, on18)
    assert p.actions == ()
    [refusal] = p.refusals
    assert refusal.startswith("image: pgtopo-local/postgres:17 is PostgreSQL 17, and primary, replica, replica2 hold "
                              "data of PostgreSQL 18: a server never starts on data of a newer major")
    assert plan(T18, replace(converged(T), image_major=None)).refusals == ()  # unknown: nothing to say
    assert plan(T, replace(converged(T), image_major=17)).refusals == ()


def test_an_upgrade_it_cannot_run_safely_is_refused() -> None:
    primary = on17().node("primary")
    gone = on17(primary=replace(primary, container=None, pg=None,
                                data=DataFacts(has_pgdata=True, system_identifier=SYSID, major=17)))
    refusals = plan(T18, gone).refusals
    assert any("no container left to tell which image runs PostgreSQL 17" in r for r in refusals), refusals
    standby = on17(primary=replace(primary, pg=pg_primary(T, in_recovery=True)))
    assert plan(T18, standby).refusals == (
        "primary is to be promoted (it is not the primary now) and the image's PostgreSQL major changes too; one at a "
        "time. Put back the image of PostgreSQL 17 in the file and apply, then change image: again",)
    unrecorded = replace(on17(), system_identifier=None)
    assert any("records no system identifier" in r for r in plan(T18, unrecorded).refusals)
    # a new primary and a new major in one change: one at a time
    moved = topo(image="pgtopo-local/postgres:18", primary="replica",
                 nodes={"primary": {"upstream": "replica"}, "replica": {}, "replica2": {"upstream": "replica"}})
    caught_up = on17(replica=replace(on17().node("replica"), pg=pg_replica(T, "replica", lsn=0x4000000)))
    [refusal] = plan(moved, caught_up).refusals
    assert refusal.startswith("replica is to be promoted"), refusal


def test_a_swap_interrupted_half_way_is_finished_never_initdb() -> None:
    """Killed between its two renames, the primary's volume holds no PGDATA for a moment: the plan
    finishes the swap instead of initdb-ing a new cluster (or refusing for a primary without data)."""
    primary = replace(on17().node("primary"), pg=None, container=container(T, "primary", "exited"),
                      data=DataFacts(has_pgdata=False, swap_from=17, upgraded_from=SYSID))
    p = plan(T18, on17(primary=replace(primary, container=replace(primary.container, image_id="sha256:old17"))))
    assert p.refusals == ()
    assert [k for n, k in kinds(p) if n == "primary"] == ["major-upgrade", "create-role"]
    assert p.actions[0].target is None and "interrupted in its swap" in p.actions[0].reason
    assert Kind.INIT not in {a.kind for a in p.actions}


def test_a_new_identity_the_state_does_not_record_yet_is_this_cluster_s() -> None:
    """Killed after the swap but before the state volume recorded the new cluster's system
    identifier: the volume says it was upgraded from the recorded one, so it is recorded, and the
    replicas (of the old major and identity) are copied from it; without that word it would be
    another cluster's data, refused."""
    upgraded = DataFacts(has_pgdata=True, system_identifier=NEW_SYSID, major=18, upgraded_from=SYSID, state=1,
                         checkpoint=0x2000000, timeline=1, wal_end=0x2000100, wal_timeline=1)
    primary = replace(on17().node("primary"), pg=None, container=container(T, "primary", "exited"), data=upgraded)
    obs = on17(primary=primary)
    assert cluster_system_identifier(T18, obs) == NEW_SYSID
    p = plan(T18, obs)
    assert p.refusals == ()
    assert kinds(p)[:2] == [("primary", "major-upgrade"), ("primary", "create-role")]
    assert p.actions[0].target is None and "record it before its server starts" in p.actions[0].reason
    assert ("replica", "re-clone") in kinds(p) and ("replica2", "re-clone") in kinds(p)
    stranger = on17(primary=replace(primary, data=replace(upgraded, upgraded_from=None)))
    assert any("belongs to another cluster" in r for r in plan(T18, stranger).refusals)


def test_replicas_of_an_older_major_are_copied_again_once_the_primary_runs_the_new_one() -> None:
    obs = on17(primary=replace(on17().node("primary"), pg=pg_primary(T, server_version=180001,
                                                                     system_identifier=NEW_SYSID)))
    obs = replace(obs, system_identifier=NEW_SYSID)
    p = plan(T18, obs)
    assert ("replica", "re-clone") in kinds(p) and ("primary", "major-upgrade") not in kinds(p)
    reclone = next(a for a in p.actions if a.node == "replica" and a.kind is Kind.RECLONE)
    assert "data is of PostgreSQL 17" in reclone.reason and not reclone.data_loss
