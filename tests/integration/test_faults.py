"""Faults on a real cluster: killed postmasters, a cut network, a full disk during a clone.

Every test writes rows before the fault and checks afterwards that every committed row is on
every node."""

from __future__ import annotations

import os
import signal
import subprocess

import docker
import pytest

from .conftest import CASCADE, IMAGE, PAIR, SOLO, actions, objects, pgtopo, psql, wait_for

pytestmark = pytest.mark.fault


def answers(container: str) -> bool:
    return subprocess.run(["docker", "exec", container, "pg_isready", "-q"], capture_output=True).returncode == 0


def rows_everywhere(c, nodes, expected: str) -> bool:
    return all(wait_for(lambda n=n: answers(c.container(n)) and
                        psql(c.container(n), "SELECT count(*) FROM t") == expected) for n in nodes)


def kill_postmaster(engine: docker.DockerClient, container: str) -> int:
    """SIGKILL the postmaster from the host (as the OOM killer would); returns the restart count."""
    c = engine.containers.get(container)
    os.kill(c.attrs["State"]["Pid"], signal.SIGKILL)
    return c.attrs["RestartCount"]


def restarted(engine: docker.DockerClient, container: str, before: int) -> bool:
    c = engine.containers.get(container)
    return c.attrs["RestartCount"] > before and c.status == "running" and answers(container)


@pytest.mark.parametrize("victim", ["replica", "primary"])
def test_killed_postmaster_is_restarted_and_nothing_is_lost(make_cluster, engine, victim: str) -> None:
    c = make_cluster(IMAGE)
    c.write(CASCADE)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 5000) AS i")
    assert rows_everywhere(c, ("replica", "replica2"), "5000")

    before = kill_postmaster(engine, c.container(victim))
    assert wait_for(lambda: restarted(engine, c.container(victim), before), timeout=60)
    status = pgtopo("status", str(c.path))
    assert status.code == 0 and c.name not in status.err, status
    result = pgtopo("apply", str(c.path))
    assert result.code == 0, result
    psql(c.container("primary"), "INSERT INTO t VALUES (5001)")
    assert rows_everywhere(c, ("primary", "replica", "replica2"), "5001")


def test_network_cut_is_shown_and_reconnected(make_cluster, engine) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    assert rows_everywhere(c, ("replica",), "100")

    subprocess.run(["docker", "network", "disconnect", f"{c.name}-net", c.container("replica")], check=True)
    psql(c.container("primary"), "INSERT INTO t VALUES (101)")
    status = pgtopo("status", str(c.path))
    assert status.code == 0
    replica_row = next(line for line in status.out.splitlines() if line.startswith("replica "))
    assert "streaming" not in replica_row, status.out
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "not attached to network" in diff.out, diff
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("connect", "replica")]
    assert rows_everywhere(c, ("replica",), "101")


def test_disk_full_during_a_clone_fails_cleanly_and_the_next_apply_retries(make_cluster, engine) -> None:
    c = make_cluster(IMAGE)
    c.write(SOLO)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 300000) AS i")  # ~10 MB
    volume = f"{c.name}-replica-data"
    labels = {"io.pgtopo.cluster": c.name, "io.pgtopo.role": "node", "io.pgtopo.node": "replica"}
    engine.volumes.create(volume, driver="local", labels=labels,
                          driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=8m"})

    c.write(PAIR)
    full = pgtopo("apply", str(c.path))
    assert full.code == 2, full
    assert "No space left on device" in full.err and "Traceback" not in full.err, full.err
    # the replica's container, which holds no data, is gone with its failed clone
    assert objects(engine, c.name)["containers"] == [c.container("primary")]

    engine.volumes.get(volume).remove()  # space exists again
    retried = pgtopo("apply", str(c.path))
    assert retried.code == 0, retried
    assert ("clone", "replica") in actions(retried.out)
    psql(c.container("primary"), "INSERT INTO t VALUES (0)")
    assert rows_everywhere(c, ("primary", "replica"), "300001")


def test_a_stopped_cut_off_replica_whose_upstream_changed_is_recreated_and_repointed(make_cluster, engine) -> None:
    """A replica stopped while cut from the network, whose upstream the file changed meanwhile (a
    failover, an edit): apply recreates it on its volume and repoints it in the same run, instead of
    waiting two minutes for it to stream from an upstream nothing has told it of yet."""
    c = make_cluster(IMAGE)
    c.write(PAIR + "  replica2: {}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    assert rows_everywhere(c, ("replica", "replica2"), "100")

    subprocess.run(["docker", "network", "disconnect", f"{c.name}-net", c.container("replica2")], check=True)
    subprocess.run(["docker", "stop", c.container("replica2")], check=True, capture_output=True)
    c.write(CASCADE)  # replica2 now streams from replica
    healed = pgtopo("apply", str(c.path), timeout=90)
    assert healed.code == 0, healed
    done = actions(healed.out)
    assert ("recreate", "replica2") in done and ("repoint", "replica2") in done, healed.out
    psql(c.container("primary"), "INSERT INTO t VALUES (101)")
    assert rows_everywhere(c, ("replica2",), "101")
    upstream = psql(c.container("replica2"), "SELECT sender_host FROM pg_stat_wal_receiver")
    assert upstream == c.container("replica"), upstream
