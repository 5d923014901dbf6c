"""PostgreSQL through psycopg 3: connections with bounded waits, and the commands pgtopo sends.

Called by probe.py (connections), observe.py (endpoints), execute.py (roles, slots, settings, a
clone's progress), nodes.py (waits for a server that answers, streams, replays), switch.py
(checkpoint, promotion, replay) and reconcile.py (is a replica streaming?).  Every name and value
goes through `psycopg.sql`; rows come back typed from the driver; every wait asks through
waits.wait_until.  pgtopo connects only to ports published on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pgtopo import waits
from pgtopo.errors import PostgresError
from pgtopo.timelines import lsn_int

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

T = TypeVar("T")
HOST = "127.0.0.1"

# Nothing waits forever: every session has a statement timeout (a statement that needs longer
# says so, as CHECKPOINT does), TCP keepalives and a TCP user timeout, so a server that stops
# answering ends in an error instead of a hang.
STATEMENT_TIMEOUT = 30.0
CHECKPOINT_TIMEOUT = 900.0
TCP_USER_TIMEOUT = 10.0
# A server frozen mid-statement (docker pause) never answers, and the host's kernel and docker-proxy
# keep its TCP connection alive, so neither statement_timeout nor keepalives end the wait: pgtopo's
# own deadline does.  Every statement pgtopo sends is short (CHECKPOINT and the polling waits say
# how long they may take).
ANSWER_TIMEOUT = 15.0


def session_settings(connect_timeout: float, statement_timeout: float = STATEMENT_TIMEOUT) -> dict[str, Any]:
    """libpq parameters of every session pgtopo opens."""
    return {
        "connect_timeout": max(1, int(connect_timeout)),
        # pgtopo's own commits (roles, databases, the pooler's lookup) never wait for synchronous
        # standbys: the replication role must exist before the first standby can stream
        "options": f"-c statement_timeout={int(statement_timeout * 1000)} -c synchronous_commit=local",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": int(TCP_USER_TIMEOUT * 1000),
        "application_name": "pgtopo",
    }


@dataclass(frozen=True)
class Endpoint:
    """How pgtopo reaches one server: a loopback port and the superuser password; `fallback`,
    while the superuser password changes, the other one (the server may not have the new one
    yet, or no longer the old one)."""

    node: str
    port: int
    password: str
    fallback: str | None = None
    cluster: str = ""  # names upstreams in what the server reports (labels.node_of_host)


def connect(ep: Endpoint, timeout: float = 3.0) -> "psycopg.Connection":
    import psycopg

    passwords = [ep.password] + ([ep.fallback] if ep.fallback and ep.fallback != ep.password else [])
    for n, password in enumerate(passwords):
        try:
            return psycopg.connect(
                host=HOST,
                port=ep.port,
                user="postgres",
                password=password,
                dbname="postgres",
                autocommit=True,
                **session_settings(timeout),
            )
        except psycopg.Error as exc:
            if n + 1 < len(passwords) and "password authentication failed" in str(exc):
                continue
            raise PostgresError(f"{ep.node}: cannot connect on {HOST}:{ep.port}: {_first_line(exc)}") from exc
    raise AssertionError("unreachable")


class Watchdog:
    """Shut a connection's socket down unless `disarm()` comes within `seconds`: the blocked
    read then fails at once and psycopg raises.  `fired` says that is what happened."""

    def __init__(self, conn: "psycopg.Connection", seconds: float) -> None:
        self.fired = False
        self._fd = conn.fileno()
        self._live = True
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.1, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:  # never after disarm(): the descriptor may belong to another socket by then
            if not self._live:
                return
            self.fired = True
            try:
                sock = socket.socket(fileno=os.dup(self._fd))
            except OSError:
                return
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                sock.close()

    def disarm(self) -> None:
        with self._lock:
            self._live = False
        self._timer.cancel()


def _frozen(ep: Endpoint, what: str, seconds: float) -> PostgresError:
    return PostgresError(f"{ep.node}: {what}: the server did not answer within {seconds:.0f} s (frozen, e.g. "
                         "`docker pause`, or badly overloaded)",
                         hint=f"check {ep.node}'s container (`docker ps`, `docker logs`), then apply again")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def run(ep: Endpoint, fn: Callable[["psycopg.Connection"], T], what: str, seconds: float = ANSWER_TIMEOUT) -> T:
    """Open a connection, run `fn` on it within `seconds`, close it; errors become PostgresError
    about `what`."""
    import psycopg

    conn = connect(ep)
    dog = Watchdog(conn, seconds)
    try:
        with conn:
            try:
                return fn(conn)
            finally:
                dog.disarm()
    except psycopg.Error as exc:
        if dog.fired:
            raise _frozen(ep, what, seconds) from exc
        raise PostgresError(f"{ep.node}: {what} failed: {_first_line(exc)}") from exc


def _scalar(conn: "psycopg.Connection", query: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first column of the one row `query` returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def column_lsn(value: Any) -> int | None:
    """A pg_lsn column ('16/B374D848') as an integer byte position (timelines.lsn_int); None stays None."""
    return None if value is None else lsn_int(str(value))


def create_slot(ep: Endpoint, slot: str) -> None:
    """Create a physical slot unless it exists; it reserves WAL from now on."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        exists = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("SELECT pg_create_physical_replication_slot({}, true)").format(sql.Literal(slot)))

    run(ep, go, f"create slot {slot}")


DROP_WAIT = 5.0  # how long a slot may stay active once its WAL sender was told to stop


def drop_slot(ep: Endpoint, slot: str) -> None:
    """Drop a slot no node of the file uses.  One still active belongs to a standby that left
    (removed, or repointed): its WAL sender can hold the slot until wal_sender_timeout when that
    standby died without closing its connection (docker rm -f), so it is stopped first."""
    def go(conn: "psycopg.Connection") -> None:
        deadline = time.monotonic() + DROP_WAIT
        sender: list[int | None] = [None]  # the WAL sender that held the slot last

        def dropped() -> bool | None:
            row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row is None:
                return True
            if row[0] is None:
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = %s AND NOT active", (slot,))
                if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone() is None:
                    return True
            elif time.monotonic() < deadline:
                conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            sender[0] = row[0]
            return None

        if waits.wait_until(dropped, deadline, waits.SERVER) is None:
            raise PostgresError(f"{ep.node}: slot {slot} is still in use by WAL sender {sender[0]} after "
                                f"{DROP_WAIT:.0f} s; it was not dropped")

    run(ep, go, f"drop slot {slot}")


def alter_system(ep: Endpoint, settings: dict[str, str | None]) -> list[str]:
    """ALTER SYSTEM SET (or RESET, for None) each setting, reload; returns those pending a restart."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> list[str]:
        for name, value in settings.items():
            if value is None:
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
        return pending_restart(conn, list(settings))

    return run(ep, go, "ALTER SYSTEM")


RELOAD_WAIT = 2.0  # how long a reload may take to reach the settings pending_restart reads


def pending_restart(conn: "psycopg.Connection", names: list[str]) -> list[str]:
    """Which of `names` wait for a restart; asks for up to RELOAD_WAIT seconds (waits.SERVER
    apart) since a reload is asynchronous: until one of them is pending or none is unapplied."""
    def pending() -> list[str] | None:
        unapplied = _scalar(
            conn, "SELECT count(*) FROM pg_file_settings WHERE applied IS FALSE AND error IS NULL AND name = ANY(%s)",
            (names,))
        rows = [r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart AND name = ANY(%s)", (names,))]
        return rows if rows or unapplied == 0 else None

    return waits.wait_until(pending, time.monotonic() + RELOAD_WAIT, waits.SERVER) or []


def scram_verifier(conn: "psycopg.Connection", role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of a password, computed here by libpq: the server stores it as
    it is, and the password itself never travels in SQL (so never into a server log)."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def put_role(conn: "psycopg.Connection", role: str, attributes: "sql.Composable", password: str | None,
             on_create: "sql.Composable | None" = None) -> None:
    """CREATE ROLE (with `on_create` too) or, when it exists, ALTER ROLE `role` WITH `attributes`
    (SQL that starts with a space), and PASSWORD as a scram-sha-256 verifier unless `password`
    is None."""
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    parts: list[sql.Composable] = [sql.SQL("ALTER ROLE {} WITH" if exists else "CREATE ROLE {} WITH").format(
        sql.Identifier(role))]
    if on_create is not None and not exists:
        parts.append(on_create)
    parts.append(attributes)
    if password is not None:
        parts.append(sql.SQL(" PASSWORD {}").format(sql.Literal(scram_verifier(conn, role, password))))
    conn.execute(sql.Composed(parts))


def ensure_replication_role(ep: Endpoint, role: str, password: str) -> None:
    """Create (or fix) the replication role with a scram-sha-256 password."""
    from psycopg import sql

    run(ep, lambda conn: put_role(conn, role, sql.SQL(" REPLICATION LOGIN"), password),
        f"create replication role {role}")


def set_passwords(ep: Endpoint, passwords: dict[str, str]) -> None:
    """ALTER ROLE ... PASSWORD (a scram-sha-256 verifier) for each role, in one transaction."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        with conn.transaction():
            for role, password in passwords.items():
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(conn, role, password))))

    run(ep, go, "change passwords")


def set_replication_source(ep: Endpoint, conninfo: str, slot: str) -> None:
    """Point a standby at another upstream; PostgreSQL 13+ applies this on reload."""
    alter_system(ep, {"primary_conninfo": conninfo, "primary_slot_name": slot})


WRITER = "accepts writes"  # streams_from's answer for a node that is no standby


def streams_from(ep: Endpoint, upstream: str) -> tuple[bool, str]:
    """Does the node stream from `upstream` right now?  (answer, why not)  One query: whether it
    is a standby at all, and its WAL receiver's status and upstream."""
    from pgtopo.errors import PgtopoError
    from pgtopo.labels import node_of_host

    def read(conn: "psycopg.Connection") -> tuple[Any, ...]:
        row = conn.execute("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver), "
                           "(SELECT sender_host FROM pg_stat_wal_receiver)").fetchone()
        assert row is not None  # a SELECT without FROM has one row
        return tuple(row)

    try:
        standby, status, host = run(ep, read, "read pg_stat_wal_receiver")
    except PgtopoError as exc:
        return False, exc.message
    if status is None:
        return False, "no WAL receiver" if standby else WRITER
    if status != "streaming":
        return False, f"WAL receiver is {status}"
    if node_of_host(host, ep.cluster) != upstream:
        return False, f"streams from {node_of_host(host, ep.cluster)}, not {upstream}"
    return True, "streaming"


def wait_streaming(ep: Endpoint, upstream: str, deadline: float, poll: float = waits.SERVER) -> None:
    """Wait until the node streams from `upstream` (or raise at the monotonic `deadline`; Replan at
    once when the node turns out to accept writes)."""
    from pgtopo.errors import NotConverged, Replan

    why = [""]

    def streaming() -> bool | None:
        ok, why[0] = streams_from(ep, upstream)
        if why[0] == WRITER:  # never will: its server was not seen when apply planned (cut off its network)
            raise Replan(f"{ep.node}: it accepts writes, so it will not stream from {upstream}; planning again",
                         hint="run apply again: its plan decides what to do with a writer the file calls a replica")
        return True if ok else None

    if waits.wait_until(streaming, deadline, poll) is None:
        raise NotConverged(f"{ep.node}: not streaming from {upstream} in time ({why[0]})",
                           hint=f"see `docker logs` of {ep.node}'s container")


def basebackup_progress(ep: Endpoint, application_name: str) -> tuple[str, int, int | None] | None:
    """(phase, bytes streamed, bytes total) of the base backup a client of that name takes."""
    row = run(ep, lambda c: c.execute(
        "SELECT p.phase, p.backup_streamed, p.backup_total FROM pg_stat_progress_basebackup p "
        "JOIN pg_stat_activity a USING (pid) WHERE a.application_name = %s", (application_name,)).fetchone(),
        "read pg_stat_progress_basebackup")
    return (row[0], int(row[1] or 0), int(row[2]) if row[2] is not None else None) if row else None


def checkpoint(ep: Endpoint, timeout: float = CHECKPOINT_TIMEOUT) -> None:
    """CHECKPOINT, which may take long after many writes: its own, explicit statement timeout."""
    from psycopg import sql

    def go(conn: "psycopg.Connection") -> None:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(timeout * 1000))))
        conn.execute("CHECKPOINT")

    run(ep, go, "CHECKPOINT", seconds=timeout + ANSWER_TIMEOUT)


def replay_lsn(ep: Endpoint) -> int | None:
    row = run(ep, lambda c: c.execute("SELECT pg_last_wal_replay_lsn()").fetchone(), "read the replay position")
    return column_lsn(row[0]) if row else None


def flush_lsn(ep: Endpoint) -> int:
    """How far the primary's WAL is flushed: the most a standby can receive and replay now."""
    row = run(ep, lambda c: c.execute("SELECT pg_current_wal_flush_lsn()").fetchone(), "read the flush position")
    assert row is not None
    return lsn_int(str(row[0]))


def promote(ep: Endpoint, timeout: float = 60.0, poll: float = waits.SWITCHOVER) -> None:
    """Promote a standby and wait until it accepts writes.  pg_promote(wait => true) checks only
    every 100 ms; polling pg_is_in_recovery() on the same connection notices within `poll`."""
    import psycopg

    conn = connect(ep)
    dog = Watchdog(conn, timeout + ANSWER_TIMEOUT)
    try:
        with conn:
            try:
                conn.execute("SELECT pg_promote(false)")
                promoted = waits.wait_until(lambda: None if _scalar(conn, "SELECT pg_is_in_recovery()") else True,
                                            time.monotonic() + timeout, poll)
                if promoted is None:
                    raise PostgresError(f"{ep.node}: promotion did not finish within {timeout:.0f} s",
                                        hint=f"see `docker logs` of {ep.node}'s container, then apply again")
            finally:
                dog.disarm()
    except psycopg.Error as exc:
        if dog.fired:
            raise _frozen(ep, "promote", timeout + ANSWER_TIMEOUT) from exc
        raise PostgresError(f"{ep.node}: promote failed: {_first_line(exc)}") from exc


def wait_replayed_past(ep: Endpoint, lsn: int, deadline: float, poll: float = waits.SERVER) -> int | None:
    """Wait (one connection, `poll` apart) until the standby has replayed past `lsn`; returns the
    replay position reached, or None when it did not in time or its replay is paused (by hand, or
    by PostgreSQL at a parameter change its settings are below: it will not go on by itself)."""
    import psycopg

    conn = connect(ep)
    seconds = max(0.0, deadline - time.monotonic()) + ANSWER_TIMEOUT

    def past() -> tuple[int | None] | None:
        """(position,) once past `lsn`; (None,) when replay is paused (for good: no use waiting)."""
        row = conn.execute("SELECT pg_last_wal_replay_lsn()::text, pg_is_wal_replay_paused()").fetchone()
        replayed = (column_lsn(row[0]) or 0) if row else 0
        if replayed > lsn:
            return (replayed,)
        return (None,) if row is not None and row[1] else None

    dog = Watchdog(conn, seconds)
    try:
        with conn:
            try:
                reached = waits.wait_until(past, deadline, poll)
                return None if reached is None else reached[0]
            finally:
                dog.disarm()
    except psycopg.Error as exc:
        if dog.fired:
            raise _frozen(ep, "reading the replay position", seconds) from exc
        raise PostgresError(f"{ep.node}: reading the replay position failed: {_first_line(exc)}") from exc


def wait_ready(ep: Endpoint, deadline: float, poll: float = waits.SERVER) -> None:
    """Wait until the server accepts connections (or raise at the monotonic `deadline`; it is
    asked once even when that has passed)."""
    import psycopg

    last = ["no answer"]

    def ready() -> bool | None:
        try:
            with psycopg.connect(
                host=HOST, port=ep.port, user="postgres", password=ep.password, dbname="postgres",
                **session_settings(1),
            ) as conn:
                dog = Watchdog(conn, ANSWER_TIMEOUT)
                try:
                    conn.execute("SELECT 1")
                finally:
                    dog.disarm()
                return True
        except psycopg.Error as exc:
            last[0] = _first_line(exc)
            return None

    if waits.wait_until(ready, deadline, poll) is None:
        raise PostgresError(f"{ep.node}: did not accept connections in time ({last[0]})",
                            hint="see `docker logs` of the node's container")
