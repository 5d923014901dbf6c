"""kill -9 of pgtopo in the middle of its work: the next apply finishes the job and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker
import pytest

from .conftest import IMAGE, PAIR, basebackups, objects, pgtopo, psql, solo_with_pgbench, wait_for


def start_apply(path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pgtopo", "apply", str(path), "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, condition, timeout: float = 60.0) -> None:
    """SIGKILL the apply as soon as `condition()` holds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if condition():
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        assert proc.poll() is None or proc.returncode == -signal.SIGKILL, "apply ended before it could be killed"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_kill_during_basebackup_then_apply_finishes(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    rows = solo_with_pgbench(c)

    c.write(PAIR)
    proc = start_apply(c.path)
    kill_when(proc, lambda: basebackups(c) == 1)
    assert proc.returncode == -signal.SIGKILL

    again = pgtopo("apply", str(c.path), "--yes")
    assert again.code == 0, again
    assert objects(engine, c.name)["containers"] == sorted([c.container("primary"), c.container("replica")])
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM pgbench_accounts") == rows)
    assert psql(c.container("primary"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica|streaming"
    assert pgtopo("diff", str(c.path)).code == 0


def test_kill_during_restart_then_apply_finishes(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 10000) AS i")

    c.write("parameters: {max_connections: 150}\n" + PAIR)
    proc = start_apply(c.path)

    def a_node_is_down() -> bool:
        states = {ct.name: ct.status for ct in engine.containers.list(all=True, filters={"name": c.name})}
        return any(states.get(c.container(n)) not in (None, "running") for n in ("primary", "replica"))

    kill_when(proc, a_node_is_down)
    assert proc.returncode == -signal.SIGKILL

    again = pgtopo("apply", str(c.path), "--yes")
    assert again.code == 0, again
    for node in ("primary", "replica"):
        assert psql(c.container(node), "SHOW max_connections") == "150"
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM t") == "10000")
    assert psql(c.container("primary"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica|streaming"
    assert pgtopo("diff", str(c.path)).code == 0


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_exit_130_and_143_and_release_the_lock(make_cluster, engine: docker.DockerClient,
                                                                   signum: int, code: int) -> None:
    """A cancelled CI job (SIGTERM) or a Ctrl-C mid-clone: the documented exit code, one line that
    says what to do, the lock and helper containers gone, and the next apply finishes the job."""
    c = make_cluster(IMAGE)
    solo_with_pgbench(c, scale=24)  # a clone of several seconds: the signal lands while it runs
    c.write(PAIR)
    # as from a terminal: a test run started as a background job inherits SIGINT ignored (a shell
    # without job control does that to `&` commands), and so would this apply
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "apply", str(c.path), "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert wait_for(lambda: basebackups(c) == 1 or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, "apply ended before the clone could be interrupted"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "interrupted; run apply again" in err and "Traceback" not in err
    left = [ct.name for ct in engine.containers.list(all=True, filters={"label": f"io.pgtopo.cluster={c.name}"})]
    assert set(left) <= {c.container("primary"), c.container("replica")}, left  # no lock, helper or job left

    again = pgtopo("apply", str(c.path), "--yes")
    assert again.code == 0, again
    assert pgtopo("diff", str(c.path)).code == 0
