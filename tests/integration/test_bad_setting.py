"""A setting a server cannot start with (issue 17: "a node that cannot start is healed from the file").

* Applied to a running cluster, it stops at the first node restarted (a replica), which is put back
  on the postgresql.auto.conf it ran with and started again, and the value is taken back out of the
  nodes configured but not restarted; apply fails with the setting and the server's own FATAL line.
* A primary created with it never starts; once the file is fixed, apply rewrites its
  postgresql.auto.conf offline and starts it.
* A node Docker keeps restarting (the primary too) is rewritten from the file and started.
"""

from __future__ import annotations

import subprocess
import time

import docker
import pytest

from pgtopo import state as cluster_state

from .conftest import IMAGE, PAIR, actions, pgtopo, psql, wait_for

TRIO = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {}\n"
BAD = "parameters:\n  shared_buffers: 900GB\n"
NO_MEMORY = "FATAL:  could not map anonymous shared memory"  # the server's own words for 900GB


def auto_conf(container: str) -> str:
    return subprocess.run(["docker", "exec", container, "cat", "/var/lib/postgresql/data/pgdata/postgresql.auto.conf"],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def streams(container: str) -> bool:
    return psql(container, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'") == "1"


def started_at(container: str) -> str:
    return psql(container, "SELECT pg_postmaster_start_time()")


def test_a_setting_no_server_can_start_with_is_put_back(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(TRIO)
    assert pgtopo("apply", str(c.path)).code == 0
    before = {node: started_at(c.container(node)) for node in ("primary", "replica2")}

    c.write(BAD + TRIO)
    planned = pgtopo("diff", str(c.path))
    assert "puts it back on the settings it runs with now (restore-conf)" in planned.out, planned
    begun = time.monotonic()
    failed = pgtopo("apply", str(c.path), "--yes")
    took = time.monotonic() - begun
    assert failed.code == 2, failed
    assert "replica: its server did not start with shared_buffers = 900GB from the file:" in failed.err, failed
    assert NO_MEMORY in failed.err, failed
    assert "put replica back on the settings it ran with before (it runs again); it took the change back out of " \
           "primary, replica2" in failed.err, failed
    assert "Traceback" not in failed.err
    assert took < 120, f"apply took {took:.0f} s to notice the crash loop and put the node back"
    assert [n for k, n in actions(failed.out) if k == "restart"] == [], failed.out  # the restart failed
    assert ("restore-conf", "replica") in actions(failed.out), failed.out

    # every node runs and streams; the replica on its old value; nobody else was restarted
    assert psql(c.container("replica"), "SHOW shared_buffers") == "128MB"
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"
    for node in ("replica", "replica2"):
        assert wait_for(lambda node=node: streams(c.container(node))), node
    assert {node: started_at(c.container(node)) for node in ("primary", "replica2")} == before
    for node in ("primary", "replica", "replica2"):
        assert "900GB" not in auto_conf(c.container(node)), node

    again = pgtopo("apply", str(c.path), "--yes")  # unchanged: the same change, the same failure
    assert again.code == 2 and NO_MEMORY in again.err, again
    assert "replica: its server did not start with shared_buffers = 900GB" in again.err, again

    c.write(TRIO)
    assert pgtopo("diff", str(c.path)).code == 0


@pytest.mark.parametrize("topology", ["pair, lowering max_connections", "one node"])
def test_a_primary_that_would_restart_first_is_never_restarted_with_a_setting_no_server_starts_with(
        make_cluster, topology: str) -> None:
    """The primary restarts first when it lowers a standby-sensitive setting, and alone in a
    cluster of one: a throw-away server of the image is started with its new settings first
    (prove-settings), and apply stops before any node is changed."""
    c = make_cluster(IMAGE)
    body = PAIR if topology.startswith("pair") else "primary: primary\nnodes:\n  primary: {}\n"
    lower = "  max_connections: 50\n" if topology.startswith("pair") else ""
    c.write(body)
    assert pgtopo("apply", str(c.path)).code == 0
    running = [n for n in ("primary", "replica") if f"{n}:" in body]
    before = {node: started_at(c.container(node)) for node in running}

    c.write(BAD + lower + body)
    planned = pgtopo("diff", str(c.path))
    assert planned.code == 1 and "~ prove-settings" in planned.out, planned
    failed = pgtopo("apply", str(c.path), "--yes")
    assert failed.code == 2, failed
    assert "primary: a server does not start with the file's settings: " + NO_MEMORY in failed.err, failed
    assert "primary was not touched, and no node was configured with them" in failed.err, failed
    assert "Traceback" not in failed.err, failed
    assert [k for k, _ in actions(failed.out)] == [], failed.out  # nothing finished: the proof failed

    # nobody was restarted, nobody was configured: every node runs as before, the primary takes writes
    assert {node: started_at(c.container(node)) for node in running} == before
    for node in running:
        assert "900GB" not in auto_conf(c.container(node)) and "'50'" not in auto_conf(c.container(node)), node
    assert psql(c.container("primary"), "SHOW max_connections") == "100"
    psql(c.container("primary"), "CREATE TABLE still_writable AS SELECT 1 AS i")
    if "replica" in running:
        assert wait_for(lambda: streams(c.container("replica")))

    c.write(("parameters:\n" + lower if lower else "") + body)  # the bad setting out: the lowering goes through, proven first
    fixed = pgtopo("apply", str(c.path), "--yes")
    assert fixed.code == 0, fixed
    if lower:
        assert actions(fixed.out)[0] == ("prove-settings", "primary"), fixed.out
        assert psql(c.container("replica"), "SHOW max_connections") == "50"
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_primary_created_with_a_setting_it_cannot_start_with_is_healed_once_the_file_is_fixed(
        make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(BAD + PAIR)
    failed = pgtopo("apply", str(c.path), "--yes")
    assert failed.code == 2 and NO_MEMORY in failed.err, failed

    c.write(PAIR)
    planned = pgtopo("diff", str(c.path))
    assert "rewrite it from the file before it starts" in planned.out, planned
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    assert ("rewrite-conf", "primary") in actions(healed.out), healed.out
    primary = c.container("primary")
    psql(primary, "CREATE TABLE heal (id int); INSERT INTO heal VALUES (1)")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM pg_tables WHERE tablename = 'heal'")
                    == "1"), "the replica does not stream the primary's writes"
    recorded = cluster_state.read_from(engine, primary)
    assert recorded is not None
    assert str(recorded.system_identifier) == psql(primary, "SELECT system_identifier FROM pg_control_system()")
    assert pgtopo("diff", str(c.path)).code == 0


@pytest.mark.parametrize("node", ["replica", "primary"])
def test_a_node_docker_keeps_restarting_is_healed_from_the_file(make_cluster, node: str) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container(node), "ALTER SYSTEM SET shared_buffers = '900GB'")  # by hand, behind pgtopo's back
    subprocess.run(["docker", "restart", c.container(node)], check=True, capture_output=True, timeout=120)

    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, healed
    assert ("rewrite-conf", node) in actions(healed.out), healed.out
    assert psql(c.container(node), "SHOW shared_buffers") == "128MB"
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"
    psql(c.container("primary"), "CREATE TABLE heal (id int)")
    assert wait_for(lambda: streams(c.container("replica")))
    assert pgtopo("diff", str(c.path)).code == 0
