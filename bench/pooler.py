"""Section p of `make bench`: what a client sees through the pooler during a switchover, a
restart of the primary and an image roll, beside a client connected straight to the nodes with
`target_session_attrs=read-write` (what users do without a pooler); and the pooler's overhead on
a `SELECT 1` loop."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import psycopg

from harness import BenchError, Cluster, Settings, check_image, cluster, pgtopo, progress, sh
from report import Row, Section, Target

POOLER_IMAGE = os.environ.get("PGTOPO_POOLER_IMAGE", "pgtopo-local/pgbouncer:1")
APP_PASSWORD = "bench-app"
WRITE_INTERVAL = 0.01
SELECTS = 2000
STEPS = ("switchover", "restart of the primary", "image roll")
STALL_TARGETS = {"switchover": 0.5, "restart of the primary": 1.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _close(conn: psycopg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


class Client(threading.Thread):
    """Inserts every 10 ms through one DSN; reconnects after an error, as an application's pool does."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.acks: list[float] = []
        self.errors: list[tuple[float, str]] = []
        self.halt = threading.Event()

    def write(self, conn: psycopg.Connection) -> None:
        """One write; a subclass writes elsewhere or keeps more (bench/sync.py)."""
        conn.execute("INSERT INTO bench_pooled DEFAULT VALUES")

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                self.write(conn)
                self.acks.append(time.monotonic())
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), str(exc).strip().splitlines()[0][:120]))
                _close(conn)
                conn = None
            time.sleep(WRITE_INTERVAL)
        _close(conn)

    def window(self, start: float, end: float) -> tuple[float, int]:
        """The longest wait for an acknowledgement that overlaps [start, end], and the errors then."""
        before = [a for a in self.acks if a <= start]
        last, longest = (before[-1] if before else start), 0.0
        for at in self.acks[len(before):]:
            longest, last = max(longest, at - last), at
            if at > end:
                break
        return longest, sum(1 for at, _ in self.errors if start <= at <= end)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def _topology(c: Cluster, image: str, primary: str, ports: dict[str, int], pooler_port: int, connections: int) -> str:
    nodes = "".join(f"  {node}: {{port: {port}}}\n" for node, port in ports.items())
    return (f"version: 1\ncluster: {c.name}\nimage: {image}\nprimary: {primary}\n"
            f"parameters: {{max_connections: {connections}}}\nnodes:\n{nodes}"
            f"pooler:\n  image: {POOLER_IMAGE}\n  port: {pooler_port}\n")


def _settle(clients: list[Client]) -> None:
    """Until both clients write again (20 acknowledgements each after the step)."""
    marks = [len(c.acks) for c in clients]
    deadline = time.monotonic() + 60
    while any(len(c.acks) < m + 20 for c, m in zip(clients, marks, strict=True)):
        if time.monotonic() > deadline:
            raise BenchError("a client got no acknowledgement within 60 s after a step: "
                             + "; ".join(c.errors[-1][1] for c in clients if c.errors))
        time.sleep(0.05)


def _selects(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(SELECTS):
            conn.execute("SELECT 1")
        return time.perf_counter() - started


def pooler_section(s: Settings, workdir: Path) -> Section:
    check_image(POOLER_IMAGE)
    sec = Section("p", "Through the pooler vs straight to the nodes, a client inserting a row every 10 ms")
    roll = f"{s.image.rsplit(':', 1)[0]}:bench-roll"
    sh("docker", "tag", s.image, roll)  # the same image under another name: a roll recreates every node
    stalls: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], list[float]] = {}
    overhead: list[float] = []
    try:
        with cluster(workdir, s.image, ["replica"]) as c:
            ports = {"primary": free_port(), "replica": free_port()}
            pooler_port = free_port()
            state = {"image": s.image, "primary": "primary", "connections": 100}

            def apply() -> None:
                c.path.write_text(_topology(c, str(state["image"]), str(state["primary"]), ports, pooler_port,
                                            int(state["connections"])))
                pgtopo("apply", str(c.path), "--yes").check()

            apply()
            c.psql("primary", f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'; "
                              "CREATE TABLE bench_pooled (id bigserial PRIMARY KEY); GRANT ALL ON bench_pooled TO app; "
                              "GRANT USAGE ON SEQUENCE bench_pooled_id_seq TO app")
            app = f"dbname=postgres user=app password={APP_PASSWORD} connect_timeout=2"
            pooled = Client(f"host=127.0.0.1 port={pooler_port} {app}")
            direct = Client(f"host=127.0.0.1,127.0.0.1 port={ports['primary']},{ports['replica']} "
                            f"target_session_attrs=read-write {app}")
            for client in (pooled, direct):
                client.start()
            try:
                _settle([pooled, direct])
                for rep in range(s.switchovers):
                    for step in STEPS:
                        if step == "switchover":
                            state["primary"] = "replica" if state["primary"] == "primary" else "primary"
                        elif step == "restart of the primary":
                            state["connections"] = 110 if state["connections"] == 100 else 100
                        else:
                            state["image"] = roll if state["image"] == s.image else s.image
                        start = time.monotonic()
                        apply()
                        end = time.monotonic()
                        _settle([pooled, direct])
                        for who, client in (("pooler", pooled), ("direct", direct)):
                            stall, failed = client.window(start, end)
                            stalls.setdefault((step, who), []).append(stall)
                            errors.setdefault((step, who), []).append(float(failed))
                        progress(f"p  {rep + 1}/{s.switchovers} {step}: pooler stall "
                                 f"{stalls[(step, 'pooler')][-1]:.2f} s, {errors[(step, 'pooler')][-1]:.0f} errors; "
                                 f"direct stall {stalls[(step, 'direct')][-1]:.2f} s, "
                                 f"{errors[(step, 'direct')][-1]:.0f} errors")
            finally:
                pooled.stop()
                direct.stop()
            primary_port = ports[str(state["primary"])]
            for _ in range(3):
                overhead.append(_selects(f"host=127.0.0.1 port={pooler_port} {app}")
                                / _selects(f"host=127.0.0.1 port={primary_port} {app}"))
    finally:
        sh("docker", "rmi", roll)
    for step in STEPS:
        target = STALL_TARGETS.get(step)
        sec.rows += [
            Row(f"{step}: errors through the pooler", errors[(step, "pooler")], "errors", Target("==", 0, "max")),
            Row(f"{step}: longest stall through the pooler", stalls[(step, "pooler")], "s",
                Target("<=", target) if target else None, "1.30 s, with errors (Patroni, switchover)"
                if step == "switchover" else ""),
            Row(f"{step}: errors straight to the nodes (target_session_attrs=read-write)",
                errors[(step, "direct")], "errors"),
            Row(f"{step}: longest stall straight to the nodes", stalls[(step, "direct")], "s"),
        ]
    sec.rows.append(Row(f"`SELECT 1` × {SELECTS} on one connection: through the pooler / straight to the primary",
                        overhead, "×"))
    sec.notes.append(
        "One cluster (1+1, fixed node ports) with a pooler in transaction mode; the role `app` made by hand. Two "
        "clients insert every 10 ms at once: one through the pooler's port, one with a libpq multi-host DSN over "
        "both nodes' ports and target_session_attrs=read-write; each reconnects after an error. Per repetition: "
        "a switchover (the file's primary changed, apply), a restart of the primary (max_connections changed), "
        "an image roll (the same image under another tag: every node's container is made again). Stall: the "
        "longest wait for an acknowledgement that overlaps the apply; errors: those raised while it ran.")
    return sec
