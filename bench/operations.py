"""Sections c, d, e and f: no-op diff and apply, healing a replica (container, then container and
volume), a switchover under a writing client, and the CLI's start-up."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import psycopg

from harness import (
    CLUSTER_LABEL,
    HEAL_POLL,
    PG_PORT,
    ROOT,
    WRITE_INTERVAL,
    BenchError,
    Child,
    CliRun,
    Cluster,
    Settings,
    cluster,
    converge,
    pgtopo,
    progress,
    replica_names,
    sh,
)
from report import Row, Section, Target, breakdown, breakdown_table, steps

# ---------------------------------------------------------------------------------------------
# c: no-op


def noop_section(s: Settings, workdir: Path) -> Section:
    sec = Section("c", f"No-op on a converged 1+{s.noop_replicas} cluster")
    with cluster(workdir, s.image, replica_names(s.noop_replicas)) as c:
        converge(c)
        diffs, applies = [], []
        for i in range(s.noop_runs):
            diffs.append(pgtopo("diff", str(c.path)).check())
            applies.append(pgtopo("apply", str(c.path)).check())
            if "nothing to do" not in applies[-1].out:
                raise BenchError(f"a no-op apply did something:\n{applies[-1].out}")
            progress(f"c  run {i + 1}/{s.noop_runs}: diff {diffs[-1].seconds:.2f} s, "
                     f"apply {applies[-1].seconds:.2f} s")
    for label, runs in (("pgtopo diff", diffs), ("pgtopo apply", applies)):
        sec.rows.append(Row(label, [r.seconds for r in runs], "s", Target("<", 0.6), rss_mb=[r.rss_mb for r in runs]))
        sec.rows.append(Row(f"{label}: peak RSS", [r.rss_mb for r in runs], "MB"))
    return sec


# ---------------------------------------------------------------------------------------------
# d: heal


class Watcher:
    """One psycopg connection to the primary's published port, polled every 20 ms."""

    def __init__(self, c: Cluster, node: str) -> None:
        self.conn = c.connect(node)

    def rows(self, app: str) -> list[str]:
        sql = "SELECT state FROM pg_stat_replication WHERE application_name = %s"
        return [r[0] for r in self.conn.execute(sql, (app,)).fetchall()]

    def until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `check` every 20 ms; the monotonic time at which it first held."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(HEAL_POLL)
        return time.monotonic()

    def caught_up(self, count: int) -> bool:
        sql = ("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
               "AND replay_lsn >= pg_current_wal_lsn()")
        return self.conn.execute(sql).fetchone()[0] >= count


def load_pgbench(c: Cluster, scale: int) -> float:
    """`pgbench -i -s SCALE` inside the primary's container; returns the database size in MB."""
    sh("docker", "exec", c.container("primary"), "pgbench", "-i", "-q", "-s", str(scale), "-U", "postgres",
       "postgres", timeout=900)
    return int(c.psql("primary", "SELECT pg_database_size('postgres')")) / 1e6


def heal_once(c: Cluster, w: Watcher, node: str, drop_volume: bool) -> tuple[float, CliRun]:
    """Remove the replica's container (and volume); seconds from the start of `pgtopo apply` to
    the primary showing it streaming again, and the apply run itself (`run.streaming_at`: that
    moment on the wall clock)."""
    sh("docker", "rm", "-f", c.container(node))
    if drop_volume:
        sh("docker", "volume", "rm", c.volume(node))
    w.until(lambda: not w.rows(node), 90, f"the primary to drop {node}'s old WAL sender")
    child = Child(["apply", str(c.path), "--yes", "--log-format", "json"])
    seen = w.until(lambda: "streaming" in w.rows(node), 300, f"{node} to stream again")
    run = child.finish().check()
    run.streaming_at = child.wall0 + (seen - child.t0)
    return seen - child.t0, run


def since_container(run: CliRun, node: str) -> float:
    """Seconds from the start of the action that creates the node's container (`create`, or
    `clone`, whose new container clones and then starts its server) to streaming: the moment
    Patroni's figures count from (`docker run`)."""
    starts = [st.start for st in steps(run) if st.node == node and st.kind in ("create", "clone")]
    if not starts or run.streaming_at is None:
        raise BenchError(f"no create or clone action of {node} in the apply's JSON log")
    return run.streaming_at - min(starts)


def heal_section(s: Settings, workdir: Path) -> Section:
    sec = Section("d", f"Heal a 1+2 cluster holding `pgbench -i -s {s.heal_scale}`")
    with cluster(workdir, s.image, ["replica1", "replica2"]) as c:
        converge(c)
        size_mb = load_pgbench(c, s.heal_scale)
        w = Watcher(c, "primary")
        w.until(lambda: w.caught_up(2), 300, "both replicas to replay the pgbench data")
        recreate, reclone = [], []
        for rep in range(s.reps):
            recreate.append(heal_once(c, w, "replica1", drop_volume=False))
            reclone.append(heal_once(c, w, "replica1", drop_volume=True))
            progress(f"d  rep {rep + 1}/{s.reps}: recreate {recreate[-1][0]:.2f} s, re-clone {reclone[-1][0]:.2f} s")
        w.conn.close()
    return _heal_rows(sec, size_mb, recreate, reclone)


def _heal_rows(sec: Section, size_mb: float, recreate: list[tuple[float, CliRun]],
               reclone: list[tuple[float, CliRun]]) -> Section:
    sec.rows += [
        Row("(i) `docker rm -f` replica → streaming again", [t for t, _ in recreate], "s", Target("<", 1.5),
            "1.03 s (Patroni, after `docker run`)", [r.rss_mb for _, r in recreate]),
        Row("(ii) `docker rm -f` + `docker volume rm` → re-cloned, streaming", [t for t, _ in reclone], "s",
            Target("<", 2.0), "1.22 s (Patroni, 113 MB)", [r.rss_mb for _, r in reclone]),
        Row(f"(ii) re-clone rate ({size_mb:.0f} MB / seconds)", [size_mb / t for t, _ in reclone], "MB/s",
            peer=f"{113 / 1.22:.0f} MB/s (Patroni)"),
        Row("(i) counted as Patroni's figure: from the container's creation (`docker run`) → streaming",
            [since_container(r, "replica1") for _, r in recreate], "s", peer="1.03 s (Patroni)"),
        Row("(ii) counted as Patroni's figure: from the container's creation (`docker run`) → streaming",
            [since_container(r, "replica1") for _, r in reclone], "s", peer="1.22 s (Patroni)"),
        Row("(i) wall time of that `pgtopo apply`", [r.seconds for _, r in recreate], "s"),
        Row("(ii) wall time of that `pgtopo apply`", [r.seconds for _, r in reclone], "s"),
    ]
    sec.notes.append(f"Database `postgres` after pgbench: {size_mb:.0f} MB (pg_database_size). Timed from just "
                     "before `pgtopo apply --yes` starts to the first 20 ms poll of the primary's "
                     "pg_stat_replication (psycopg, published port) showing `replica1` streaming; before each "
                     "run the primary's old WAL sender for replica1 is gone.")
    sec.extra.append("Where the apply's time goes (median per phase):\n\n" + breakdown_table({
        "(i) recreate": [breakdown(r, "primary") for _, r in recreate],
        "(ii) re-clone": [breakdown(r, "primary") for _, r in reclone]}))
    return sec


# ---------------------------------------------------------------------------------------------
# e: switchover under writes


@dataclass(frozen=True)
class Ack:
    id: int
    at: float  # time.monotonic() when the INSERT's result arrived
    node: str


class Writer(threading.Thread):
    """Inserts a row every 10 ms (autocommit) into whichever node accepts writes; on an error it
    tries the nodes' published ports in turn, 10 ms apart, and records every acknowledged id."""

    def __init__(self, c: Cluster, nodes: Sequence[str]) -> None:
        super().__init__(daemon=True)
        self.c, self.nodes, self.password = c, list(nodes), c.password()
        self.acks: list[Ack] = []
        self.halt = threading.Event()
        self.client = docker.from_env(timeout=30)

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        node = ""
        while not self.halt.is_set():
            due = time.monotonic() + WRITE_INTERVAL
            if conn is not None and not self._insert(conn, node):
                _close(conn)
                conn = None
                continue
            if conn is None:
                conn, node = self._find_writable()
            time.sleep(max(0.0, due - time.monotonic()))
        _close(conn)

    def _insert(self, conn: psycopg.Connection, node: str) -> bool:
        try:
            new_id = conn.execute("INSERT INTO bench_writes DEFAULT VALUES RETURNING id").fetchone()[0]
        except psycopg.Error:
            return False
        self.acks.append(Ack(new_id, time.monotonic(), node))
        return True

    def _find_writable(self) -> tuple[psycopg.Connection | None, str]:
        for node, port in self._ports().items():
            conn = self._connect(port)
            if conn is not None and self._insert(conn, node):
                return conn, node
            _close(conn)
            time.sleep(WRITE_INTERVAL)
        return None, ""

    def _ports(self) -> dict[str, int]:
        """Published ports of the running nodes, read again each round (a restart may change them)."""
        try:
            found = self.client.api.containers(filters={"label": f"{CLUSTER_LABEL}={self.c.name}"})
        except Exception:
            return {}
        ports = {}
        for raw in found:
            node = raw["Names"][0].lstrip("/").removeprefix(f"{self.c.name}-")
            port = next((p["PublicPort"] for p in raw.get("Ports") or [] if p.get("PrivatePort") == PG_PORT
                         and p.get("PublicPort")), None)
            if node in self.nodes and port:
                ports[node] = int(port)
        return dict(sorted(ports.items(), key=lambda kv: self.nodes.index(kv[0])))

    def _connect(self, port: int) -> psycopg.Connection | None:
        try:
            return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                   password=self.password, autocommit=True, connect_timeout=2)
        except psycopg.Error:
            return None

    def count_on(self, node: str, since: int = 0) -> int:
        return sum(1 for a in self.acks[since:] if a.node == node)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


def _close(conn: psycopg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


@dataclass
class Switch:
    target: str
    downtime: float
    run: CliRun
    missing: int
    reported: float | None  # the write downtime pgtopo itself printed


def wait_acks(w: Writer, node: str, count: int, since: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while w.count_on(node, since) < count:
        if time.monotonic() > deadline or not w.is_alive():
            raise BenchError(f"the writer got no acknowledged insert on {node} within {timeout:.0f} s")
        time.sleep(0.01)


def write_gap(acks: list[Ack], old: str, new: str) -> float:
    """First acknowledged insert on `new` minus the last one on `old` before it."""
    first_new = next(a.at for a in acks if a.node == new)
    last_old = max(a.at for a in acks if a.node == old and a.at < first_new)
    return first_new - last_old


def missing_on(c: Cluster, node: str, password: str, ids: list[int]) -> int:
    sql = ("SELECT count(*) FROM unnest(%s::bigint[]) AS a(id) "
           "WHERE NOT EXISTS (SELECT 1 FROM bench_writes w WHERE w.id = a.id)")
    with psycopg.connect(host="127.0.0.1", port=c.port(node), user="postgres", dbname="postgres",
                         password=password, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql, (ids,)).fetchone()[0]


def switch_once(c: Cluster, w: Writer, old: str, new: str) -> Switch:
    wait_acks(w, old, 30, len(w.acks), 30)  # writing steadily on the old primary for ≥ 0.3 s
    mark = len(w.acks) - 1
    run = pgtopo("switchover", str(c.path), "--to", new, "--log-format", "json").check()
    wait_acks(w, new, 30, mark, 30)
    acks = list(w.acks)
    gap = write_gap(acks[mark:], old, new)
    missing = missing_on(c, new, w.password, [a.id for a in acks])
    said = re.search(r"write downtime ([\d.]+) s", run.out)
    return Switch(new, gap, run, missing, float(said.group(1)) if said else None)


def switchover_section(s: Settings, workdir: Path) -> Section:
    sec = Section("e", "Switchover on 1+2 under a client inserting a row every 10 ms")
    nodes = ["primary", "replica", "replica2"]
    with cluster(workdir, s.image, nodes[1:]) as c:
        converge(c)
        c.psql("primary", "CREATE TABLE bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        writer = Writer(c, nodes)
        writer.start()
        switches: list[Switch] = []
        try:
            for i in range(s.switchovers):
                old, new = ("primary", "replica") if i % 2 == 0 else ("replica", "primary")
                switches.append(switch_once(c, writer, old, new))
                progress(f"e  switchover {i + 1}/{s.switchovers} {old} → {new}: downtime "
                         f"{switches[-1].downtime:.2f} s, command {switches[-1].run.seconds:.2f} s, "
                         f"missing {switches[-1].missing}")
        finally:
            writer.stop()
        total = len(writer.acks)
    return _switch_rows(sec, switches, total)


def _switch_rows(sec: Section, switches: list[Switch], total: int) -> Section:
    reported = [x.reported for x in switches if x.reported is not None]
    sec.rows += [
        Row("write downtime (last ack on old primary → first ack on new)", [x.downtime for x in switches], "s",
            Target("<=", 0.65), "1.30 s (Patroni)"),
        Row("`pgtopo switchover` wall time", [x.run.seconds for x in switches], "s", Target("<", 2.3),
            "2.3 s (patronictl switchover)", [x.run.rss_mb for x in switches]),
        Row("acknowledged ids missing on the new primary", [float(x.missing) for x in switches], "ids",
            Target("==", 0, "max")),
    ]
    if reported:
        sec.rows.append(Row("write downtime as printed by pgtopo (shutdown → promoted)", reported, "s"))
    sec.notes.append(f"Switched back and forth (primary → replica → primary …); {total} inserts acknowledged in "
                     "all. The client keeps one autocommit connection; on an error it tries each node's published "
                     "port in turn (ports re-read from Docker each round), 10 ms apart; resolution ≈ 10–40 ms.")
    sec.extra.append("Where the switchover command's time goes (median per phase):\n\n" + breakdown_table(
        {"switchover": [breakdown(x.run, x.target) for x in switches]}))
    return sec


# ---------------------------------------------------------------------------------------------
# f: start-up


def importtime_top(n: int = 12) -> str:
    """`python -X importtime -m pgtopo validate examples/seed.yaml`: the slowest top-level imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pgtopo", "validate", "examples/seed.yaml"],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 5:  # top-level imports and two levels below them
            rows.append((int(m.group(2)) / 1e6, m.group(4)))
    rows.sort(reverse=True)
    table = "| module (cumulative) | seconds |\n|---|---:|\n"
    return table + "".join(f"| `{mod}` | {sec:.3f} |\n" for sec, mod in rows[:n])


def cli_section(s: Settings) -> Section:
    sec = Section("f", f"CLI start-up (median of {s.cli_runs} runs)")
    helps = [pgtopo("--help").check() for _ in range(s.cli_runs)]
    validates = [pgtopo("validate", "examples/seed.yaml").check() for _ in range(s.cli_runs)]
    sec.rows += [
        Row("`pgtopo --help`", [r.seconds for r in helps], "s", Target("<", 0.25), rss_mb=[r.rss_mb for r in helps]),
        Row("`pgtopo validate examples/seed.yaml`", [r.seconds for r in validates], "s", Target("<", 0.4),
            rss_mb=[r.rss_mb for r in validates]),
    ]
    sec.extra.append("Slowest imports of `validate` (`python -X importtime`, one run, diagnostic):\n\n"
                     + importtime_top())
    return sec
