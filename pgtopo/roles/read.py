"""Observation of the file's roles and databases on the primary: one connection, two queries.

Called by observe.py, on the file's primary (kept only while it takes writes).  Reads the roles
and databases the file names and every one pgtopo marked as its own (planning.MARK).  A role's
stored SCRAM verifier is compared here with the file's password (scram.py) and only the answer is
kept: neither the password nor the verifier leaves this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pgtopo.observed import DatabaseFacts, RoleFacts
from pgtopo.pg_ops import Endpoint, run
from pgtopo.roles import scram
from pgtopo.roles.planning import MARK
from pgtopo.spec import valid_until_text

if TYPE_CHECKING:
    import psycopg

# rolvaliduntil as text in UTC (NULL and infinity alike: no expiry), memberships by name (PostgreSQL 16
# keeps one row a grantor), the verifier (pg_authid: the superuser reads it)
ROLES_SQL = """
SELECT a.rolname, shobj_description(a.oid, 'pg_authid') IS NOT DISTINCT FROM %(mark)s,
       a.rolcanlogin, a.rolcreatedb, a.rolinherit, a.rolconnlimit,
       CASE WHEN a.rolvaliduntil IS NULL OR a.rolvaliduntil = 'infinity' THEN 'infinity'
            WHEN a.rolvaliduntil = '-infinity' THEN '-infinity'
            ELSE to_char(a.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') END,
       ARRAY(SELECT DISTINCT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = a.oid ORDER BY g.rolname),
       a.rolpassword
FROM pg_authid a
WHERE a.rolname = ANY(%(names)s) OR shobj_description(a.oid, 'pg_authid') = %(mark)s
ORDER BY a.rolname
"""

DATABASES_SQL = """
SELECT d.datname, pg_get_userbyid(d.datdba), shobj_description(d.oid, 'pg_database') IS NOT DISTINCT FROM %(mark)s,
       pg_encoding_to_char(d.encoding), d.datcollate
FROM pg_database d
WHERE d.datname = ANY(%(names)s) OR shobj_description(d.oid, 'pg_database') = %(mark)s
ORDER BY d.datname
"""


def read(ep: Endpoint, roles: list[str], databases: list[str],
         passwords: Mapping[str, str]) -> tuple[tuple[RoleFacts, ...], tuple[DatabaseFacts, ...]]:
    """The roles named in `roles` or marked as pgtopo's, each with whether its password is the
    one in `passwords` (None when `passwords` has none for it); the same for databases."""

    def query(conn: "psycopg.Connection") -> tuple[tuple[RoleFacts, ...], tuple[DatabaseFacts, ...]]:
        found = conn.execute(ROLES_SQL, {"mark": MARK, "names": roles}).fetchall()
        dbs = conn.execute(DATABASES_SQL, {"mark": MARK, "names": databases}).fetchall()
        return tuple(role_facts(row, passwords) for row in found), tuple(database_facts(row) for row in dbs)

    return run(ep, query, "read roles and databases")


def role_facts(row: tuple[Any, ...], passwords: Mapping[str, str]) -> RoleFacts:
    name, managed, login, createdb, inherit, limit, until, groups, verifier = row
    password = passwords.get(name)
    return RoleFacts(name=name, managed=bool(managed), login=bool(login), createdb=bool(createdb),
                     inherit=bool(inherit), connection_limit=int(limit), valid_until=_utc(until),
                     in_roles=tuple(groups or ()),
                     password=None if password is None else scram.matches(password, verifier))


def _utc(text: str) -> str:
    """The server's timestamp (`2030-01-01T00:00:00.000000`, UTC) as the model writes one; one
    past the year 9999 as the server wrote it (it differs from any the file can give)."""
    if text.endswith("infinity"):
        return text
    try:
        return valid_until_text(text)
    except ValueError:
        return text


def database_facts(row: tuple[Any, ...]) -> DatabaseFacts:
    name, owner, managed, encoding, locale = row
    return DatabaseFacts(name=name, owner=owner, managed=bool(managed), encoding=encoding, locale=locale)
