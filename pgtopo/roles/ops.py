"""The file's roles and databases made and changed on the primary, through psycopg.sql only.

Called by execute.py.  Each function is idempotent (a re-run after an interruption finds the role
or database made and finishes the job) and marks what it makes as pgtopo's (planning.MARK).
A password reaches the server only as a SCRAM verifier computed here (pg_ops.scram_verifier),
never as text in SQL.  A drop checks the mark again first: a role or database pgtopo did not make
is never dropped, whatever a saved plan says.  CREATE and DROP DATABASE run outside a transaction
(pg_ops.connect's sessions are autocommit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgtopo.errors import PostgresError, SafetyRefusal
from pgtopo.pg_ops import Endpoint, put_role, run
from pgtopo.roles.planning import MARK
from pgtopo.spec import Database, Role

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql as psql


def _attributes(role: Role) -> "psql.Composed":
    from psycopg import sql

    flags = ["LOGIN" if role.login else "NOLOGIN", "CREATEDB" if role.createdb else "NOCREATEDB",
             "INHERIT" if role.inherit else "NOINHERIT"]
    return sql.SQL(" {} CONNECTION LIMIT {} VALID UNTIL {}").format(
        sql.SQL(" ").join(sql.SQL(flag) for flag in flags), sql.Literal(role.connection_limit),
        sql.Literal(role.valid_until))


def ensure_role(ep: Endpoint, name: str, role: Role, password: str | None) -> None:
    """Make role `name` as the file says (created when missing), its memberships exactly
    `role.in_roles`, marked as pgtopo's; its password set to `password` unless that is None."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        with conn.transaction():
            put_role(conn, name, _attributes(role), password,
                     on_create=sql.SQL(" NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS"))
            _memberships(conn, name, role.in_roles)
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), sql.Literal(MARK)))

    run(ep, go, f"role {name}")


def _memberships(conn: "psycopg.Connection", name: str, wanted: tuple[str, ...]) -> None:
    """GRANT the roles it lacks; REVOKE the others, from each role that granted them (PostgreSQL 16
    keeps one grant per grantor)."""
    from psycopg import sql

    rows = conn.execute("SELECT g.rolname, pg_get_userbyid(m.grantor) FROM pg_auth_members m "
                        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
                        "WHERE r.rolname = %s ORDER BY 1, 2", (name,)).fetchall()
    have = {group for group, _ in rows}
    for group in wanted:
        if group not in have:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name)))
    for group, grantor in rows:
        if group not in wanted:
            conn.execute(sql.SQL("REVOKE {} FROM {} GRANTED BY {}").format(
                sql.Identifier(group), sql.Identifier(name), sql.Identifier(grantor)))


def ensure_database(ep: Endpoint, name: str, db: Database) -> None:
    """Make database `name` (from template0 with the file's encoding and locale, when it gives
    them) when missing; its owner the file's; marked as pgtopo's."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        ident = sql.Identifier(name)
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            options: list[psql.Composable] = [sql.SQL("OWNER {}").format(sql.Identifier(db.owner))]
            if db.encoding is not None or db.locale is not None:
                options.append(sql.SQL("TEMPLATE template0"))
            if db.encoding is not None:
                options.append(sql.SQL("ENCODING {}").format(sql.Literal(db.encoding)))
            if db.locale is not None:
                options.append(sql.SQL("LOCALE {}").format(sql.Literal(db.locale)))
            conn.execute(sql.SQL("CREATE DATABASE {} {}").format(ident, sql.SQL(" ").join(options)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, sql.Identifier(db.owner)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(MARK)))

    run(ep, go, f"database {name}")


def drop_database(ep: Endpoint, name: str) -> None:
    """DROP DATABASE, ending its connections, when it still carries pgtopo's mark."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
        if row is None:
            return
        _marked(ep, "database", name, row[0])
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    run(ep, go, f"drop database {name}")


def drop_role(ep: Endpoint, name: str) -> None:
    """DROP ROLE, when it still carries pgtopo's mark; the server refuses while it owns objects or
    holds privileges, which is said with what to do."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        row = conn.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
                           (name,)).fetchone()
        if row is None:
            return
        _marked(ep, "role", name, row[0])
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))

    try:
        run(ep, go, f"drop role {name}")
    except PostgresError as exc:
        if "depend" not in exc.message:
            raise
        raise PostgresError(exc.message, hint=f"it still owns objects or holds privileges: in each database, "
                            f"`REASSIGN OWNED BY {name} TO <another role>; DROP OWNED BY {name}`, then apply "
                            "again") from exc


def _marked(ep: Endpoint, what: str, name: str, comment: str | None) -> None:
    if comment != MARK:
        raise SafetyRefusal(f"{ep.node}: {what} {name} does not carry pgtopo's mark (its comment is not "
                            f"{MARK!r}): pgtopo drops only what it made; nothing was dropped",
                            hint="make a new plan with `pgtopo diff`")
