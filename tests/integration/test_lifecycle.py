"""Create, heal, lock, refuse and destroy, each on its own small cluster (one image is enough here;
test_seed covers both)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import docker
import pytest

from pgtopo import docker_ops, lock
from pgtopo.errors import LockTimeout

from .conftest import IMAGE, PAIR, actions, objects, pgtopo, psql


def test_destroy_keeps_volumes_then_apply_reuses_the_data(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE kept AS SELECT 42 AS answer")

    gone = pgtopo("destroy", str(c.path), "--yes")
    assert gone.code == 0, gone
    left = objects(engine, c.name)
    assert left["containers"] == [] and left["networks"] == []
    assert f"{c.name}-primary-data" in left["volumes"] and f"{c.name}-replica-data" in left["volumes"]

    back = pgtopo("apply", str(c.path))
    assert back.code == 0, back
    assert actions(back.out) == [("create-network", "cluster"), ("create", "primary"), ("create", "replica")], back.out
    assert psql(c.container("primary"), "SELECT answer FROM kept") == "42"
    assert psql(c.container("replica"), "SELECT answer FROM kept") == "42"

    purge = pgtopo("destroy", str(c.path), "--yes", "--volumes")
    assert purge.code == 0, purge
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}


def test_destroy_without_yes_off_a_terminal_removes_nothing(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: solo\nnodes:\n  solo: {}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    result = pgtopo("destroy", str(c.path))
    assert result.code == 1 and "--yes" in result.err, result
    assert objects(engine, c.name)["containers"] == [c.container("solo")]


def test_removed_replica_container_is_recreated_without_a_clone(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    subprocess.run(["docker", "rm", "-f", c.container("replica")], check=True, capture_output=True)
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "starting on the existing data volume" in diff.out, diff
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("create", "replica")], healed.out
    assert psql(c.container("primary"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica|streaming"


def test_broken_file_creates_nothing(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: primary\nnodes:\n  primary: {}\n  a: {upstream: b}\n  b: {upstream: a}\n")
    result = pgtopo("apply", str(c.path))
    assert result.code == 2, result
    assert "upstream cycle" in result.err and f"{c.path}:" in result.err
    assert "Traceback" not in result.err
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}


def test_unlabelled_lookalike_is_refused_and_nothing_changes(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    engine.containers.create(IMAGE, ["true"], name=c.container("primary"))
    try:
        result = pgtopo("apply", str(c.path))
        assert result.code == 1, result
        assert f"container {c.container('primary')} exists but was not made by pgtopo" in result.err
        assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}
        assert engine.containers.get(c.container("primary")).labels == {}
    finally:
        engine.containers.get(c.container("primary")).remove(force=True)


def test_a_second_apply_waits_for_the_lock(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: solo\nnodes:\n  solo: {}\n")
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with lock.cluster_lock(docker_ops.connect(), c.name, IMAGE, timeout=10):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        blocked = pgtopo("apply", str(c.path), "--lock-timeout", "1")
        assert blocked.code == 1 and "holds the lock" in blocked.err, blocked
        assert objects(engine, c.name)["containers"] == [f"{c.name}-pgtopo-lock"]
    finally:
        release.set()
        holder.join()
    assert pgtopo("apply", str(c.path)).code == 0


def test_lock_dies_with_its_holder(make_cluster, engine: docker.DockerClient) -> None:
    """kill -9 of the holder releases the lock: the engine closes its stdin and removes it."""
    c = make_cluster(IMAGE)
    code = (f"from pgtopo import docker_ops, lock\nimport time\n"
            f"with lock.cluster_lock(docker_ops.connect(), {c.name!r}, {IMAGE!r}, 10) as held:\n"
            f"    held.confirm(); print('held', flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert objects(engine, c.name)["containers"] == [f"{c.name}-pgtopo-lock"]
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while objects(engine, c.name)["containers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert objects(engine, c.name)["containers"] == []


def test_a_lock_never_started_is_stale_after_a_while(make_cluster, engine: docker.DockerClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A holder killed between creating its lock and starting it leaves a created-only lock:
    the next apply removes it once it is STALE_CREATED seconds old, and not before."""
    c = make_cluster(IMAGE)
    name = f"{c.name}-pgtopo-lock"
    engine.containers.create(IMAGE, ["sh", "-c", "cat >/dev/null"], name=name, stdin_open=True,
                             labels={"io.pgtopo.cluster": c.name, "io.pgtopo.role": "lock"})
    monkeypatch.setattr(lock, "STALE_CREATED", 2.0)
    with pytest.raises(LockTimeout), lock.cluster_lock(docker_ops.connect(), c.name, IMAGE, timeout=0.5):
        pass
    assert objects(engine, c.name)["containers"] == [name]
    time.sleep(2.5)
    with lock.cluster_lock(docker_ops.connect(), c.name, IMAGE, timeout=5) as held:
        held.confirm()
        assert engine.containers.get(name).status == "running"
    assert objects(engine, c.name)["containers"] == []


@pytest.mark.parametrize("variant", ["params"])
def test_parameters_apply_and_change(make_cluster, variant: str) -> None:
    c = make_cluster(IMAGE)
    c.write("parameters:\n  work_mem: 8MB\nprimary: primary\nnodes:\n  primary: {}\n"
            "  replica: {parameters: {work_mem: 16MB}}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    assert psql(c.container("primary"), "SHOW work_mem") == "8MB"
    assert psql(c.container("replica"), "SHOW work_mem") == "16MB"
    c.write("parameters:\n  work_mem: 4MB\n  max_connections: 120\nprimary: primary\nnodes:\n  primary: {}\n"
            "  replica: {}\n")
    changed = pgtopo("apply", str(c.path))
    assert changed.code == 0, changed
    done = actions(changed.out)
    assert ("configure", "primary") in done and ("restart", "primary") in done, changed.out
    assert done.index(("restart", "replica")) < done.index(("restart", "primary")), changed.out
    for node in ("primary", "replica"):
        assert psql(c.container(node), "SHOW work_mem") == "4MB"
        assert psql(c.container(node), "SHOW max_connections") == "120"
    assert pgtopo("diff", str(c.path)).code == 0


def test_missing_image_is_refused_before_anything(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster("pgtopo-local/does-not-exist:1")
    c.write("primary: solo\nnodes:\n  solo: {}\n")
    result = pgtopo("apply", str(c.path))
    assert result.code == 1 and "--pull never forbids pulling it" in result.err, result
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}
