"""The harness's two Postgres users: the monitor (one-writer sweeps) and the client (acknowledged
writes).  Both connect as the superuser through each node's published port, as an application
would, and keep their connections between queries.

A query stuck on a frozen or cut-off node (docker pause, network disconnect) blocks its thread;
`Conn.unstick` shuts the socket down from another thread after a while, so nothing here hangs
for long.  Called by `harness.py` and `scenarios.py`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import psycopg

from .checker import Ack, Probe, Sweep

_conn_ids = itertools.count(1)


class Conn:
    """A persistent connection to one node's published port; reconnects after any failure."""

    def __init__(self, password: str, app: str) -> None:
        self.password, self.app = password, app
        self.conn: psycopg.Connection | None = None
        self.ident = 0
        self.port = 0
        self.busy_since: float | None = None

    def execute(self, port: int, sql: str, params: tuple[object, ...] = ()) -> tuple[int, list[tuple]]:
        """Run one statement (autocommit); returns the connection's identity and the rows."""
        if self.conn is None or self.port != port or self.conn.closed:
            self.close()
            self.conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=self.password,
                                        dbname="postgres", connect_timeout=1, autocommit=True,
                                        application_name=self.app)
            self.ident, self.port = next(_conn_ids), port
        self.busy_since = time.monotonic()
        try:
            cur = self.conn.execute(sql, params)  # type: ignore[arg-type]
            return self.ident, cur.fetchall() if cur.description else []
        except Exception:
            self.close()
            raise
        finally:
            self.busy_since = None

    def unstick(self, limit: float) -> None:
        """Shut the socket down under a query that has waited longer than `limit` seconds."""
        since, conn = self.busy_since, self.conn
        if since is None or conn is None or time.monotonic() - since < limit:
            return
        try:
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        except (OSError, psycopg.Error):
            pass

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None


class NodeProber:
    """One node's monitor connection, driven from its own thread so a stuck node stalls only itself."""

    def __init__(self, node: str, password: str, clock: Callable[[], float]) -> None:
        self.node, self.clock = node, clock
        self.conn = Conn(password, "chaos-monitor")
        self.busy = False

    def ask(self, port: int) -> Future[tuple[int, float, float, bool | None]]:
        done: Future[tuple[int, float, float, bool | None]] = Future()
        self.busy = True

        def run() -> None:
            sent = self.clock()
            try:
                ident, rows = self.conn.execute(port, "SELECT pg_is_in_recovery()")
                done.set_result((ident, sent, self.clock(), bool(rows[0][0])))
            except Exception:
                done.set_result((0, sent, self.clock(), None))
            finally:
                self.busy = False

        threading.Thread(target=run, daemon=True).start()
        return done


class Monitor:
    """Sweeps every running node every `interval` seconds (see checker.py for why two phases)."""

    def __init__(self, ports: Callable[[], dict[str, int]], password: str, clock: Callable[[], float],
                 interval: float = 0.075, answer_timeout: float = 0.4) -> None:
        self.ports_of, self.password, self.clock = ports, password, clock
        self.interval, self.answer_timeout = interval, answer_timeout
        self.sweeps: list[Sweep] = []
        self.probers: dict[str, NodeProber] = {}
        self.ports: dict[str, int] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chaos-monitor")
        self._lock = threading.Lock()

    def start(self) -> None:
        self.ports = self.ports_of()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started (not when the first apply failed)
            self._thread.join(timeout=10)

    def since(self, index: int) -> list[Sweep]:
        with self._lock:
            return self.sweeps[index:]

    def count(self) -> int:
        with self._lock:
            return len(self.sweeps)

    def _loop(self) -> None:
        last_listing = 0.0
        number = 0
        while not self._stop.is_set():
            started = time.monotonic()
            if started - last_listing > 0.5:
                try:
                    self.ports = self.ports_of()
                except Exception as exc:  # the engine restarting: keep the last listing
                    self.errors.append(f"listing failed: {exc}")
                last_listing = started
            number += 1
            sweep = self.sweep(number)
            with self._lock:
                self.sweeps.append(sweep)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def sweep(self, number: int) -> Sweep:
        ports = dict(self.ports)
        for node in ports:
            self.probers.setdefault(node, NodeProber(node, self.password, self.clock))
        for prober in self.probers.values():
            prober.conn.unstick(2.0)
        first = {n: self.probers[n].ask(p) for n, p in sorted(ports.items()) if not self.probers[n].busy}
        answers = {n: _result(f, self.answer_timeout) for n, f in first.items()}
        barrier = self.clock()
        second = {n: self.probers[n].ask(ports[n]) for n, a in answers.items()
                  if a is not None and a[3] is False and not self.probers[n].busy}
        probes = []
        for node, answer in answers.items():
            if answer is None:
                continue
            ident, sent, received, value = answer
            again = _result(second[node], self.answer_timeout) if node in second else None
            if again is not None and again[0] != ident:
                again = None  # reconnected in between: proves nothing about continuity
            probes.append(Probe(node, ident, sent, received, value, *(again[1:] if again else (None, None, None))))
        return Sweep(number, barrier, tuple(probes))


def _result(f: Future[tuple[int, float, float, bool | None]], timeout: float) -> tuple[int, float, float, bool | None] | None:
    try:
        return f.result(timeout=timeout)
    except Exception:
        return None


class Client:
    """Inserts one row at a time into chaos_ack on the node the harness believes is the primary,
    and records every id whose COMMIT returned (an acknowledged write)."""

    def __init__(self, target: Callable[[], tuple[str, int | None]], password: str, clock: Callable[[], float],
                 interval: float = 0.02) -> None:
        self.target, self.interval, self.clock = target, interval, clock
        self.conn = Conn(password, "chaos-client")
        self.acks: list[Ack] = []
        self.attempts = 0
        self.paused = threading.Event()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chaos-client")
        self._watchdog = threading.Thread(target=self._unstick, daemon=True, name="chaos-client-watchdog")

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        self.conn.unstick(0)
        if self._thread.ident is not None:  # started (not when the first apply failed)
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def write_once(self) -> Ack | None:
        """One INSERT on the current target; the Ack when its COMMIT returned."""
        node, port = self.target()
        if port is None:
            return None
        ident = next(self._ids)
        self.attempts += 1
        try:
            self.conn.execute(port, "INSERT INTO chaos_ack (id, node) VALUES (%s, %s)", (ident, node))
        except Exception:
            return None
        ack = Ack(ident, node, self.clock())
        with self._lock:
            self.acks.append(ack)
        return ack

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.paused.is_set():
                self.write_once()
            self._stop.wait(self.interval)

    def _unstick(self) -> None:
        while not self._stop.wait(0.5):
            self.conn.unstick(2.0)
