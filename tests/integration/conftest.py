"""Integration fixtures: a real Docker engine, real PostgreSQL images, the real `pgtopo` CLI.

Each test cluster gets its own name; everything carrying its label is removed afterwards, even
when the test fails.  Nothing here mocks Docker or Postgres.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from pgtopo import labels as L

IMAGES = [os.environ["PGTOPO_TEST_IMAGE"]] if os.environ.get("PGTOPO_TEST_IMAGE") else [
    "pgtopo-local/postgres:13",
    "pgtopo-local/postgres:15",
    "pgtopo-local/postgres:17",
    "pgtopo-local/postgres:18",
]

IMAGE = IMAGES[-1]  # the newest image, for tests that need one image only (test_seed covers each)
OLDEST = IMAGES[0]  # the oldest, for tests of what differs there (pg_rewind 13 deletes WAL the source lacks)

# Small topologies the tests share (written after the version/cluster/image header).
SOLO = "primary: primary\nnodes:\n  primary: {}\n"
PAIR = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n"
CASCADE = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {upstream: replica}\n"


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    client = docker.from_env(timeout=120)
    client.ping()
    return client


def dangling(client: docker.DockerClient) -> set[str]:
    """Anonymous volumes no container uses (Docker names them by a random 64-digit hex id)."""
    return {v.name for v in client.volumes.list(filters={"dangling": True}) if re.fullmatch(r"[0-9a-f]{64}", v.name)}


@pytest.fixture(autouse=True)
def no_anonymous_volume_left(engine: docker.DockerClient) -> Iterator[None]:
    """Every test, its clusters removed, leaves no anonymous volume behind: an image that declares
    VOLUME (the official ones) would fill a user's disk with them, one per container pgtopo runs."""
    before = dangling(engine)
    yield
    left = dangling(engine) - before
    assert not left, f"the test left {len(left)} anonymous volume(s): {sorted(left)}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


# What the CLI runs under: nothing, or (the engine-restart test) `nsenter` into the network
# namespace of a second engine, where its published ports are.
PREFIX: list[str] = []


def pgtopo(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """Run the real CLI as a user would, in a subprocess."""
    # PGTOPO_PULL=never unless a test asks otherwise: no test may reach for a registry by mistake
    # (test_pull.py runs its own on 127.0.0.1)
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PGTOPO_PULL": "never", **(env or {})}
    proc = subprocess.run([*PREFIX, sys.executable, "-m", "pgtopo", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def psql(container: str, sql: str) -> str:
    """`docker exec <container> psql -U postgres -Atc <sql>`: the seed article's own check."""
    proc = subprocess.run(["docker", "exec", container, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                           "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def solo_with_pgbench(c: "Cluster", scale: int = 8) -> str:
    """Converge SOLO, fill it with `pgbench -i -s scale` (a clone of it takes a while); returns
    the row count of pgbench_accounts."""
    c.write(SOLO)
    assert pgtopo("apply", str(c.path)).code == 0
    subprocess.run(["docker", "exec", c.container("primary"), "pgbench", "-U", "postgres", "-i", "-s", str(scale),
                    "-q", "postgres"], check=True, capture_output=True, timeout=300)
    return psql(c.container("primary"), "SELECT count(*) FROM pgbench_accounts")


def basebackups(c: "Cluster") -> int:
    """How many pg_basebackups from the primary are under way (a replica's new container clones
    before its server starts)."""
    return int(psql(c.container("primary"), "SELECT count(*) FROM pg_stat_progress_basebackup"))


def cleanup(client: docker.DockerClient, cluster: str) -> None:
    """Remove every container, network and volume labelled with `cluster` (helpers and jobs too, and
    the tests' own containers, which carry the label), going on past an object that will not go;
    then raise the first error."""
    flt = {"label": f"{L.CLUSTER}={cluster}"}
    errors: list[Exception] = []
    steps: list[tuple[Callable[[], list[Any]], Callable[[Any], None]]] = [
        (lambda: client.containers.list(all=True, filters=flt), lambda c: c.remove(force=True)),
        (lambda: client.networks.list(filters=flt), lambda n: n.remove()),
        (lambda: client.volumes.list(filters=flt), lambda v: v.remove(force=True)),
    ]
    for listing, remove in steps:
        try:
            found = listing()
        except docker.errors.APIError as exc:
            errors.append(exc)
            continue
        for obj in found:
            try:
                remove(obj)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                errors.append(exc)
    if errors:
        raise errors[0]


def objects(client: docker.DockerClient, cluster: str) -> dict[str, list[str]]:
    flt = {"label": f"{L.CLUSTER}={cluster}"}
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=flt)),
        "networks": sorted(n.name for n in client.networks.list(filters=flt)),
        "volumes": sorted(v.name for v in client.volumes.list(filters=flt)),
    }


@dataclass
class Cluster:
    name: str
    image: str
    path: Path

    def write(self, body: str) -> Path:
        """Write a topology file: `body` is the YAML after the cluster/image header."""
        header = f"version: 1\ncluster: {self.name}\nimage: {self.image}\n"
        self.path.write_text(header + textwrap.dedent(body))
        return self.path

    def container(self, node: str) -> str:
        return f"{self.name}-{node}"


@pytest.fixture
def make_cluster(engine: docker.DockerClient, tmp_path: Path) -> Iterator[Callable[[str], Cluster]]:
    made: list[str] = []

    def make(image: str) -> Cluster:
        name = "t" + secrets.token_hex(4)
        made.append(name)
        return Cluster(name, image, tmp_path / f"{name}.yaml")

    yield make
    strays, errors = [], []
    for name in made:
        try:
            cleanup(engine, name)
        except docker.errors.APIError as exc:  # the other clusters are still cleaned up
            errors.append(exc)
        strays += remove_strays(engine, name)
    if errors:
        raise errors[0]
    # pgtopo labels everything it makes; an unlabelled object named after the cluster is a leak
    # (docker creates a missing volume, unlabelled, for a container that mounts it by name)
    assert not strays, f"unlabelled objects named after the test's cluster were left: {strays}"


def remove_strays(client: docker.DockerClient, cluster: str) -> list[str]:
    """Remove, and name, the containers and volumes called `<cluster>-…` that are not labelled."""
    found = []
    for c in client.containers.list(all=True, filters={"name": f"{cluster}-"}):
        if c.name.startswith(f"{cluster}-"):
            found.append(c.name)
            c.remove(force=True)
    for v in client.volumes.list(filters={"name": f"{cluster}-"}):
        if v.name.startswith(f"{cluster}-"):
            found.append(v.name)
            v.remove(force=True)
    return found


def actions(out: str) -> list[tuple[str, str]]:
    """(kind, node) of each action line apply printed: `+ clone   <reason>  replica · 0.70 s`."""
    found = []
    for line in out.splitlines():
        m = re.match(r"^[+~!-] (\S+)\s.*\s(\S+) · [\d.]+ s$", line)
        if m:
            found.append((m.group(1), m.group(2)))
    return found


def wait_for(check, timeout: float = 20.0):
    """Poll `check` every 50 ms until it returns something true, or the timeout; returns its last value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
