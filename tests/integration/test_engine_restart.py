"""The Docker engine restarted in the middle of an apply: a clear error, then the next apply
converges and no committed row is lost.

The engine restarted is a second one (tests/engine2.py), never the one everything else on this
machine runs on: restarting that one would stop every other test's and user's containers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests import engine2

from . import conftest
from .conftest import IMAGE, Cluster, basebackups, cleanup, pgtopo, psql, remove_strays, solo_with_pgbench, wait_for

pytestmark = [
    pytest.mark.fault,
    pytest.mark.skipif(engine2.available() is not None, reason=str(engine2.available())),
]


@pytest.fixture(scope="module")
def second_engine() -> Iterator[docker.DockerClient]:
    engine2.start()
    engine2.give_image(IMAGE)
    client = engine2.client()
    yield client
    client.close()
    engine2.stop()


@pytest.fixture
def cluster_on_engine2(second_engine: docker.DockerClient, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Cluster]]:
    """make_cluster's twin on the second engine: `docker exec` and pgtopo reach it through
    DOCKER_HOST, pgtopo runs in its network namespace (where the nodes' ports are published), and
    the cluster is removed from it afterwards."""
    monkeypatch.setenv("DOCKER_HOST", engine2.HOST)
    monkeypatch.setattr(conftest, "PREFIX", engine2.netns_command([]))
    made: list[str] = []

    def make(image: str) -> Cluster:
        import secrets

        made.append("t" + secrets.token_hex(4))
        return Cluster(made[-1], image, tmp_path / f"{made[-1]}.yaml")

    yield make
    engine2.start()  # a failed test may have left it stopped
    strays = []
    for name in made:
        cleanup(second_engine, name)
        strays += remove_strays(second_engine, name)
    assert not strays, f"unlabelled objects named after the test's cluster were left: {strays}"


def test_engine_restart_during_a_clone(cluster_on_engine2) -> None:
    c = cluster_on_engine2(IMAGE)
    rows = solo_with_pgbench(c)

    c.write("primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {}\n")
    proc = subprocess.Popen(engine2.netns_command([sys.executable, "-m", "pgtopo", "apply", str(c.path)]),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert wait_for(lambda: basebackups(c) > 0, timeout=60)
    engine2.restart()
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
