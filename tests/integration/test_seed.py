"""The seed topology (primary, replica, cascading replica2) on both images, through the real CLI.

One cluster per image for the whole module (building it is the expensive part); each test
checks what a user would check, mostly with `docker exec ... psql` as the seed article does.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import docker
import pytest

from .conftest import IMAGES, Cluster, cleanup, objects, pgtopo, psql, wait_for

SEED = """\
network: {name}_stream
primary: primary
nodes:
  primary: {{}}
  replica: {{}}
  replica2: {{upstream: replica}}
"""


@pytest.fixture(scope="module", params=IMAGES, ids=lambda image: "pg" + image.rsplit(":", 1)[-1])
def seed(request, engine: docker.DockerClient, tmp_path_factory):
    name = "s" + secrets.token_hex(4)
    cluster = Cluster(name, request.param, tmp_path_factory.mktemp(name) / "seed.yaml")
    cluster.write(SEED.format(name=name))
    started = time.monotonic()
    result = pgtopo("apply", str(cluster.path))
    cluster.apply_result = result  # type: ignore[attr-defined]
    cluster.apply_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    yield cluster
    cleanup(engine, name)


def test_apply_converges_and_replicas_stream(seed: Cluster) -> None:
    result = seed.apply_result
    assert result.code == 0, result
    assert result.out.count("clone") >= 2, result.out
    assert "every replica streams" in result.out
    # The primary streams to replica only; replica2 cascades from replica, not from the primary.
    assert psql(seed.container("primary"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica|streaming"
    assert psql(seed.container("replica"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica2|streaming"
    assert psql(seed.container("replica2"), "SELECT status, sender_host FROM pg_stat_wal_receiver") == \
        f"streaming|{seed.container('replica')}"


def test_seed_article_check_works_verbatim(seed: Cluster) -> None:
    proc = subprocess.run(["docker", "exec", seed.container("primary"), "psql", "-U", "postgres", "-x", "-c",
                           "SELECT * FROM pg_stat_replication"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"state\s+\| streaming", proc.stdout), proc.stdout


def test_row_written_on_primary_reaches_every_replica(seed: Cluster) -> None:
    token = secrets.token_hex(8)
    psql(seed.container("primary"), "CREATE TABLE IF NOT EXISTS seen (token text)")
    psql(seed.container("primary"), f"INSERT INTO seen VALUES ('{token}')")
    for node in ("replica", "replica2"):
        found = wait_for(lambda node=node: psql(seed.container(node),
                                                "SELECT count(*) FROM pg_tables WHERE tablename = 'seen'") == "1"
                         and psql(seed.container(node), f"SELECT count(*) FROM seen WHERE token = '{token}'") == "1")
        assert found, f"row not replicated to {node}"


def test_replicas_refuse_writes(seed: Cluster) -> None:
    for node in ("replica", "replica2"):
        proc = subprocess.run(["docker", "exec", seed.container(node), "psql", "-U", "postgres", "-Atc",
                               "CREATE TABLE nope (i int)"], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and "read-only" in proc.stderr, proc.stderr


def test_second_apply_does_nothing_and_diff_is_clean(seed: Cluster, engine: docker.DockerClient) -> None:
    before = {c.name: c.id for c in engine.containers.list(all=True, filters={"name": seed.name})}
    again = pgtopo("apply", str(seed.path))
    assert again.code == 0, again
    assert "nothing to do" in again.out
    after = {c.name: c.id for c in engine.containers.list(all=True, filters={"name": seed.name})}
    assert after == before
    diff = pgtopo("diff", str(seed.path))
    assert diff.code == 0, diff
    assert "in sync" in diff.out


def test_diff_reports_pending_changes_with_exit_1_and_changes_nothing(seed: Cluster, tmp_path: Path,
                                                                      engine: docker.DockerClient) -> None:
    grown = tmp_path / "grown.yaml"
    grown.write_text(seed.path.read_text() + "  replica3: {upstream: replica}\n")
    result = pgtopo("diff", str(grown))
    assert result.code == 1, result
    assert re.search(r"^replica3$", result.out, re.M), result.out
    assert re.search(r"\+ clone\s+.*pg_basebackup from replica", result.out), result.out
    assert seed.container("replica3") not in objects(engine, seed.name)["containers"]


def test_diff_on_a_broken_file_exits_2(seed: Cluster, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(seed.path.read_text().replace("primary: primary", "primary: nowhere"))
    result = pgtopo("diff", str(broken))
    assert result.code == 2, result
    assert re.search(rf"^{re.escape(str(broken))}:\d+:\d+: ", result.err, re.M), result.err


def test_status_shows_roles_upstreams_and_streaming(seed: Cluster) -> None:
    result = pgtopo("status", str(seed.path))
    assert result.code == 0, result
    rows = {line.split()[0]: line.split() for line in result.out.splitlines() if line.split()
            and line.split()[0] in ("primary", "replica", "replica2")}
    assert rows["primary"][1] == "running" and rows["primary"][2].isdigit() and rows["primary"][3] == "primary"
    assert rows["replica"][1] == "running" and rows["replica"][3:6] == ["replica", "primary", "streaming"]
    assert rows["replica2"][1] == "running" and rows["replica2"][3:6] == ["replica", "replica", "streaming"]
    assert rows["replica2"][-1] == "1"  # timeline


def test_secrets_never_appear_in_inspect_labels_env_or_output(seed: Cluster, engine: docker.DockerClient) -> None:
    password = subprocess.run(["docker", "exec", seed.container("primary"), "cat", "/run/pgtopo/superuser_password"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    replication = subprocess.run(["docker", "exec", seed.container("primary"), "cat",
                                  "/run/pgtopo/replication_password"], capture_output=True, text=True).stdout.strip()
    assert len(password) >= 24 and len(replication) >= 24
    for c in engine.containers.list(all=True, filters={"label": f"io.pgtopo.cluster={seed.name}"}):
        dumped = json.dumps(c.attrs)
        assert password not in dumped and replication not in dumped, c.name
    for text in (seed.apply_result.out, seed.apply_result.err, pgtopo("status", str(seed.path)).out):
        assert password not in text and replication not in text
