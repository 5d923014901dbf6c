"""The Docker engine restarted in the middle of an apply: a clear error, then the next apply
converges and no committed row is lost.  Needs to control the local dockerd (root, pid file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from .conftest import IMAGE, basebackups, pgtopo, psql, solo_with_pgbench, wait_for

ROOT = Path(__file__).resolve().parents[2]
PIDFILE = Path("/var/run/docker.pid")

pytestmark = [
    pytest.mark.fault,
    pytest.mark.skipif(os.geteuid() != 0 or not PIDFILE.exists(),
                       reason="restarting the engine needs root and a local dockerd (the CI machines have both)"),
]


def restart_engine() -> None:
    from tests.chaos.engine import restart_engine as restart

    assert restart() == "done"


def test_engine_restart_during_a_clone(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    rows = solo_with_pgbench(c)

    c.write("primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {}\n")
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "apply", str(c.path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert wait_for(lambda: basebackups(c) > 0, timeout=60)
    restart_engine()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (out, err)
    assert err.startswith("error: ") and "Traceback" not in err, err

    assert wait_for(lambda: subprocess.run(["docker", "exec", c.container("primary"), "pg_isready", "-q"],
                                           capture_output=True).returncode == 0, timeout=60)
    again = pgtopo("apply", str(c.path))
    assert again.code == 0, again
    for node in ("primary", "replica", "replica2"):
        assert psql(c.container(node), "SELECT count(*) FROM pgbench_accounts") == rows
    assert pgtopo("diff", str(c.path)).code == 0
