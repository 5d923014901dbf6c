"""PgBouncer's admin console, through the pooler's published port: what it points at, whether it
is paused, PAUSE within a bound, RESUME, RELOAD.

Called by observe.py (facts) and pooler/run.py.  The console speaks only the simple query
protocol, hence psycopg's ClientCursor; PAUSE is sent without blocking, so a PAUSE that waits on
a long transaction is abandoned at its deadline and the pool resumed, never left paused.
Library errors become PostgresError here.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgtopo.errors import PostgresError
from pgtopo.pg_ops import HOST
from pgtopo.pooler import config

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class Console:
    """How pgtopo reaches one pooler's admin console."""

    port: int
    password: str  # the pooler role's (config.password)


def connect(console: Console, timeout: float = CONNECT_TIMEOUT) -> "psycopg.Connection":
    import psycopg

    try:
        return psycopg.connect(host=HOST, port=console.port, user=config.ROLE, password=console.password,
                               dbname="pgbouncer", autocommit=True, connect_timeout=max(1, int(timeout)),
                               cursor_factory=psycopg.ClientCursor)
    except psycopg.Error as exc:
        raise PostgresError(f"pooler: cannot reach its admin console on {HOST}:{console.port}: "
                            f"{str(exc).strip().splitlines()[-1]}") from exc


@dataclass(frozen=True)
class State:
    """What the console says."""

    host: str | None  # where the `postgres` database (and so every database) goes
    paused: bool  # paused, or pausing (a PAUSE waits for transactions to end)
    clients: int
    servers: int


def state(console: Console) -> State:
    import psycopg

    try:
        with connect(console) as conn:
            cur = conn.execute("SHOW DATABASES")
            columns = [d.name for d in cur.description or ()]
            rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
            lists: dict[str, int] = {str(k): int(v) for k, v in conn.execute("SHOW LISTS").fetchall()}
            try:  # PgBouncer 1.21 and later: a PAUSE of the whole pooler (a database's own is below)
                said: dict[str, str] = {str(k): str(v) for k, v in conn.execute("SHOW STATE").fetchall()}
                paused = said.get("paused") == "yes"
            except psycopg.Error:
                paused = False
    except psycopg.Error as exc:
        raise PostgresError(f"pooler: its admin console failed: {str(exc).strip()}") from exc
    route = next((r for r in rows if r.get("name") == "postgres"), {})
    return State(
        host=route.get("host"),
        paused=paused or bool(route.get("paused")),
        clients=max(0, int(lists.get("used_clients", 0)) - 1),  # this connection is one
        servers=int(lists.get("used_servers", 0)),
    )


def command(console: Console, *verbs: str) -> None:
    """RELOAD, RESUME (admin commands that return at once), in order, on one connection."""
    import psycopg

    with connect(console) as conn:
        for verb in verbs:
            try:
                conn.execute(verb)
            except psycopg.Error as exc:
                if verb == "RESUME" and "not paused" in str(exc):
                    continue
                raise PostgresError(f"pooler: {verb} failed: {str(exc).strip()}") from exc


def pause(console: Console, timeout: float) -> bool:
    """PAUSE, waiting at most `timeout` seconds for running transactions to end; True when the
    pool is paused.  When it is not, the pool has been resumed (the PAUSE abandoned)."""
    import psycopg

    conn = connect(console)
    try:
        pg = conn.pgconn
        pg.send_query(b"PAUSE")
        pg.flush()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([pg.socket], [], [], left)  # the console answers when PAUSE is done
            if ready:
                pg.consume_input()
                if not pg.is_busy():
                    result = pg.get_result()
                    if result is not None and result.error_message:
                        if b"already" in result.error_message:  # paused before (a killed pgtopo's PAUSE)
                            return True
                        raise PostgresError(f"pooler: PAUSE failed: {result.error_message.decode().strip()}")
                    return True
        command(console, "RESUME")
        return False
    except psycopg.Error as exc:
        raise PostgresError(f"pooler: PAUSE failed: {str(exc).strip()}") from exc
    finally:
        conn.close()
