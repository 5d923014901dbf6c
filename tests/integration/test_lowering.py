"""Lowering a standby-sensitive setting converges (issue 17, reproductions 1 and 2).

A standby refuses to start with max_connections, max_worker_processes, max_wal_senders, … below
its primary's as recorded in its pg_control; apply restarts the primary first, then each standby
once it has replayed the primary's parameter change, and clones new replicas after the restarts.
"""

from __future__ import annotations

import time

import docker
import pytest

from .conftest import CASCADE, IMAGE, PAIR, actions, pgtopo, psql, wait_for

# (setting, the file's value before (None: the default), the lower value)
LOWERINGS = [("max_connections", None, "50"), ("max_worker_processes", None, "4"), ("max_wal_senders", None, "20"),
             ("max_locks_per_transaction", None, "32"), ("max_prepared_transactions", "10", "0")]


def converged_with(c, engine: docker.DockerClient, setting: str, value: str) -> None:
    """apply and diff both exit 0; every node shows `value`, every replica streams, and no
    container was restarted by Docker (a crash loop)."""
    assert pgtopo("diff", str(c.path)).code == 0
    nodes = ["primary", "replica", "replica2"]
    for node in nodes:
        assert psql(c.container(node), f"SHOW {setting}") == value, node
        assert engine.api.inspect_container(c.container(node))["RestartCount"] == 0, node
    for node in nodes[1:]:
        assert psql(c.container(node), "SELECT status FROM pg_stat_wal_receiver") == "streaming", node


@pytest.mark.parametrize(("setting", "before", "value"), LOWERINGS, ids=[s for s, _, _ in LOWERINGS])
def test_lowering_a_standby_sensitive_setting_on_a_cascade(make_cluster, engine: docker.DockerClient,
                                                           setting: str, before: str | None, value: str) -> None:
    c = make_cluster(IMAGE)
    c.write(CASCADE if before is None else f"parameters:\n  {setting}: {before}\n{CASCADE}")
    assert pgtopo("apply", str(c.path)).code == 0
    c.write(f"parameters:\n  {setting}: {value}\n{CASCADE}")
    plan = pgtopo("diff", str(c.path))
    assert "the primary first: it lowers" in plan.out and "replayed primary's WAL past" in plan.out, plan
    lowered = pgtopo("apply", str(c.path))
    assert lowered.code == 0, lowered
    assert [n for k, n in actions(lowered.out) if k == "restart"] == ["primary", "replica", "replica2"], lowered.out
    converged_with(c, engine, setting, value)


def test_lowering_and_adding_a_replica_in_one_apply(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    c.write(f"parameters:\n  max_connections: 50\n{CASCADE}")
    result = pgtopo("apply", str(c.path))
    assert result.code == 0, result
    done = actions(result.out)
    assert done.index(("restart", "replica")) < done.index(("clone", "replica2")), result.out
    converged_with(c, engine, "max_connections", "50")


def test_lowering_while_a_middle_replica_is_re_cloned_converges_in_one_apply_without_a_stall(
        make_cluster, engine: docker.DockerClient) -> None:
    """replica's data is lost while the file lowers max_connections: replica is cloned after the
    restarts, and replica2 below it is left for the next round (restarted before, it waited for WAL
    it could not get until apply gave up).  There the new copy of replica starts after replica2's
    position, so replica2 is re-cloned from it: a destructive action, hence --yes."""
    c = make_cluster(IMAGE)
    c.write(CASCADE)
    assert pgtopo("apply", str(c.path)).code == 0
    engine.containers.get(c.container("replica")).remove(force=True)
    engine.volumes.get(f"{c.name}-replica-data").remove()
    c.write(f"parameters:\n  max_connections: 50\n{CASCADE}")
    started = time.monotonic()
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result
    assert time.monotonic() - started < 90, result.out  # no 120 s wait for replay that cannot come
    converged_with(c, engine, "max_connections", "50")


@pytest.mark.parametrize("value", ["50", "100"], ids=["file-lowered", "file-reverted"])
def test_a_standby_restarted_before_it_replayed_the_change_is_recovered(make_cluster, engine: docker.DockerClient,
                                                                       value: str) -> None:
    """What an older pgtopo left (issue 17): the replica restarted with max_connections 50 before it
    replayed the primary's change, refused to start, and Docker restarts it for ever.  The next
    apply heals it, whether the file keeps 50 or goes back to 100."""
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    primary, replica = c.container("primary"), c.container("replica")
    psql(replica, "ALTER SYSTEM SET max_connections = 50")
    engine.containers.get(replica).stop()
    psql(primary, "ALTER SYSTEM SET max_connections = 50")
    engine.containers.get(primary).restart()
    engine.containers.get(replica).start()
    assert wait_for(lambda: engine.api.inspect_container(replica)["RestartCount"] > 0, timeout=60)
    c.write(f"parameters:\n  max_connections: {value}\n{PAIR}")
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert ("rewrite-conf", "replica") in actions(healed.out), healed.out
    assert pgtopo("diff", str(c.path)).code == 0
    for node in (primary, replica):
        assert psql(node, "SHOW max_connections") == value
    assert psql(replica, "SELECT status FROM pg_stat_wal_receiver") == "streaming"


def test_lowering_one_setting_and_raising_another_is_refused_then_done_in_two_applies(
        make_cluster, engine: docker.DockerClient) -> None:
    """No order of restarts lets a standby follow both: refused before anything changes, saying
    the two applies that do it; those converge."""
    c = make_cluster(IMAGE)
    c.write(CASCADE)
    assert pgtopo("apply", str(c.path)).code == 0
    started = {n: psql(c.container(n), "SELECT pg_postmaster_start_time()") for n in ("primary", "replica", "replica2")}
    c.write(f"parameters:\n  max_connections: 50\n  max_wal_senders: 60\n{CASCADE}")
    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1, refused
    assert "refusing to apply; nothing was changed" in refused.err, refused
    assert "primary: the file lowers max_connections 100 → 50 and raises max_wal_senders 40 → 60 in one apply" \
        in refused.err, refused
    assert {n: psql(c.container(n), "SELECT pg_postmaster_start_time()") for n in started} == started
    c.write(f"parameters:\n  max_connections: 100\n  max_wal_senders: 60\n{CASCADE}")  # as the refusal says
    assert pgtopo("apply", str(c.path)).code == 0
    c.write(f"parameters:\n  max_connections: 50\n  max_wal_senders: 60\n{CASCADE}")
    assert pgtopo("apply", str(c.path)).code == 0
    converged_with(c, engine, "max_connections", "50")
    assert psql(c.container("replica2"), "SHOW max_wal_senders") == "60"
