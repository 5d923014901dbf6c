"""Security defaults, checked on a real cluster: nobody gets in without a password, nothing secret
leaks, Postgres does not run as root, ports stay on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import psycopg
import pytest

from .conftest import IMAGE, pgtopo, psql


@pytest.fixture
def pair(make_cluster, tmp_path: Path):
    c = make_cluster(IMAGE)
    c.write("primary: primary\nnodes:\n  primary: {}\n  replica: {}\n")
    c.apply_result = pgtopo("apply", str(c.path), "--log-format", "json", "-v")
    assert c.apply_result.code == 0, c.apply_result
    return c


def secret(c, name: str) -> str:
    return subprocess.run(["docker", "exec", c.container("primary"), "cat", f"/run/pgtopo/{name}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_pg_hba_has_no_trust_over_tcp_and_replication_only_for_its_role(pair) -> None:
    for node in ("primary", "replica"):
        rules = psql(pair.container(node), "SELECT type, array_to_string(database, ','), "
                                           "array_to_string(user_name, ','), coalesce(address, ''), auth_method "
                                           "FROM pg_hba_file_rules ORDER BY line_number").splitlines()
        rows = [r.split("|") for r in rules]
        assert all(r[4] == "scram-sha-256" for r in rows if r[0].startswith("host")), rows
        assert [r for r in rows if r[4] == "trust"] == [["local", "all", "all", "", "trust"]]
        replication = [r for r in rows if r[1] == "replication"]
        assert replication == [["host", "replication", "repuser", "samenet", "scram-sha-256"]]


def test_tcp_without_or_with_a_wrong_password_is_refused(pair, engine: docker.DockerClient) -> None:
    port = int(engine.containers.get(pair.container("primary")).ports["5432/tcp"][0]["HostPort"])
    for password in (None, "wrong"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                            connect_timeout=5)
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=secret(pair, "superuser_password"),
                         dbname="postgres", connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_ports_are_published_on_loopback_only(pair, engine: docker.DockerClient) -> None:
    for node in ("primary", "replica"):
        bindings = engine.containers.get(pair.container(node)).attrs["HostConfig"]["PortBindings"]["5432/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]


def test_postgres_runs_as_postgres_with_a_private_data_directory(pair, engine: docker.DockerClient) -> None:
    for node in ("primary", "replica"):
        container = engine.containers.get(pair.container(node))
        assert container.attrs["Config"]["User"] == "postgres"
        uid = subprocess.run(["docker", "exec", pair.container(node), "id", "-u", "postgres"],
                             capture_output=True, text=True).stdout.strip()
        top = container.top(ps_args="-o pid,uid")  # numeric: the host has its own user names
        uids = {row[top["Titles"].index("UID")].strip() for row in top["Processes"]}
        assert uids == {uid} and uid != "0", (uids, uid)
        mode = subprocess.run(["docker", "exec", pair.container(node), "stat", "-c", "%a %U",
                               "/var/lib/postgresql/data/pgdata"], capture_output=True, text=True).stdout.strip()
        assert mode == "700 postgres"
        secrets_mode = subprocess.run(["docker", "exec", pair.container(node), "stat", "-c", "%a %U",
                                       "/run/pgtopo/pgpass"], capture_output=True, text=True).stdout.strip()
        assert secrets_mode == "600 postgres"


def test_secrets_are_strong_and_absent_from_logs_plans_and_docker(pair, engine, tmp_path: Path) -> None:
    passwords = [secret(pair, "superuser_password"), secret(pair, "replication_password")]
    assert all(len(p) >= 24 for p in passwords) and passwords[0] != passwords[1]
    plan = tmp_path / "plan.json"
    pgtopo("diff", str(pair.path), "--out", str(plan))
    status = pgtopo("status", str(pair.path), "--output", "json")
    texts = [pair.apply_result.out, pair.apply_result.err, plan.read_text(), status.out]
    texts += [json.dumps(c.attrs) for c in engine.containers.list(all=True, filters={"name": pair.name})]
    texts += [json.dumps(v.attrs) for v in engine.volumes.list(filters={"name": pair.name})]
    for text in texts:
        for password in passwords:
            assert password not in text


def test_bind_all_interfaces_only_when_the_file_says_so_and_diff_warns(make_cluster, engine) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: solo\nnodes:\n  solo: {bind: 0.0.0.0}\n")
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1 and "warning: solo: port published on every interface" in diff.out, diff
    assert pgtopo("apply", str(c.path)).code == 0
    bindings = engine.containers.get(c.container("solo")).attrs["HostConfig"]["PortBindings"]["5432/tcp"]
    assert [b["HostIp"] for b in bindings] == ["0.0.0.0"]
    assert pgtopo("diff", str(c.path)).code == 0
