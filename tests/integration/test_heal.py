"""Drift repair: break a real cluster the way people and accidents do, then apply puts it back.

One test per case of the README's "How apply decides" table; each builds its own cluster.
"""

from __future__ import annotations

import subprocess

import docker
import pytest

from .conftest import CASCADE, IMAGE, PAIR, actions, objects, pgtopo, psql, wait_for


def docker_cli(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def streams(c, node: str, upstream: str) -> bool:
    return wait_for(lambda: psql(c.container(node), "SELECT status, sender_host FROM pg_stat_wal_receiver")
                    == f"streaming|{c.container(upstream)}")  # replicas connect to the container's name


def converge(c, body: str) -> None:
    c.write(body)
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result


def test_replica_volume_removed_is_recloned(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    docker_cli("rm", "-f", c.container("replica"))
    docker_cli("volume", "rm", f"{c.name}-replica-data")
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("create-volume", "replica"), ("clone", "replica")]
    assert streams(c, "replica", "primary")
    assert psql(c.container("replica"), "SELECT count(*) FROM t") == "1000"


def test_stopped_replica_is_started(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    docker_cli("stop", c.container("replica"))
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "container is exited" in diff.out, diff
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("start", "replica")]
    assert streams(c, "replica", "primary")


def test_a_stopped_primary_starts_past_the_wal_reading_job_a_killed_pgtopo_left(make_cluster, engine) -> None:
    """Chaos seed 112 round 21: pgtopo killed while it read a stopped primary's WAL end left the
    job's container behind; the next apply's own reading collided with it, the primary's WAL end
    was unknown, and apply refused to start it without --allow-data-loss."""
    from pgtopo import desired, docker_ops, loader

    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    docker_cli("stop", c.container("primary"))
    topo = loader.load_topology(c.path)
    # what a pgtopo killed inside the read leaves: the job's container, created, never removed
    leftover = docker_ops.create_container(engine, desired.waldump_job(topo, "primary", 1, "0/1000000"))
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    assert ("start", "primary") in actions(healed.out), healed.out
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery(), count(*) FROM t") == "f|1"
    assert streams(c, "replica", "primary")
    assert leftover not in {x.id for x in engine.containers.list(all=True)}, "the leftover job is removed"
    assert objects(engine, c.name)["containers"] == sorted([c.container("primary"), c.container("replica")])


def test_a_stopped_primary_s_wal_end_is_read_past_segments_made_ahead_of_use(make_cluster) -> None:
    """Chaos seed 112 round 39: a primary removed with `docker rm -f` left zero-filled WAL segments
    made ahead of use; pg_waldump took the WAL segment size from one of them, read nothing, and
    apply refused to start the primary without --allow-data-loss.  Its WAL here goes on for
    segments past its last checkpoint (the first fix read only the checkpoint's segment, so the
    streaming replica looked ahead of it: the lost-write scenario caught that)."""
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CHECKPOINT")
    psql(c.container("primary"), "CREATE TABLE t AS SELECT g AS i, repeat('x', 1000) AS pad FROM generate_series(1, 40000) g")
    end = psql(c.container("primary"), "SELECT pg_current_wal_flush_lsn()")
    assert wait_for(lambda: psql(c.container("replica"), f"SELECT pg_last_wal_replay_lsn() >= '{end}'") == "t",
                    timeout=60)
    docker_cli("kill", c.container("primary"))
    ahead = " ".join(f"/var/lib/postgresql/data/pgdata/pg_wal/00000001000000000000{n:04X}" for n in range(0xA0, 0xAA))
    docker_cli("run", "--rm", "--network", "none", "-v", f"{c.name}-primary-data:/var/lib/postgresql/data",
               IMAGE, "sh", "-c", f"truncate -s 16M {ahead}")
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    assert ("start", "primary") in actions(healed.out), healed.out
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery(), count(*) FROM t") == "f|40000"
    assert streams(c, "replica", "primary")


def test_replica_promoted_by_hand_is_rewound(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CREATE TABLE t (i int); INSERT INTO t VALUES (1)")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM pg_tables WHERE tablename='t'") == "1")
    psql(c.container("replica"), "SELECT pg_promote()")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "f")
    psql(c.container("replica"), "INSERT INTO t VALUES (666)")  # a write the file never allowed
    psql(c.container("primary"), "INSERT INTO t SELECT generate_series(2, 500)")

    # Two writers: refused whatever the file says, with each one's timeline and position.
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1, diff
    assert "several nodes accept writes: primary (timeline 1, WAL" in diff.out, diff.out
    assert "replica (timeline 2, WAL" in diff.out, diff.out
    refused = pgtopo("apply", str(c.path), "--yes")  # --yes is not consent to discard writes
    assert refused.code == 1 and "nothing was changed" in refused.err, refused
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "f"  # nothing was changed

    # The user decides the file's primary wins: diff says what the replica's rewind discards.
    lossy = pgtopo("diff", str(c.path), "--allow-data-loss")
    assert "! rewind" in lossy.out and "timeline 2 diverged from primary at" in lossy.out, lossy.out
    assert "bytes of WAL on timeline 2 that primary does not have" in lossy.out, lossy.out
    unconsented = pgtopo("apply", str(c.path), "--allow-data-loss")  # not a terminal, no --yes
    assert unconsented.code == 1 and "destructive" in unconsented.err, unconsented

    healed = pgtopo("apply", str(c.path), "--yes", "--allow-data-loss")
    assert healed.code == 0, healed
    assert ("rewind", "replica") in actions(healed.out)
    assert not {"clone", "re-clone"} & {k for k, _ in actions(healed.out)}
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "t"
    assert streams(c, "replica", "primary")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*), max(i) FROM t") == "500|500")


def test_wrong_upstream_is_repointed_and_slots_follow(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, CASCADE)
    c.write(CASCADE.replace("replica2: {upstream: replica}", "replica2: {}"))
    moved = pgtopo("apply", str(c.path))
    assert moved.code == 0, moved
    assert ("repoint", "replica2") in actions(moved.out) and ("drop-slot", "replica") in actions(moved.out)
    assert not {"clone", "re-clone"} & {k for k, _ in actions(moved.out)}
    assert streams(c, "replica2", "primary")
    assert psql(c.container("primary"), "SELECT slot_name FROM pg_replication_slots ORDER BY 1") == \
        "pgtopo_replica\npgtopo_replica2"
    assert psql(c.container("replica"), "SELECT count(*) FROM pg_replication_slots") == "0"

    # someone points replica2 elsewhere by hand: apply puts the file's upstream back
    psql(c.container("replica2"), f"ALTER SYSTEM SET primary_conninfo = 'host={c.container('replica')} port=5432 "
                                  "user=repuser passfile=/run/pgtopo/pgpass application_name=replica2'")
    psql(c.container("replica2"), "ALTER SYSTEM RESET primary_slot_name")
    psql(c.container("replica2"), "SELECT pg_reload_conf()")
    assert streams(c, "replica2", "replica")
    back = pgtopo("apply", str(c.path))
    assert back.code == 0, back
    assert actions(back.out)[0] == ("repoint", "replica2")
    assert streams(c, "replica2", "primary")


def test_replica_with_another_clusters_data_is_recloned(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    volume = f"{c.name}-replica-data"
    labels = engine.volumes.get(volume).attrs["Labels"]
    docker_cli("rm", "-f", c.container("replica"))
    docker_cli("volume", "rm", volume)
    engine.volumes.create(volume, labels=labels)
    docker_cli("run", "--rm", "-u", "postgres", "-v", f"{volume}:/var/lib/postgresql/data", IMAGE,
               "initdb", "-D", "/var/lib/postgresql/data/pgdata")  # a stranger's cluster, same volume name
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "belongs to another cluster" in diff.out and "! re-clone" in diff.out, diff.out
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    assert ("re-clone", "replica") in actions(healed.out)
    sysid = "SELECT system_identifier FROM pg_control_system()"
    assert psql(c.container("replica"), sysid) == psql(c.container("primary"), sysid)


def test_node_removed_from_file_keeps_its_volume_unless_pruned(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    converge(c, CASCADE)
    c.write(PAIR)
    refused = pgtopo("apply", str(c.path))
    assert refused.code == 1 and "replica2" in refused.err, refused
    removed = pgtopo("apply", str(c.path), "--yes")
    assert removed.code == 0, removed
    assert ("remove", "replica2") in actions(removed.out) and ("drop-slot", "replica") in actions(removed.out)
    left = objects(engine, c.name)
    assert c.container("replica2") not in left["containers"] and f"{c.name}-replica2-data" in left["volumes"]
    assert pgtopo("diff", str(c.path)).code == 0  # a kept volume is not drift
    pruned = pgtopo("apply", str(c.path), "--yes", "--prune-volumes")
    assert pruned.code == 0, pruned
    assert f"{c.name}-replica2-data" not in objects(engine, c.name)["volumes"]


def test_image_change_recreates_one_node_at_a_time_replicas_first(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    newer = f"pgtopo-test/{c.name}:minor"
    engine.images.get(IMAGE).tag(newer)
    try:
        c.image = newer
        c.write(PAIR)
        rolled = pgtopo("apply", str(c.path))
        assert rolled.code == 0, rolled
        assert actions(rolled.out) == [("recreate", "replica"), ("recreate", "primary")]
        for node in ("primary", "replica"):
            assert engine.containers.get(c.container(node)).attrs["Config"]["Image"] == newer
        assert streams(c, "replica", "primary")
        assert psql(c.container("replica"), "SELECT i FROM t") == "1"
    finally:
        for node in ("primary", "replica"):
            subprocess.run(["docker", "rm", "-f", c.container(node)], capture_output=True)
        engine.images.remove(newer)


def test_slots_nobody_uses_are_dropped_and_foreign_slots_kept(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "SELECT pg_create_physical_replication_slot('pgtopo_ghost')")
    psql(c.container("primary"), "SELECT pg_create_physical_replication_slot('backup_tool')")
    cleaned = pgtopo("apply", str(c.path))
    assert cleaned.code == 0, cleaned
    assert actions(cleaned.out) == [("drop-slot", "primary")]
    assert psql(c.container("primary"), "SELECT slot_name FROM pg_replication_slots ORDER BY 1") == \
        "backup_tool\npgtopo_replica"


def test_primary_container_removed_is_recreated_on_its_data(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 7 AS i")
    docker_cli("rm", "-f", c.container("primary"))
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("create", "primary")]
    assert psql(c.container("primary"), "SELECT i FROM t") == "7"
    assert streams(c, "replica", "primary")


def test_a_container_never_makes_its_data_twice(make_cluster, engine: docker.DockerClient) -> None:
    """The primary's container initdb'd once; when its PGDATA vanishes it refuses to start rather
    than initdb again by itself (Docker's restart policy keeps retrying, and it keeps refusing)."""
    c = make_cluster(IMAGE)
    converge(c, "primary: primary\nnodes:\n  primary: {}\n")
    name = c.container("primary")
    docker_cli("exec", name, "sh", "-c", "mv /var/lib/postgresql/data/pgdata /var/lib/postgresql/data/moved")
    docker_cli("restart", "-t", "5", name)
    assert wait_for(lambda: "not running init again" in subprocess.run(
        ["docker", "logs", name], capture_output=True, text=True).stderr, timeout=30)
    listing = docker_cli("run", "--rm", "-v", f"{c.name}-primary-data:/x", IMAGE, "ls", "/x")
    assert listing.split() == ["bootstrapped", "moved"], listing  # no new pgdata


def test_primary_volume_lost_while_a_replica_holds_data_is_refused(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    converge(c, PAIR)
    docker_cli("rm", "-f", c.container("primary"))
    docker_cli("volume", "rm", f"{c.name}-primary-data")
    before = objects(engine, c.name)
    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1, refused
    assert "replica still hold this cluster's data" in refused.err and "primary: replica" in refused.err
    assert objects(engine, c.name) == before  # no new volume, no initdb, nothing


@pytest.mark.parametrize("how", ["container", "volume"])
def test_clean_up_of_a_removed_cluster_node_leaves_others_alone(make_cluster, engine, how: str) -> None:
    """Removing one node's objects by hand affects only that node's plan."""
    c = make_cluster(IMAGE)
    converge(c, CASCADE)
    docker_cli("rm", "-f", c.container("replica2"))
    if how == "volume":
        docker_cli("volume", "rm", f"{c.name}-replica2-data")
    result = pgtopo("apply", str(c.path))
    assert result.code == 0, result
    assert {node for _, node in actions(result.out)} == {"replica2"}
    assert streams(c, "replica2", "replica")


def test_a_removed_replica_s_slot_held_by_a_dead_connection_is_dropped(make_cluster, engine) -> None:
    """A replica cut off the network, then removed from the file: its container is gone, but the
    primary's WAL sender still holds its slot until wal_sender_timeout.  apply stops that sender
    and drops the slot, instead of going round until it gives up (chaos seed 107, round 2)."""
    c = make_cluster(IMAGE)
    converge(c, PAIR.replace("  replica: {}\n", "  replica: {}\n  replica2: {}\n"))
    subprocess.run(["docker", "network", "disconnect", "-f", f"{c.name}-net", c.container("replica2")],
                   check=True, capture_output=True)
    assert psql(c.container("primary"), "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgtopo_replica2'") == "t"
    c.write(PAIR)
    removed = pgtopo("apply", str(c.path), "--yes")
    assert removed.code == 0, removed
    assert psql(c.container("primary"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtopo_replica2'") == "0"
    assert pgtopo("diff", str(c.path)).code == 0
