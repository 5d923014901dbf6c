"""What roles/ops.py sends the primary, on a recording connection: the password only as a SCRAM
verifier, memberships exactly the file's, drops only of what carries pgtopo's mark; and the
executor reads a role's password from the file only when it must set it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from psycopg import pq, sql

from pgtopo import execute
from pgtopo.actions import Action, Kind
from pgtopo.errors import SafetyRefusal, SpecError
from pgtopo.pg_ops import Endpoint
from pgtopo.roles import ops, planning, scram
from pgtopo.spec import Database, Role

from .test_plan import topo

EP = Endpoint("primary", 5432, "superuser-secret")
SECRET = "app-secret-1"


class Recording:
    """A connection that answers each query from `answers` (by a piece of its text) and records
    every statement as the server would receive it."""

    def __init__(self, answers: dict[str, list[tuple[Any, ...]]]) -> None:
        self.answers, self.sent = answers, []
        self.pgconn = pq.PGconn.connect(b"host=/nonexistent-pgtopo-test port=1 connect_timeout=1")  # libpq, no server

    def execute(self, query: Any, params: Any = None) -> Any:
        text = query.as_string(None) if isinstance(query, sql.Composable) else query
        self.sent.append(text)
        rows = next((rows for piece, rows in self.answers.items() if piece in text), [])
        return SimpleNamespace(fetchone=lambda: rows[0] if rows else None, fetchall=lambda: rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield


def on(monkeypatch: pytest.MonkeyPatch, conn: Recording) -> None:
    def run(ep: Endpoint, fn: Callable[[Any], Any], what: str) -> Any:
        return fn(conn)

    monkeypatch.setattr(ops, "run", run)


def test_a_new_role_gets_a_verifier_never_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = Recording({})
    on(monkeypatch, conn)
    ops.ensure_role(EP, "app", Role(connection_limit=50, in_roles=("pg_read_all_data",)), SECRET)
    create, grant, comment = [s for s in conn.sent if not s.startswith("SELECT")]
    assert create.startswith('CREATE ROLE "app" WITH NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN '
                             "NOCREATEDB INHERIT CONNECTION LIMIT 50 VALID UNTIL 'infinity' PASSWORD 'SCRAM-SHA-256$")
    verifier = create.split("PASSWORD ")[1].strip("'")
    assert scram.matches(SECRET, verifier)
    assert grant == 'GRANT "pg_read_all_data" TO "app"'
    assert comment == f"COMMENT ON ROLE \"app\" IS '{planning.MARK}'"
    assert not any(SECRET in statement for statement in conn.sent)


def test_an_existing_role_is_altered_and_its_memberships_made_the_files(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = Recording({"FROM pg_roles WHERE rolname": [(1,)],
                      "FROM pg_auth_members": [("pg_monitor", "bob"), ("pg_monitor", "postgres")]})
    on(monkeypatch, conn)
    ops.ensure_role(EP, "app", Role(login=False, connection_limit=-1, valid_until="2030-01-01T00:00:00+00:00",
                                    in_roles=("pg_read_all_data",)), None)
    assert conn.sent[1] == ('ALTER ROLE "app" WITH NOLOGIN NOCREATEDB INHERIT CONNECTION LIMIT  -1 VALID UNTIL '
                            "'2030-01-01T00:00:00+00:00'")  # no password: the one in use stays
    assert [s for s in conn.sent if not s.startswith("SELECT")][1:4] == [
        'GRANT "pg_read_all_data" TO "app"', 'REVOKE "pg_monitor" FROM "app" GRANTED BY "bob"',
        'REVOKE "pg_monitor" FROM "app" GRANTED BY "postgres"']


def test_a_database_with_an_encoding_is_made_from_template0(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = Recording({})
    on(monkeypatch, conn)
    ops.ensure_database(EP, "appdb", Database(owner="app", encoding="UTF8", locale="C.UTF-8"))
    assert conn.sent[1:] == [
        "CREATE DATABASE \"appdb\" OWNER \"app\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'",
        'ALTER DATABASE "appdb" OWNER TO "app"', f"COMMENT ON DATABASE \"appdb\" IS '{planning.MARK}'"]


@pytest.mark.parametrize("drop, table", [(ops.drop_role, "pg_roles"), (ops.drop_database, "pg_database")])
def test_a_drop_checks_the_mark_again(monkeypatch: pytest.MonkeyPatch, drop: Callable[[Endpoint, str], None],
                                      table: str) -> None:
    """A saved plan says drop; meanwhile someone took it over (the comment changed): nothing is dropped."""
    conn = Recording({f"FROM {table}": [("ours now",)]})
    on(monkeypatch, conn)
    with pytest.raises(SafetyRefusal, match="does not carry pgtopo's mark"):
        drop(EP, "old")
    assert not any(s.startswith("DROP") for s in conn.sent)
    marked = Recording({f"FROM {table}": [(planning.MARK,)]})
    on(monkeypatch, marked)
    drop(EP, "old")
    assert marked.sent[-1] in ('DROP ROLE "old"', 'DROP DATABASE "old" WITH (FORCE)')


@pytest.mark.parametrize("kind, settings, reads", [
    (Kind.CREATE_DB_ROLE, (), True),
    (Kind.ALTER_DB_ROLE, ((planning.PASSWORD, None),), True),
    (Kind.ALTER_DB_ROLE, (("connection_limit", "50"),), False),
])
def test_the_executor_reads_the_password_only_to_set_it(monkeypatch: pytest.MonkeyPatch, kind: Kind,
                                                         settings: tuple[tuple[str, str | None], ...],
                                                         reads: bool) -> None:
    t = topo(roles={"app": {"password": {"env": "PGTOPO_TEST_APP_PASSWORD"}}})
    calls: list[str | None] = []
    monkeypatch.setattr(execute.roles_ops, "ensure_role", lambda ep, name, role, password: calls.append(password))
    ctx: Any = SimpleNamespace(topo=t, base_dir=Path("."), endpoint=lambda node: EP)
    action = Action(kind, "primary", "app: …", target="app", settings=settings)
    monkeypatch.delenv("PGTOPO_TEST_APP_PASSWORD", raising=False)
    if reads:
        with pytest.raises(SpecError, match="roles.app.password: environment variable PGTOPO_TEST_APP_PASSWORD"):
            execute._ensure_role(ctx, action)
    monkeypatch.setenv("PGTOPO_TEST_APP_PASSWORD", SECRET)
    execute._ensure_role(ctx, action)
    assert calls[-1] == (SECRET if reads else None)


def test_observation_keeps_whether_the_password_matches_never_the_verifier() -> None:
    from pgtopo.roles import read

    verifier = Recording({}).pgconn.encrypt_password(SECRET.encode(), b"app", b"scram-sha-256").decode()
    row = ("app", True, True, False, True, 50, "2030-01-01T10:00:00.000000", ["pg_read_all_data"], verifier)
    facts = read.role_facts(row, {"app": SECRET})
    assert facts.password is True and facts.valid_until == "2030-01-01T10:00:00+00:00"
    assert verifier not in repr(facts) and SECRET not in repr(facts)
    assert read.role_facts(row, {"app": "another"}).password is False
    assert read.role_facts(row, {}).password is None  # the file gives none, or it could not be read
    assert read.role_facts(row[:-1] + (None,), {"app": SECRET}).password is False  # no password at all
    assert read.role_facts(row[:6] + ("infinity", [], "md5" + "0" * 32), {"app": SECRET}).password is False
    assert read.role_facts(row[:6] + ("12345-01-01T00:00:00.000000",) + row[7:], {}).valid_until.startswith("12345")
