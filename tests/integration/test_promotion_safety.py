"""Promotion safety on real clusters: never two writers, never a committed write discarded
without --allow-data-loss.  The two reproductions of the promotion-safety review, kept as
regression tests, and the rollback of a switchover whose candidate freezes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from .conftest import IMAGE, pgtopo, psql, wait_for
from .test_switchover import converge, role_map

CASCADE_ONE_SLOT = """\
primary: primary
nodes:
  primary: {}
  replica: {parameters: {max_replication_slots: 1}}
  replica2: {upstream: replica}
"""

TRIO = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {}\n"


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)


def writers(c, nodes) -> list[str]:
    """The nodes that answer and accept writes."""
    out = []
    for node in nodes:
        proc = subprocess.run(["docker", "exec", c.container(node), "psql", "-U", "postgres", "-Atc",
                               "SELECT pg_is_in_recovery()"], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 and proc.stdout.strip() == "f":
            out.append(node)
    return out


def test_a_switchover_that_would_run_out_of_slots_is_refused_before_anything_changes(make_cluster) -> None:
    """Reproduction 1: the new primary has room for one slot, it needs two (its cascaded replica
    and the old primary).  Before: replica promoted, then the slot failed and the next apply
    started the old primary as a second writer."""
    c = make_cluster(IMAGE)
    converge(c, CASCADE_ONE_SLOT)
    before = c.path.read_text()

    result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert result.code == 1, result
    assert "replica: needs 2 replication slots" in result.err and "max_replication_slots is 1" in result.err, result
    assert "nothing was changed" in result.err
    assert c.path.read_text() == before  # no promotion happened: the file is put back
    assert role_map(c) == {"primary": "primary", "replica": "standby", "replica2": "standby"}

    again = pgtopo("apply", str(c.path), "--yes")
    assert again.code == 0, again
    assert writers(c, ("primary", "replica", "replica2")) == ["primary"]
    assert pgtopo("diff", str(c.path)).code == 0


def replica_misses_a_commit(c, *end_primary: str) -> None:
    """TRIO; replica stopped, table t committed on the primary and received by replica2, then
    replica2 stopped, the primary ended (`docker stop` or `docker rm -f`), replica started again:
    only replica2's and the primary's volumes hold t."""
    converge(c, TRIO)
    docker("stop", c.container("replica"))
    psql(c.container("primary"), "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
    assert wait_for(lambda: psql(c.container("replica2"), "SELECT to_regclass('t') IS NOT NULL") == "t")
    docker("stop", c.container("replica2"))
    docker(*end_primary, c.container("primary"))
    docker("start", c.container("replica"))


def test_a_failover_past_copies_that_hold_a_committed_write_is_refused(make_cluster) -> None:
    """Reproduction 2: the candidate never saw table t; replica2 and the old primary's volume
    hold it.  Before: the switchover promoted the candidate and rewound t away everywhere."""
    c = make_cluster(IMAGE)
    replica_misses_a_commit(c, "rm", "-f")

    result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert result.code == 1, result
    assert "replica: refusing to make it the primary" in result.err, result
    assert "primary: holds" in result.err and "replica2: holds" in result.err, result
    assert "(primary: primary)" in result.err  # names the most advanced copy
    assert "primary: primary" in c.path.read_text()  # put back
    assert writers(c, ("replica",)) == []

    # As the message says: keep the most advanced copy as the primary.
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    for node in ("primary", "replica", "replica2"):
        assert wait_for(lambda node=node: psql(c.container(node), "SELECT count(*) FROM t") == "1"), node
    assert writers(c, ("primary", "replica", "replica2")) == ["primary"]


def test_a_failover_with_allow_data_loss_promotes_and_says_what_it_discards(make_cluster) -> None:
    """The same situation, when the user accepts the loss: diff states it, apply needs the flag."""
    c = make_cluster(IMAGE)
    replica_misses_a_commit(c, "stop")
    c.write(TRIO.replace("primary: primary", "primary: replica", 1))

    shown = pgtopo("diff", str(c.path), "--allow-data-loss")
    assert shown.code == 1 and "failover" in shown.out and "--allow-data-loss" in shown.out, shown
    assert pgtopo("apply", str(c.path), "--yes").code == 1
    done = pgtopo("apply", str(c.path), "--yes", "--allow-data-loss")
    assert done.code == 0, done
    assert writers(c, ("primary", "replica", "replica2")) == ["replica"]
    assert psql(c.container("replica"), "SELECT to_regclass('t') IS NULL") == "t"
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_candidate_frozen_during_a_switchover_is_rolled_back_in_time(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, "switchover: {timeout_seconds: 3}\n" + TRIO)
    before = c.path.read_text()
    fence = f"{c.container('primary')}"
    paused = threading.Event()

    def freeze_when_fenced() -> None:
        """Pause the candidate once the switchover has fenced the old primary: after the plan,
        before the candidate has been asked to replay the shutdown checkpoint."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = subprocess.run(["docker", "exec", fence, "test", "-e", "/var/lib/postgresql/data/pgdata/standby.signal"],
                                   capture_output=True, timeout=30)
            if probe.returncode == 0:
                docker("pause", c.container("replica"))
                paused.set()
                return

    watcher = threading.Thread(target=freeze_when_fenced, daemon=True)
    watcher.start()
    try:
        started = time.monotonic()
        result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
        took = time.monotonic() - started
    finally:
        watcher.join(timeout=60)
        if paused.is_set():
            docker("unpause", c.container("replica"))
    assert paused.is_set(), result
    assert result.code == 1, result
    assert took < 3 + 15, (took, result.out, result.err)
    assert "was unfenced and started again as the primary" in result.err, result
    assert c.path.read_text() == before
    assert writers(c, ("primary", "replica", "replica2")) == ["primary"]
    assert psql(c.container("primary"), "SELECT pg_stat_file('standby.signal', true) IS NULL") == "t"
    assert pgtopo("apply", str(c.path), "--yes").code == 0


def test_a_switchover_killed_after_the_old_primary_stopped_never_leaves_it_writable(make_cluster, engine) -> None:
    """kill -9 of pgtopo right after the old primary's shutdown (before the promotion, or before
    it is made a standby): the fence written before the shutdown keeps a `docker start` by hand
    from bringing it back as a writer, and the next apply finishes the switchover."""
    from .test_interrupt import kill_when

    c = make_cluster(IMAGE)
    converge(c, TRIO)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    c.write(TRIO.replace("primary: primary", "primary: replica", 1))
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "apply", str(c.path), "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    kill_when(proc, lambda: engine.api.inspect_container(c.container("primary"))["State"]["Status"] == "exited",
              timeout=120)

    docker("start", c.container("primary"))  # an operator, or a script, starts it again
    assert wait_for(lambda: subprocess.run(["docker", "exec", c.container("primary"), "pg_isready", "-q"],
                                           capture_output=True).returncode == 0, timeout=60)
    assert writers(c, ("primary",)) == []  # fenced: it came back read-only

    finished = pgtopo("apply", str(c.path), "--yes")
    assert finished.code == 0, finished
    assert writers(c, ("primary", "replica", "replica2")) == ["replica"]
    assert psql(c.container("replica"), "SELECT count(*) FROM t") == "1"
    assert pgtopo("diff", str(c.path)).code == 0
