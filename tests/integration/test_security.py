"""Security defaults, checked on a real cluster: nobody gets in without a password, nothing secret
leaks, Postgres does not run as root, ports stay on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import psycopg
import pytest

from .conftest import IMAGE, IMAGES, actions, pgtopo, psql, wait_for


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
        assert all(r[4] in ("scram-sha-256", "reject") for r in rows if r[0].startswith("host")), rows
        assert [r for r in rows if r[4] == "trust"] == [["local", "all", "all", "", "trust"]]
        replication = [r[:3] + r[4:] for r in rows if r[1] == "replication"]  # addresses: see the test below
        assert replication == [["host", "replication", "repuser", "reject"],
                               ["host", "replication", "repuser", "scram-sha-256"]], rows


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


def _port(engine: docker.DockerClient, c, node: str) -> int:
    return int(engine.containers.get(c.container(node)).ports["5432/tcp"][0]["HostPort"])


def _can_log_in(port: int, password: str) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                             connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc), exc
        return False


def test_passwords_changed_in_the_file_are_set_and_kept(make_cluster, engine: docker.DockerClient) -> None:
    """Change both passwords in the file: diff shows it, apply sets them on the primary and in the
    state volume, the old ones stop working, replicas stream again after reconnecting."""
    c = make_cluster(IMAGE)
    su, repl = c.path.parent / f"{c.name}-su", c.path.parent / f"{c.name}-repl"
    su.write_text("first-superuser-password-0123456789\n")
    repl.write_text("first-replication-password-0123456789\n")
    c.write(f"auth:\n  superuser_password: {{file: {su.name}}}\n  replication_password: {{file: {repl.name}}}\n"
            "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    assert pgtopo("diff", str(c.path)).code == 0

    su.write_text("second-superuser-password-0123456789\n")
    repl.write_text("second-replication-password-0123456789\n")
    planned = pgtopo("diff", str(c.path))
    assert planned.code == 1 and "set-password" in planned.out, planned
    assert "second-" not in planned.out + planned.err  # a plan names the fields, never the values
    applied = pgtopo("apply", str(c.path))
    assert applied.code == 0, applied
    assert ("set-password", "primary") in actions(applied.out), applied.out
    for node in ("primary", "replica"):
        assert wait_for(lambda node=node: _can_log_in(_port(engine, c, node), "second-superuser-password-0123456789"))
        assert not _can_log_in(_port(engine, c, node), "first-superuser-password-0123456789")
    assert secret(c, "superuser_password") == "second-superuser-password-0123456789"
    assert "second-replication-password-0123456789" in secret(c, "pgpass")
    # a replica that reconnects authenticates with the new replication password from pgpass
    subprocess.run(["docker", "restart", c.container("replica")], check=True, capture_output=True, timeout=120)
    assert wait_for(lambda: psql(c.container("primary"), "SELECT state FROM pg_stat_replication") == "streaming",
                    timeout=30)
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_password_change_cut_short_is_finished_by_the_next_apply(make_cluster, engine: docker.DockerClient) -> None:
    """The server already has the file's new superuser password but the state volume still holds
    the old one (an apply killed between the two): the next apply gets in with the file's one."""
    c = make_cluster(IMAGE)
    su = c.path.parent / f"{c.name}-su"
    su.write_text("first-superuser-password-0123456789\n")
    c.write(f"auth:\n  superuser_password: {{file: {su.name}}}\nprimary: primary\nnodes:\n  primary: {{}}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "ALTER ROLE postgres PASSWORD 'second-superuser-password-0123456789'")
    su.write_text("second-superuser-password-0123456789\n")
    healed = pgtopo("apply", str(c.path))
    assert healed.code == 0, healed
    assert actions(healed.out) == [("set-password", "primary")], healed.out
    assert secret(c, "superuser_password") == "second-superuser-password-0123456789"
    assert pgtopo("diff", str(c.path)).code == 0


def test_passwords_never_reach_the_server_log(make_cluster, engine: docker.DockerClient) -> None:
    """With every statement logged, creating the cluster and changing both passwords leaves no
    password in any server's log (pgtopo sends SCRAM verifiers, never the password), and every
    session pgtopo opens has a statement timeout."""
    from pgtopo import pg_ops

    c = make_cluster(IMAGE)
    su, repl = c.path.parent / f"{c.name}-su", c.path.parent / f"{c.name}-repl"
    su.write_text("first-superuser-password-0123456789\n")
    repl.write_text("first-replication-password-0123456789\n")
    c.write(f"auth:\n  superuser_password: {{file: {su.name}}}\n  replication_password: {{file: {repl.name}}}\n"
            "parameters: {log_statement: all}\nprimary: primary\nnodes:\n  primary: {}\n  replica: {}\n")
    first = pgtopo("apply", str(c.path))
    assert first.code == 0, first
    su.write_text("second-superuser-password-0123456789\n")
    repl.write_text("second-replication-password-0123456789\n")
    second = pgtopo("apply", str(c.path))
    assert second.code == 0 and ("set-password", "primary") in actions(second.out), second
    logs = {node: engine.containers.get(c.container(node)).logs().decode(errors="replace")
            for node in ("primary", "replica")}
    for text in [*logs.values(), first.out, first.err, second.out, second.err]:
        for password in ("first-superuser", "first-replication", "second-superuser", "second-replication"):
            assert password not in text, (password, text[-3000:])
    assert "ALTER ROLE" in logs["primary"] and "SCRAM-SHA-256$" in logs["primary"], logs["primary"][-3000:]
    ep = pg_ops.Endpoint("primary", _port(engine, c, "primary"), "second-superuser-password-0123456789")
    assert pg_ops.run(ep, lambda conn: conn.execute("SHOW statement_timeout").fetchone(), "show") == ("30s",)


@pytest.mark.parametrize("image", IMAGES)
def test_replication_through_the_published_port_is_refused_while_replicas_stream(make_cluster, engine, image) -> None:
    """docker-proxy forwards the published port from the network's gateway, which `samenet`
    would admit: a replication login from the host with the right password must be refused,
    while the replicas, which reach their upstream by its container's name, stream."""
    c = make_cluster(image)
    c.write("primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {upstream: replica}\n")
    applied = pgtopo("apply", str(c.path))
    assert applied.code == 0, applied
    assert pgtopo("diff", str(c.path)).code == 0  # converged: desired and observed conninfo agree
    password = secret(c, "replication_password")
    for node in ("primary", "replica"):
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects replication connection"):
            psycopg.connect(host="127.0.0.1", port=_port(engine, c, node), user="repuser", password=password,
                            dbname="replication", replication="true", connect_timeout=5)
    assert psql(c.container("primary"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica|streaming"
    assert psql(c.container("replica"), "SELECT application_name, state FROM pg_stat_replication") == \
        "replica2|streaming"
    conninfo = psql(c.container("replica2"), "SHOW primary_conninfo")
    assert f"host={c.container('replica')} " in conninfo, conninfo
    version = int(psql(c.container("replica2"), "SHOW server_version_num"))
    assert ("require_auth=scram-sha-256" in conninfo) == (version >= 160000), conninfo  # require_auth: 16 on
    assert psql(c.container("replica2"), "SELECT sender_host FROM pg_stat_wal_receiver") == c.container("replica")
    pgpass = secret(c, "pgpass").splitlines()
    assert sorted({line.split(":")[0] for line in pgpass}) == [c.container(n) for n in
                                                               ("primary", "replica", "replica2")], pgpass
    rules = psql(c.container("replica2"), "SELECT address || '/' || netmask, auth_method FROM pg_hba_file_rules "
                                          "WHERE 'replication' = ANY(database) ORDER BY line_number").splitlines()
    gateway = engine.networks.get(f"{c.name}-net").attrs["IPAM"]["Config"][0]
    assert rules[0] == f"{gateway['Gateway']}/255.255.255.255|reject", rules
    assert rules[1].endswith("|scram-sha-256") and rules[1].split("/")[0] == gateway["Subnet"].split("/")[0], rules
