"""A replica whose upstream has removed the WAL it needs next can never stream again: apply
re-clones it (it holds nothing the primary lacks), stopped or running, instead of starting it and
waiting for it in vain.  Found by a long chaos run (a replica re-added on a volume kept from long
before)."""

from __future__ import annotations

import subprocess

import docker

from .conftest import IMAGE, actions, pgtopo, psql, wait_for

# No WAL kept for standbys beyond what checkpoints need: segments go as soon as they can.
FILE = ("primary: primary\nnodes:\n"
        "  primary: {parameters: {wal_keep_size: 0, max_wal_size: 32MB, min_wal_size: 32MB}}\n"
        "  replica: {}\n")


def _churn(container: str, rounds: int = 6) -> None:
    """Write, switch to a new segment, checkpoint: old segments are removed or recycled."""
    for i in range(rounds):
        psql(container, f"CREATE TABLE IF NOT EXISTS churn AS SELECT 1 AS i; INSERT INTO churn VALUES ({i}); "
                        "SELECT pg_switch_wal(); CHECKPOINT;")


def test_a_replica_whose_wal_is_gone_upstream_is_recloned(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(FILE)
    assert pgtopo("apply", str(c.path)).code == 0
    primary, replica = c.container("primary"), c.container("replica")
    subprocess.run(["docker", "stop", replica], check=True, capture_output=True)
    # Its slot dropped (as when it was removed from the file for a while), the primary moves on.
    psql(primary, "SELECT pg_drop_replication_slot('pgtopo_replica')")
    psql(primary, "CREATE TABLE t AS SELECT 42 AS answer")
    _churn(primary)

    # Stopped: the end of its WAL is read from its volume, and it is older than the primary's oldest.
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1, diff  # changes pending
    assert "! re-clone       can never stream: primary no longer has" in diff.out, diff

    # Running: it has replayed what its pg_wal holds and its WAL receiver fails (no slot; the WAL
    # it needs is gone anyway).
    subprocess.run(["docker", "start", replica], check=True, capture_output=True)
    assert wait_for(lambda: "could not start WAL streaming" in subprocess.run(
        ["docker", "logs", replica], capture_output=True, text=True).stderr, timeout=60)
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "! re-clone       can never stream: primary no longer has" in diff.out, diff

    applied = pgtopo("apply", str(c.path), "--yes")
    assert applied.code == 0, applied
    assert ("re-clone", "replica") in actions(applied.out), applied.out
    assert wait_for(lambda: psql(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1")
    assert psql(replica, "SELECT answer FROM t") == "42"
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_replica_added_back_from_before_a_setting_was_raised_and_lowered_converges(make_cluster) -> None:
    """Chaos seed 107 round 50: the replica's old volume replays a parameter change (42) above the
    value it is held at (40, from its pg_control); PostgreSQL pauses its replay for good.  apply
    stops waiting for it at once and the next apply re-clones it."""
    c = make_cluster(IMAGE)
    pair = "primary: primary\nparameters: {max_wal_senders: %d}\nnodes:\n  primary: {}\n  replica: {}\n"
    solo = "primary: primary\nparameters: {max_wal_senders: %d}\nnodes:\n  primary: {}\n"
    for text, value in ((pair, 40), (solo, 40), (solo, 42), (solo, 20)):
        c.write(text % value)
        assert pgtopo("apply", str(c.path), "--yes").code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 7 AS seven")
    c.write(pair % 20)
    first = pgtopo("apply", str(c.path), "--yes")
    # it started on the old volume and paused: said at once, not after 120 s
    assert first.code == 1 and "its replay is paused" in first.err, first
    again = pgtopo("apply", str(c.path), "--yes")
    assert again.code == 0, again
    assert ("re-clone", "replica") in actions(again.out), again.out
    assert wait_for(lambda: psql(c.container("primary"), "SELECT count(*) FROM pg_stat_replication "
                                                           "WHERE state = 'streaming'") == "1")
    assert psql(c.container("replica"), "SELECT seven FROM t") == "7"
    assert psql(c.container("replica"), "SHOW max_wal_senders") == "20"
    assert pgtopo("diff", str(c.path)).code == 0
