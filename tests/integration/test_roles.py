"""The file's roles and databases on a real cluster: made by apply, logged in with straight to the
primary and through a real PgBouncer, changed when the file changes (the password too, sent only as
a SCRAM verifier), and those pgtopo made that the file drops are reported, kept, and dropped only
with the prune flags; a role made by hand is never touched."""

from __future__ import annotations

import os
import re
import socket

import psycopg
from psycopg import sql

from .conftest import IMAGE, actions, pgtopo, psql

POOLER_IMAGE = os.environ.get("PGTOPO_POOLER_IMAGE", "pgtopo-local/pgbouncer:1")
OLD, NEW = "first-Secret-1", "s3cond secret ü"  # the new one goes through SASLprep, as the server's check does


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def topology(pooler_port: int | None = None, limit: int = 50, roles: str = "", databases: str = "") -> str:
    pooler = f"pooler:\n  image: {POOLER_IMAGE}\n  port: {pooler_port}\n" if pooler_port else ""
    return (f"primary: primary\nnodes:\n  primary: {{}}\n{pooler}"
            f"roles:\n  app: {{password: {{env: APP_PASSWORD}}, connection_limit: {limit}}}\n{roles}"
            f"databases:\n  appdb: {{owner: app}}\n{databases}")


def primary_port(c) -> int:
    url = pgtopo("url", str(c.path), "primary")
    assert url.code == 0, url
    return int(re.search(r":(\d+)/", url.out).group(1))


def login(port: int, password: str, user: str = "app", dbname: str = "appdb") -> str:
    """current_user and current_database() of a session logged in as `user`; raises when refused."""
    with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname,
                         connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT current_user || '@' || current_database()").fetchone()
        assert row is not None
        return str(row[0])


def refused(port: int, password: str) -> bool:
    try:
        login(port, password)
    except psycopg.OperationalError as exc:
        return "password authentication failed" in str(exc) or "SASL authentication failed" in str(exc)
    return False


def test_the_files_role_logs_in_through_the_pooler_and_a_new_password_replaces_the_old(make_cluster) -> None:
    c = make_cluster(IMAGE)
    pooler = free_port()
    c.write(topology(pooler))
    made = pgtopo("apply", str(c.path), "--yes", env={"APP_PASSWORD": OLD})
    assert made.code == 0, made
    assert {("create-db-role", "primary"), ("create-database", "primary")} <= set(actions(made.out)), made.out
    assert psql(c.container("primary"), "SELECT rolconnlimit, shobj_description(oid, 'pg_authid') FROM pg_roles "
                                        "WHERE rolname = 'app'") == "50|managed by pgtopo"
    assert psql(c.container("primary"), "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"
    stored = psql(c.container("primary"), "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
    assert stored.startswith("SCRAM-SHA-256$4096:")  # a verifier; the password never reached the server as text
    assert login(primary_port(c), OLD) == "app@appdb"
    assert login(pooler, OLD) == "app@appdb"  # through PgBouncer, SCRAM end to end
    assert pgtopo("diff", str(c.path), env={"APP_PASSWORD": OLD}).code == 0

    changed = pgtopo("diff", str(c.path), env={"APP_PASSWORD": NEW})
    assert changed.code == 1, changed
    assert re.search(r"^\s*~ alter-db-role\s+app: password$", changed.out, re.M), changed.out
    applied = pgtopo("apply", str(c.path), "--yes", env={"APP_PASSWORD": NEW})
    assert applied.code == 0, applied
    assert ("alter-db-role", "primary") in actions(applied.out), applied.out
    for shown in (changed.out, changed.err, applied.out, applied.err):
        assert OLD not in shown and NEW not in shown
    assert refused(pooler, OLD), "the old password still opens a session through the pooler"
    assert login(pooler, NEW) == "app@appdb"
    assert refused(primary_port(c), OLD) and login(primary_port(c), NEW) == "app@appdb"
    assert pgtopo("diff", str(c.path), env={"APP_PASSWORD": NEW}).code == 0

    c.write(topology(pooler, limit=20))
    lowered = pgtopo("diff", str(c.path), env={"APP_PASSWORD": NEW})
    assert lowered.code == 1 and re.search(r"~ alter-db-role\s+app: connection_limit 50 → 20$", lowered.out, re.M), \
        lowered.out
    assert pgtopo("apply", str(c.path), "--yes", env={"APP_PASSWORD": NEW}).code == 0
    assert psql(c.container("primary"), "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'") == "20"
    assert pgtopo("diff", str(c.path), env={"APP_PASSWORD": NEW}).code == 0


def test_what_leaves_the_file_is_reported_kept_and_dropped_only_when_pruned(make_cluster) -> None:
    c = make_cluster(IMAGE)
    env = {"APP_PASSWORD": OLD}
    c.write(topology(roles="  old: {login: false}\n", databases="  olddb: {owner: old}\n"))
    assert pgtopo("apply", str(c.path), "--yes", env=env).code == 0
    primary = c.container("primary")
    psql(primary, "CREATE ROLE alice LOGIN PASSWORD 'hand-made' CONNECTION LIMIT 3")
    psql(primary, "CREATE DATABASE handdb OWNER alice")
    hand_made = psql(primary, "SELECT rolconnlimit, rolpassword FROM pg_authid WHERE rolname = 'alice'")

    c.write(topology())
    kept = pgtopo("diff", str(c.path), env=env)
    assert kept.code == 0, kept  # nothing to do: only reported
    assert "role old was made by pgtopo and is no longer in the file" in kept.out, kept.out
    assert "database olddb was made by pgtopo and is no longer in the file" in kept.out, kept.out
    assert "alice" not in kept.out and "handdb" not in kept.out
    assert pgtopo("apply", str(c.path), "--yes", env=env).code == 0
    assert psql(primary, "SELECT count(*) FROM pg_roles WHERE rolname = 'old'") == "1"
    assert psql(primary, "SELECT count(*) FROM pg_database WHERE datname = 'olddb'") == "1"

    unasked = pgtopo("apply", str(c.path), "--prune-roles", "--prune-databases", env=env)
    assert unasked.code == 1 and "destructive" in unasked.out + unasked.err, unasked  # drops need consent: --yes
    assert psql(primary, "SELECT count(*) FROM pg_roles WHERE rolname = 'old'") == "1"
    only_dbs = pgtopo("apply", str(c.path), "--prune-databases", "--yes", env=env)
    assert only_dbs.code == 0 and ("drop-database", "primary") in actions(only_dbs.out), only_dbs
    assert psql(primary, "SELECT count(*) FROM pg_database WHERE datname = 'olddb'") == "0"
    assert psql(primary, "SELECT count(*) FROM pg_roles WHERE rolname = 'old'") == "1"
    pruned = pgtopo("apply", str(c.path), "--prune-roles", "--prune-databases", "--yes", env=env)
    assert pruned.code == 0 and ("drop-db-role", "primary") in actions(pruned.out), pruned
    assert psql(primary, "SELECT count(*) FROM pg_roles WHERE rolname = 'old'") == "0"

    assert psql(primary, "SELECT rolconnlimit, rolpassword FROM pg_authid WHERE rolname = 'alice'") == hand_made
    assert psql(primary, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'handdb'") == "alice"
    assert pgtopo("diff", str(c.path), "--prune-roles", "--prune-databases", env=env).code == 0


def test_the_password_check_agrees_with_verifiers_the_server_makes(make_cluster) -> None:
    """A verifier made by the server itself (ALTER ROLE ... PASSWORD 'text', hashed server side) is
    recognised as the file's password, SASLprep included (a soft hyphen is nothing, the Roman
    numeral nine is IX): apply leaves it alone, and sets it again only for another password."""
    c = make_cluster(IMAGE)
    c.write(topology())
    assert pgtopo("apply", str(c.path), "--yes", env={"APP_PASSWORD": "other"}).code == 0
    current = "other"
    for password in ("plain", "SASLprep: I\u00adX \u2168"):
        with psycopg.connect(host="127.0.0.1", port=primary_port(c), user="app", password=current, dbname="appdb",
                             autocommit=True) as conn:  # the role changes its own password, hashed by the server
            conn.execute(sql.SQL("ALTER ROLE app PASSWORD {}").format(sql.Literal(password)))
        current = password
        assert pgtopo("diff", str(c.path), env={"APP_PASSWORD": password}).code == 0, password
        drift = pgtopo("diff", str(c.path), env={"APP_PASSWORD": "other"})
        assert drift.code == 1 and "app: password" in drift.out, drift.out


def test_apply_refuses_before_anything_when_a_role_password_cannot_be_read(make_cluster, engine) -> None:
    c = make_cluster(IMAGE)
    c.write(topology())
    env = {"APP_PASSWORD": ""}  # empty is as unset
    planned = pgtopo("diff", str(c.path), env=env)
    assert planned.code == 1, planned  # diff plans (a CI job that plans may lack the secret), and warns
    assert "roles.app.password: environment variable APP_PASSWORD is not set" in planned.out + planned.err
    refused_apply = pgtopo("apply", str(c.path), "--yes", env=env)
    assert refused_apply.code == 2, refused_apply
    assert "roles.app.password: environment variable APP_PASSWORD is not set or empty" in refused_apply.err
    assert "nothing was changed" in refused_apply.err
    assert engine.containers.list(all=True, filters={"label": f"io.pgtopo.cluster={c.name}"}) == []
