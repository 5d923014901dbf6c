"""A promoted node's postgresql.auto.conf matches the file: after a switchover or a failover the
new primary keeps no primary_conninfo / primary_slot_name from when it was a standby, and the
cluster is converged (`diff` exits 0)."""

from __future__ import annotations

import subprocess

from .conftest import IMAGE, PAIR, actions, pgtopo, psql, wait_for


def _standby_entries(c, node: str) -> str:
    return psql(c.container(node), "SELECT current_setting('primary_conninfo') || '|' || "
                                   "current_setting('primary_slot_name')")


def _converged_on_replica(c, result) -> None:
    assert result.code == 0, result
    assert ("configure", "replica") in actions(result.out), result.out
    assert _standby_entries(c, "replica") == "|"
    assert "pgtopo_primary" in _standby_entries(c, "primary")  # the old primary now streams from it
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 0, diff


def test_after_a_switchover_the_new_primary_shows_no_upstream_and_diff_is_clean(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    assert "pgtopo_replica" in _standby_entries(c, "replica")
    _converged_on_replica(c, pgtopo("switchover", str(c.path), "--to", "replica", "--yes"))


def test_after_a_failover_the_new_primary_shows_no_upstream_and_diff_is_clean(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM pg_tables WHERE tablename='t'") == "1")
    subprocess.run(["docker", "stop", c.container("primary")], check=True, capture_output=True)
    result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert ("failover", "replica") in actions(result.out), result
    _converged_on_replica(c, result)
