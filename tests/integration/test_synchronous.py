"""Synchronous replication on real clusters: commits that wait, a switchover that keeps the rule,
the quorum failover guard, preferred durability, and a delayed replica (docs/synchronous.md)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from .conftest import IMAGE, actions, pgtopo, psql, wait_for
from .test_switchover import pgbench_through

QUORUM = """\
primary: primary
synchronous: {method: any, number: 1, durability: %s}
nodes:
  primary: {}
  replica: {}
  replica2: {}
"""
RULE = 'ANY 1 ("primary", "replica", "replica2")'


def converge(c, body: str) -> None:
    c.write(body)
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result


def sync_states(c, node: str) -> dict[str, str]:
    rows = psql(c.container(node), "SELECT application_name || '=' || sync_state FROM pg_stat_replication "
                                   "WHERE state = 'streaming' ORDER BY 1")
    return dict(line.split("=") for line in rows.splitlines() if line)


def setting(c, node: str, name: str = "synchronous_standby_names") -> str:
    return psql(c.container(node), f"SHOW {name}")


def insert(c, node: str, *statements: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """psql with each statement on its own -c, in one session (a SET applies to the next one)."""
    args = [arg for sql in statements for arg in ("-c", sql)]
    return subprocess.run(["docker", "exec", c.container(node), "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                           "-At", *args], capture_output=True, text=True, timeout=timeout)


def test_quorum_commits_wait_until_a_standby_holds_them(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, QUORUM % "required")
    assert {node: setting(c, node) for node in ("primary", "replica", "replica2")} == dict.fromkeys(
        ("primary", "replica", "replica2"), RULE)
    assert wait_for(lambda: sync_states(c, "primary") == {"replica": "quorum", "replica2": "quorum"})
    status = pgtopo("status", str(c.path))
    assert re.search(r"^replica\s+running\s+\d+\s+replica\s+primary\s+streaming \(quorum\)", status.out, re.M), status
    assert f"synchronous {RULE} · durability required" in status.out
    psql(c.container("primary"), "CREATE TABLE t (id int)")

    subprocess.run(["docker", "stop", c.container("replica"), c.container("replica2")], check=True,
                   capture_output=True)
    # PostgreSQL's statement_timeout stops before a commit waits for standbys: the client's own timeout
    with pytest.raises(subprocess.TimeoutExpired):
        insert(c, "primary", "INSERT INTO t VALUES (1)", timeout=3)

    waiting = subprocess.Popen(["docker", "exec", c.container("primary"), "psql", "-U", "postgres", "-Atc",
                                "INSERT INTO t VALUES (2)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert waiting.poll() is None, "a commit returned while no standby streamed"
    subprocess.run(["docker", "start", c.container("replica")], check=True, capture_output=True)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "INSERT 0 1" in out and "canceling" not in err, (out, err)
    assert psql(c.container("replica"), "SELECT count(*) FROM t WHERE id = 2") == "1"


def test_switchover_keeps_the_rule_and_loses_no_acknowledged_write(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, QUORUM % "required")
    psql(c.container("primary"), "CREATE TABLE ledger (id bigserial PRIMARY KEY)")
    bench = pgbench_through(c, "primary", 40)
    assert wait_for(lambda: int(psql(c.container("primary"), "SELECT count(*) FROM ledger")) > 200)

    result = pgtopo("switchover", str(c.path), "--to", "replica")
    output, _ = bench.communicate(timeout=120)
    assert result.code == 0, result
    committed = re.search(r"number of transactions actually processed: (\d+)", output)
    assert committed, output
    assert int(psql(c.container("replica"), "SELECT count(*) FROM ledger")) >= int(committed.group(1))
    assert setting(c, "replica") == RULE
    assert wait_for(lambda: sync_states(c, "replica") == {"primary": "quorum", "replica2": "quorum"}, 30)
    assert pgtopo("diff", str(c.path)).code == 0


def test_failover_guard_needs_a_reachable_quorum(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, QUORUM % "required")
    psql(c.container("primary"), "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)")
    net = f"{c.name}-net"
    subprocess.run(["docker", "network", "disconnect", net, c.container("primary")], check=True)
    subprocess.run(["docker", "network", "disconnect", net, c.container("replica")], check=True)
    c.write((QUORUM % "required").replace("primary: primary\n", "primary: replica2\n", 1))

    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1, refused
    assert "R + W > N does not hold (1 + 1 <= 2)" in refused.err and "bring replica back" in refused.err, refused
    assert psql(c.container("replica2"), "SELECT pg_is_in_recovery()") == "t"

    subprocess.run(["docker", "network", "connect", "--alias", "replica", net, c.container("replica")], check=True)
    promoted = pgtopo("apply", str(c.path), "--yes")
    assert "R + W > N (2 + 1 > 2)" in promoted.out, promoted
    assert psql(c.container("replica2"), "SELECT count(*) FROM t") == "1000"
    assert psql(c.container("replica2"), "SELECT pg_is_in_recovery()") == "f"
    # The old primary was killed off the network: WAL it wrote while cut off (a running-transactions
    # record every 15 s) is a tail no standby holds, and rewinding it is refused without the flag
    if promoted.code != 0:
        assert promoted.code == 1 and "primary: a rewind would discard" in promoted.err, promoted
        assert pgtopo("apply", str(c.path), "--yes", "--allow-data-loss").code == 0
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "t"
    assert psql(c.container("primary"), "SELECT count(*) FROM t") == "1000"
    assert pgtopo("diff", str(c.path)).code == 0


def test_preferred_lowers_to_the_standbys_that_stream_and_raises_back(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, (QUORUM % "preferred").replace("number: 1", "number: 2"))
    two, one = (f'ANY {n} ("primary", "replica", "replica2")' for n in (2, 1))
    assert setting(c, "primary") == two
    subprocess.run(["docker", "stop", c.container("replica2")], check=True, capture_output=True)

    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1, diff
    assert "only replica of the eligible standbys streams: commits wait for 1, not 2" in diff.out + diff.err, diff
    assert f"synchronous_standby_names={one}" in diff.out, diff
    # apply lowers the rule while replica2 is down, starts it, and raises the rule once it streams
    applied = pgtopo("apply", str(c.path), "--yes")
    assert applied.code == 0, applied
    assert f"synchronous_standby_names={one}" in applied.out and f"synchronous_standby_names={two}" in applied.out
    assert {node: setting(c, node) for node in ("primary", "replica", "replica2")} == dict.fromkeys(
        ("primary", "replica", "replica2"), two)
    assert wait_for(lambda: sync_states(c, "primary") == {"replica": "quorum", "replica2": "quorum"})


DELAYED = """\
primary: %s
synchronous: {method: first, number: 1}
nodes:
  primary: {}
  replica: {sync_priority: 1}
  reporting: {%s}
"""


def test_delayed_replica_replays_late_is_never_synchronous_and_never_promoted(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, DELAYED % ("primary", "delay: 3s"))
    assert setting(c, "primary") == 'FIRST 1 ("replica", "primary")'
    assert setting(c, "reporting", "recovery_min_apply_delay") == "3s"
    assert wait_for(lambda: sync_states(c, "primary") == {"replica": "sync", "reporting": "async"})
    assert ", delay 3s" in pgtopo("status", str(c.path)).out

    psql(c.container("primary"), "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    written = time.monotonic()
    seen = wait_for(lambda: psql(c.container("reporting"), "SELECT to_regclass('t') IS NOT NULL") == "t", 30)
    assert seen and time.monotonic() - written >= 2.5

    c.write(DELAYED % ("reporting", ""))
    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1 and "it is a delayed replica (recovery_min_apply_delay 3s)" in refused.err, refused

    # a switchover elsewhere: the delayed replica follows the new timeline, no rewind
    c.write(DELAYED % ("replica", "delay: 3s"))
    switched = pgtopo("apply", str(c.path), "--yes")
    assert switched.code == 0, switched
    assert "rewinds 0" in switched.out and ("rewind", "reporting") not in actions(switched.out), switched
    psql(c.container("replica"), "INSERT INTO t VALUES (2)")
    assert wait_for(lambda: psql(c.container("reporting"), "SELECT count(*) FROM t") == "2", 30)
    assert pgtopo("diff", str(c.path)).code == 0

    subprocess.run(["docker", "stop", c.container("replica")], check=True, capture_output=True)
    c.write(DELAYED % ("reporting", ""))
    failover = pgtopo("apply", str(c.path), "--yes")
    assert failover.code == 1 and "--allow-data-loss to promote it anyway" in failover.err, failover
