"""Declared switchover and failover on real clusters: change `primary:`, apply, lose nothing."""

from __future__ import annotations

import re
import subprocess

import docker
import pytest

from .conftest import IMAGE, OLDEST, actions, pgtopo, psql, wait_for

TRIO = """\
primary: primary
nodes:
  primary: {}     # the primary
  replica: {}
  replica2: {}
"""


def converge(c, body: str) -> None:
    c.write(body)
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result


def role_map(c, nodes=("primary", "replica", "replica2")) -> dict[str, str]:
    return {n: psql(c.container(n), "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END")
            for n in nodes}


def upstream_of(c, node: str) -> bool | str:
    """The node `node` streams from (replicas connect to the container's name, `<cluster>-<node>`)."""
    host = wait_for(lambda: psql(c.container(node), "SELECT sender_host FROM pg_stat_wal_receiver "
                                                    "WHERE status = 'streaming'"))
    return host.removeprefix(f"{c.name}-") if isinstance(host, str) else host


def pgbench_through(c, host: str, seconds: int) -> subprocess.Popen:
    """pgbench from the image, in its own container on the cluster network, inserting into ledger
    (it connects to the node's container name, which the state volume's pgpass names)."""
    script = "printf 'INSERT INTO ledger DEFAULT VALUES;\\n' > /tmp/ledger.sql && " \
             f"exec pgbench -h {c.container(host)} -U postgres -n -f /tmp/ledger.sql -c 2 -T {seconds} postgres"
    return subprocess.Popen(
        ["docker", "run", "--rm", "--label", f"io.pgtopo.cluster={c.name}", "--network", f"{c.name}-net", "-u", "postgres",
         "-v", f"{c.name}-pgtopo-state:/run/pgtopo:ro", "-e", "PGPASSFILE=/run/pgtopo/pgpass", c.image,
         "sh", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_switchover_under_pgbench_loses_no_committed_transaction(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, TRIO)
    psql(c.container("primary"), "CREATE TABLE ledger (id bigserial PRIMARY KEY)")
    bench = pgbench_through(c, "primary", 60)
    assert wait_for(lambda: int(psql(c.container("primary"), "SELECT count(*) FROM ledger")) > 200)

    result = pgtopo("switchover", str(c.path), "--to", "replica")
    output, _ = bench.communicate(timeout=120)
    assert result.code == 0, result
    assert ("switchover", "replica") in actions(result.out)
    downtime = re.search(r"write downtime ([\d.]+) s", result.out)
    assert downtime, result.out
    print(f"switchover write downtime: {downtime.group(1)} s")

    committed = re.search(r"number of transactions actually processed: (\d+)", output)
    assert committed, output
    assert int(psql(c.container("replica"), "SELECT count(*) FROM ledger")) >= int(committed.group(1))
    assert role_map(c) == {"primary": "standby", "replica": "primary", "replica2": "standby"}
    assert upstream_of(c, "primary") == "replica" and upstream_of(c, "replica2") == "replica"
    assert "primary: replica" in c.path.read_text() and "# the primary" in c.path.read_text()
    status = pgtopo("status", str(c.path))
    assert re.search(r"^replica\s+running\s+\d+\s+primary\s+-\s+-\s+-\s+2$", status.out, re.M), status.out
    assert pgtopo("diff", str(c.path)).code == 0


def test_switch_back_and_forth_three_times(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, TRIO)
    psql(c.container("primary"), "CREATE TABLE marks (n int)")
    current = "primary"
    for n, target in enumerate(["replica", "primary"] * 3):
        psql(c.container(current), f"INSERT INTO marks VALUES ({n})")
        result = pgtopo("switchover", str(c.path), "--to", target)
        assert result.code == 0, result
        others = [x for x in ("primary", "replica", "replica2") if x != target]
        for other in others:
            assert upstream_of(c, other) == target, (n, other)
        assert psql(c.container(target), "SELECT count(*) FROM marks") == str(n + 1)
        assert "rewind" not in [k for k, _ in actions(result.out)]  # a clean switchover needs none
        current = target
    assert psql(c.container("primary"), "SELECT count(DISTINCT n) FROM marks") == "6"


@pytest.mark.parametrize("image", sorted({IMAGE, OLDEST}), ids=lambda image: "pg" + image.rsplit(":", 1)[-1])
def test_failover_after_the_primary_is_removed(make_cluster, engine: docker.DockerClient, image: str) -> None:
    """On 13 the rewound old primary lacks WAL the new primary has already recycled: it is
    re-cloned in the same run (how-apply-decides 4e) instead of being waited for in vain."""
    c = make_cluster(image)
    converge(c, TRIO)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    assert wait_for(lambda: psql(c.container("replica2"), "SELECT count(*) FROM pg_tables WHERE tablename='t'") == "1")
    replicas = [c.container("replica"), c.container("replica2")]
    subprocess.run(["docker", "stop", *replicas], check=True, capture_output=True)
    psql(c.container("primary"), "INSERT INTO t VALUES (2)")  # only the old primary will ever have this
    subprocess.run(["docker", "rm", "-f", c.container("primary")], check=True, capture_output=True)
    subprocess.run(["docker", "start", *replicas], check=True, capture_output=True)
    assert all(wait_for(lambda r=r: _answers(r)) for r in replicas)

    # The old primary's volume holds a committed row nobody else has: promoting past it is refused...
    refused = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert refused.code == 1 and "primary: holds" in refused.err and "(primary: primary)" in refused.err, refused
    # ...until the user says that row may go.
    result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes", "--allow-data-loss")
    assert result.code == 0, result
    done = actions(result.out)
    assert done[0] == ("failover", "replica"), result.out
    assert ("rewind", "primary") in done, result.out
    assert role_map(c) == {"primary": "standby", "replica": "primary", "replica2": "standby"}
    assert upstream_of(c, "primary") == "replica" and upstream_of(c, "replica2") == "replica"
    assert psql(c.container("replica"), "SELECT count(*) FROM t") == "1"

    # the old primary restarted by hand comes back a standby: it never takes writes again
    subprocess.run(["docker", "restart", c.container("primary")], check=True, capture_output=True)
    assert wait_for(lambda: _answers(c.container("primary")))
    proc = subprocess.run(["docker", "exec", c.container("primary"), "psql", "-U", "postgres", "-c",
                           "INSERT INTO t VALUES (3)"], capture_output=True, text=True)
    assert proc.returncode != 0 and "read-only" in proc.stderr
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_failover_with_every_copy_equal_needs_no_consent_and_fences_the_old_primary(make_cluster) -> None:
    """The old primary's volume holds nothing the candidate lacks: a plain failover, and the old
    primary is fenced before the promotion (it can only ever start as a standby)."""
    c = make_cluster(IMAGE)
    converge(c, TRIO)
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    for r in ("replica", "replica2"):
        assert wait_for(lambda r=r: psql(c.container(r), "SELECT count(*) FROM pg_tables WHERE tablename='t'") == "1")
    subprocess.run(["docker", "stop", c.container("primary")], check=True, capture_output=True)

    result = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert result.code == 0, result
    done = actions(result.out)
    assert done[0] == ("failover", "replica") and "fence primary" in result.out, result.out
    assert ("rewind", "primary") not in done  # nothing to undo: it follows
    assert role_map(c) == {"primary": "standby", "replica": "primary", "replica2": "standby"}
    assert psql(c.container("primary"), "SELECT count(*) FROM t") == "1"


def _answers(container: str) -> bool:
    return subprocess.run(["docker", "exec", container, "pg_isready", "-q"], capture_output=True).returncode == 0


def test_refusals_change_nothing(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, "switchover: {max_lag_bytes: 1000}\n" + TRIO)
    original = c.path.read_text()

    psql(c.container("replica"), "SELECT pg_wal_replay_pause()")
    psql(c.container("primary"), "CREATE TABLE filler AS SELECT generate_series(1, 20000) AS i")
    lagging = pgtopo("switchover", str(c.path), "--to", "replica")
    assert lagging.code == 1 and "bytes behind primary" in lagging.err, lagging
    assert c.path.read_text() == original
    assert role_map(c)["primary"] == "primary"
    psql(c.container("replica"), "SELECT pg_wal_replay_resume()")

    psql(c.container("replica2"), "ALTER SYSTEM SET primary_conninfo = 'host=nowhere'")
    psql(c.container("replica2"), "SELECT pg_reload_conf()")
    assert wait_for(lambda: psql(c.container("replica2"), "SELECT count(*) FROM pg_stat_wal_receiver "
                                                          "WHERE status = 'streaming'") == "0")
    silent = pgtopo("switchover", str(c.path), "--to", "replica2")
    assert silent.code == 1 and "it is not streaming" in silent.err, silent
    assert c.path.read_text() == original
    assert role_map(c) == {"primary": "primary", "replica": "standby", "replica2": "standby"}


def test_failover_refuses_a_candidate_behind_another_replica(make_cluster) -> None:
    c = make_cluster(IMAGE)
    converge(c, TRIO)
    # replica stops receiving (not just replaying: a promotion replays all it has received)
    psql(c.container("replica"), "ALTER SYSTEM SET primary_conninfo = 'host=nowhere'")
    psql(c.container("replica"), "SELECT pg_reload_conf()")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM pg_stat_wal_receiver "
                                                         "WHERE status = 'streaming'") == "0")
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    assert wait_for(lambda: psql(c.container("replica2"), "SELECT count(*) FROM pg_tables WHERE tablename='t'") == "1")
    subprocess.run(["docker", "rm", "-f", c.container("primary")], check=True, capture_output=True)

    refused = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert refused.code == 1, refused
    assert re.search(r"replica2: holds \d+ bytes of WAL on timeline 1 that replica does not have", refused.err), refused.err
    assert "(primary: primary)" in refused.err  # the old primary's volume is the most advanced copy
    assert role_map(c, ("replica", "replica2")) == {"replica": "standby", "replica2": "standby"}

    retired = pgtopo("switchover", str(c.path), "--to", "replica", "--yes", "--force")
    assert retired.code == 2 and "--allow-data-loss" in retired.err, retired
    forced = pgtopo("switchover", str(c.path), "--to", "replica", "--yes", "--allow-data-loss")
    assert forced.code == 0, forced
    assert actions(forced.out)[0] == ("failover", "replica")
    assert role_map(c, ("replica", "replica2"))["replica"] == "primary"
    assert psql(c.container("replica"), "SELECT to_regclass('t') IS NULL") == "t"


def test_switchover_round_trip_says_what_it_changes_in_the_file(make_cluster) -> None:
    """`pgtopo switchover` to a cascaded replica prints each line it changes and that it removed the
    cascade, keeps every other line as written, and switching back does not silently put it back."""
    c = make_cluster(IMAGE)
    converge(c, "parameters: {work_mem: 8MB,   max_connections: 120}   # spacing kept\n"
                "primary: primary      # the writer\n"
                "nodes:\n  primary: {}\n  replica: {}\n  replica2: {upstream: replica, port: null}\n")
    original = c.path.read_text()

    there = pgtopo("switchover", str(c.path), "--to", "replica2", "--yes")
    assert there.code == 0, there
    assert "primary: primary → replica2" in there.out
    assert "- primary: primary      # the writer" in there.out and "+ primary: replica2      # the writer" in there.out
    assert "replica2: `upstream: replica` removed (a primary streams from no one)" in there.out
    edited = c.path.read_text()
    assert edited == original.replace("primary: primary      #", "primary: replica2      #").replace(
        "{upstream: replica, port: null}", "{port: null}")

    back = pgtopo("switchover", str(c.path), "--to", "primary", "--yes")
    assert back.code == 0, back
    assert "` removed (" not in back.out  # nothing removed this time, and nothing silently restored
    assert c.path.read_text() == original.replace("{upstream: replica, port: null}", "{port: null}")
    assert role_map(c)["primary"] == "primary" and upstream_of(c, "replica2") == "primary"
