"""The file's `roles:` and `databases:`: names and values that would inject, or that name roles and
databases PostgreSQL or pgtopo keep for themselves, are refused with FILE:LINE:COL; ordinary ones
are accepted (table-driven both ways, as test_names.py does for the rest of the file)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pgtopo.spec import Topology

from .test_names import HOSTILE, accepted, problems, refused, topology

ROLE_NAME_REFUSED = [*HOSTILE, "a" * 64, "app-user", "app.user"]
ROLE_NAME_RESERVED = ["postgres", "public", "none", "all", "current_user", "session_user", "current_role", "repuser",
                      "pg_monitor", "pg_", "pgtopo", "pgtopo_pooler"]
ROLE_NAME_ACCEPTED = ["app", "_app", "a", "app_2", "a" * 63, "pgapp", "postgres2", "allusers", "pgtop"]


def with_roles(roles: dict[str, Any], databases: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return topology(roles=roles, databases=databases or {}, **fields)


@pytest.mark.parametrize("name", ROLE_NAME_REFUSED + ROLE_NAME_RESERVED)
def test_role_name_refused(name: str) -> None:
    refused(with_roles({name: {}}))


@pytest.mark.parametrize("name", ROLE_NAME_REFUSED + ["public", "all", "pgtopo_pooler", "repuser", "someone"])
def test_a_role_that_is_not_the_files_cannot_own_a_database_nor_be_a_group(name: str) -> None:
    refused(with_roles({"app": {}}, {"appdb": {"owner": name}}))
    refused(with_roles({"app": {"in_roles": [name]}}))


def test_postgres_may_own_a_database_but_no_role_of_the_file_is_its_member() -> None:
    assert accepted(with_roles({}, {"appdb": {"owner": "postgres"}})).databases["appdb"].owner == "postgres"
    refused(with_roles({"app": {"in_roles": ["postgres"]}}))


@pytest.mark.parametrize("name", ROLE_NAME_ACCEPTED)
def test_role_name_accepted(name: str) -> None:
    topo = accepted(with_roles({name: {"in_roles": ["pg_read_all_data"]}}, {"appdb": {"owner": name}}))
    assert topo.databases["appdb"].owner == name


def test_the_replication_user_of_the_file_is_reserved_whatever_its_name() -> None:
    assert accepted(with_roles({"repuser": {}}, auth={"replication_user": "streamer"})).roles
    refused(with_roles({"streamer": {}}, auth={"replication_user": "streamer"}))


@pytest.mark.parametrize("name", [*ROLE_NAME_REFUSED, "postgres", "template0", "template1"])
def test_database_name_refused(name: str) -> None:
    refused(with_roles({}, {name: {}}))


@pytest.mark.parametrize("name", ["appdb", "_x", "pgtopo_data", "pg_stuff", "a" * 63, "public", "all"])
def test_database_name_accepted(name: str) -> None:
    assert accepted(with_roles({}, {name: {}})).databases[name].owner == "postgres"


@pytest.mark.parametrize("value", [*[h for h in HOSTILE if h not in ("Pg", "PG", "pG", "1pg", "0")], "-utf8", "_utf8", "x" * 33])
def test_encoding_refused(value: str) -> None:
    refused(with_roles({}, {"appdb": {"encoding": value}}))


@pytest.mark.parametrize("value", [*[h for h in HOSTILE if h not in ("..", "Pg", "PG", "pG", "1pg", "0", "-pg", "-",
                                                                     "pg@x")], "x" * 65])
def test_locale_refused(value: str) -> None:
    refused(with_roles({}, {"appdb": {"locale": value}}))


@pytest.mark.parametrize("value", ["C", "C.UTF-8", "en_US.UTF-8", "sv_SE@euro", "POSIX"])
def test_locale_accepted(value: str) -> None:
    assert accepted(with_roles({}, {"appdb": {"locale": value, "encoding": "UTF8"}})).databases["appdb"].locale == value


@pytest.mark.parametrize("value, stored", [
    ("infinity", "infinity"),
    ("2030-01-01", "2030-01-01T00:00:00+00:00"),
    ("2030-01-01T10:00:00Z", "2030-01-01T10:00:00+00:00"),
    ("2030-01-01T10:00:00+02:00", "2030-01-01T08:00:00+00:00"),
    ("2030-01-01 10:00:00.25", "2030-01-01T10:00:00.250000+00:00"),
])
def test_valid_until_is_kept_in_utc(value: str, stored: str) -> None:
    assert accepted(with_roles({"app": {"valid_until": value}})).roles["app"].valid_until == stored


@pytest.mark.parametrize("value", ["tomorrow", "Infinity", "-infinity", "now", "2030-13-01", "2030-01-01'; --", "",
                                   "x" * 65, "2030-01-01\n"])
def test_valid_until_refused(value: str) -> None:
    refused(with_roles({"app": {"valid_until": value}}))


@pytest.mark.parametrize("limit", [-2, 2**31, True, "50"])
def test_connection_limit_refused(limit: Any) -> None:
    with pytest.raises(ValidationError):  # strict, as a saved plan's topology is read back
        Topology.model_validate(with_roles({"app": {"connection_limit": limit}}), strict=True)


HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes: {primary: {}}\n"


@pytest.mark.parametrize("text, expected", [
    pytest.param(HEAD + "roles:\n  postgres: {}\n  repuser: {}\n  pg_app: {}\n", [
        ("t.yaml:7:3: roles.postgres: role name 'postgres' is reserved (postgres, public, none, all, current_role, "
         "current_user, session_user, the replication user repuser, pg_*, pgtopo*)"),
        ("t.yaml:8:3: roles.repuser: role name 'repuser' is reserved (postgres, public, none, all, current_role, "
         "current_user, session_user, the replication user repuser, pg_*, pgtopo*)"),
        ("t.yaml:9:3: roles.pg_app: role name 'pg_app' is reserved (postgres, public, none, all, current_role, "
         "current_user, session_user, the replication user repuser, pg_*, pgtopo*)"),
    ], id="reserved-roles"),
    pytest.param(HEAD + "roles:\n  \"app; DROP ROLE postgres\": {}\n",
                 ["t.yaml:7:3: roles: key 'app; DROP ROLE postgres' must match ^[a-z_][a-z0-9_]{0,62}$"],
                 id="role-sql"),
    pytest.param(HEAD + "roles:\n  app: {in_roles: [app, pg_read_all_data, pg_read_all_data, nobody, pgtopo_pooler]}\n", [
        "t.yaml:7:20: roles.app.in_roles.0: role 'app' cannot be a member of itself",
        "t.yaml:7:43: roles.app.in_roles.2: 'pg_read_all_data' is listed twice",
        "t.yaml:7:61: roles.app.in_roles.3: 'nobody' is neither a predefined pg_* role nor a role of the file",
        "t.yaml:7:69: roles.app.in_roles.4: 'pgtopo_pooler' is neither a predefined pg_* role nor a role of the file",
    ], id="in-roles"),
    pytest.param(HEAD + "roles:\n  b: {in_roles: [c]}\n  a: {in_roles: [b]}\n  c: {in_roles: [a]}\n",
                 ["t.yaml:8:7: roles.a.in_roles: membership cycle: a -> b -> c -> a"], id="membership-cycle"),
    pytest.param(HEAD + "roles:\n  app: {connection_limit: -2, valid_until: tomorrow, password: {env: \"A B\"}}\n", [
        "t.yaml:7:27: roles.app.connection_limit: must be >= -1 (got -2)",
        ("t.yaml:7:44: roles.app.valid_until: must be an ISO 8601 timestamp (2030-01-01T00:00:00Z) or infinity "
         "(got 'tomorrow')"),
        "t.yaml:7:70: roles.app.password.env: must match ^[A-Za-z_][A-Za-z0-9_]*$ (got 'A B')",
    ], id="role-values"),
    pytest.param(HEAD + "roles:\n  app: {password: hunter2}\n",
                 ["t.yaml:7:19: roles.app.password: must be {env: ...} or {file: ...} (got 'hunter2')"],
                 id="password-written-in-the-file"),
    pytest.param(HEAD + "roles:\n  app: {}\ndatabases:\n  template1: {owner: app}\n  appdb: {owner: nobody}\n", [
        "t.yaml:9:3: databases.template1: database name 'template1' is reserved (postgres, template0, template1)",
        "t.yaml:10:11: databases.appdb.owner: owner 'nobody' is not a role of the file (nor postgres)",
    ], id="databases"),
    pytest.param(HEAD + "databases:\n  appdb: {encoding: \"UTF8' TEMPLATE x\", locale: \"C\\nfsync\"}\n", [
        "t.yaml:7:21: databases.appdb.encoding: must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ (got \"UTF8' TEMPLATE x\")",
        "t.yaml:7:49: databases.appdb.locale: must match ^[A-Za-z0-9_.@-]{1,64}$ (got 'C\\nfsync')",
    ], id="database-values"),
    pytest.param(HEAD + "roles:\n  app: {superuser: true}\n",
                 ["t.yaml:7:9: roles.app.superuser: unknown key 'superuser' (expected one of: password, login, "
                  "createdb, inherit, connection_limit, valid_until, in_roles)"], id="no-superuser"),
])
def test_exact_messages(text: str, expected: list[str]) -> None:
    assert problems(text) == expected
