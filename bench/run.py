"""pgtopo benchmark (issue 6): converge, no-op, heal, switchover and start-up times of the real CLI
on the real engine, against the seed article's procedure (bench/baseline.sh) and the Patroni
figures quoted in the issue.

Sections (each figure measured --reps times, default 3; median and min–max spread; pass/fail
against the issue's targets):
  a  cold converge: empty engine → primary + N replicas streaming, `pgtopo apply`, N = 1, 2, 3, 6
  b  bench/baseline.sh for N = 1, 3, 6 in the same run, interleaved; pgtopo/baseline pair by pair
  c  no-op `pgtopo diff` and `pgtopo apply` on a converged 1+5 cluster
  d  heal a 1+2 cluster holding `pgbench -i -s 7`: (i) replica container removed, (ii) container
     and volume removed; from the start of `pgtopo apply` to the primary's pg_stat_replication
     showing the replica streaming (20 ms polls through psycopg)
  e  switchover on 1+2 under a client inserting a row every 10 ms: write downtime from the
     acknowledged inserts, the command's wall time, acknowledged ids missing on the new primary
  f  CLI start-up: `pgtopo --help`, `pgtopo validate examples/seed.yaml` (10 runs each)
  g  peak RSS of the pgtopo process (os.wait4 rusage of that very child) in every table
  h  scale: converge time for 1+1, 1+4, 1+8, 1+12 with small servers (one run each)

Every cluster is named `bench<random>`; everything labelled io.pgtopo.cluster=<name> (and the
baseline's objects, labelled io.pgtopo.bench.run=<name>) is removed afterwards, even on failure,
Ctrl-C or SIGTERM.  Results go to stdout and to bench/RESULTS.md.  Exit 0 when every section ran
(targets may fail), 1 when a section could not be measured.

  .venv/bin/python bench/run.py [--reps N] [--quick] [--image IMAGE] [--only a,b,...] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import docker
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "baseline.sh"
DEFAULT_OUT = ROOT / "bench" / "RESULTS.md"
DEFAULT_IMAGE = "pgtopo-local/postgres:15"
CLUSTER_LABEL = "io.pgtopo.cluster"
BENCH_LABEL = "io.pgtopo.bench"
RUN_LABEL = "io.pgtopo.bench.run"
PG_PORT = 5432
SMALL_SERVERS = {"shared_buffers": "16MB", "max_connections": 30}
HEAL_POLL = 0.02
WRITE_INTERVAL = 0.01
SECTIONS = "abcdefh"


class BenchError(Exception):
    """A measurement could not be taken (a command failed, a wait timed out)."""


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Settings:
    image: str
    reps: int
    quick: bool
    cold_ns: tuple[int, ...] = (1, 2, 3, 6)
    baseline_ns: tuple[int, ...] = (1, 3, 6)
    noop_replicas: int = 5
    noop_runs: int = 5
    heal_scale: int = 7
    switchovers: int = 3
    cli_runs: int = 10
    scale_ns: tuple[int, ...] = (1, 4, 8, 12)
    only: str = SECTIONS


def settings_from(args: argparse.Namespace) -> Settings:
    image = args.image or os.environ.get("PGTOPO_BENCH_IMAGE") or DEFAULT_IMAGE
    only = "".join(sorted(set(args.only.replace(",", "")))) if args.only else SECTIONS
    if args.quick:
        reps = args.reps or 1
        return Settings(image, reps, True, cold_ns=(1, 2, 3), baseline_ns=(1, 3), noop_replicas=2,
                        noop_runs=max(3, reps), switchovers=max(2, reps), scale_ns=(1, 4), only=only)
    reps = args.reps or 3
    return Settings(image, reps, False, noop_runs=max(5, reps), switchovers=reps, only=only)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=None, help="repetitions of each figure (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="1 rep and smaller clusters: a smoke run")
    p.add_argument("--image", help=f"PostgreSQL image (default $PGTOPO_BENCH_IMAGE or {DEFAULT_IMAGE})")
    p.add_argument("--only", help=f"sections to run, e.g. 'a,c,e' (default all: {','.join(SECTIONS)})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown report (default bench/RESULTS.md)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# statistics and report rows


@dataclass(frozen=True)
class Target:
    op: str  # "<", "<=" or "=="
    value: float
    stat: str = "median"  # which statistic is judged: "median" or "max"

    def holds(self, x: float) -> bool:
        return {"<": x < self.value, "<=": x <= self.value, "==": x == self.value}[self.op]

    def text(self, unit: str) -> str:
        sign = {"<": "<", "<=": "≤", "==": "="}[self.op]
        which = "" if self.stat == "median" else f" ({self.stat})"
        return f"{sign} {fmt(self.value, unit)}{which}"


@dataclass
class Row:
    label: str
    samples: list[float]
    unit: str = "s"
    target: Target | None = None
    peer: str = ""
    rss_mb: list[float] = field(default_factory=list)
    failure: str = ""  # set when pgtopo could not do it at all

    def stat(self, name: str) -> float:
        return {"median": statistics.median, "max": max, "min": min}[name](self.samples)

    @property
    def verdict(self) -> str:
        if self.failure:
            return "**FAIL** (did not converge)"
        if self.target is None or not self.samples:
            return ""
        return "**pass**" if self.target.holds(self.stat(self.target.stat)) else "**FAIL**"


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # further Markdown blocks (breakdowns)
    error: str | None = None


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "×":
        return f"{value:.2f}×"
    if unit in ("MB/s", "MB"):
        return f"{value:.0f} {unit}"
    return f"{value:.0f}{(' ' + unit) if unit else ''}"


def spread(row: Row) -> str:
    if len(row.samples) < 2:
        return "–"
    return f"{fmt(min(row.samples), row.unit)} – {fmt(max(row.samples), row.unit)}"


# ---------------------------------------------------------------------------------------------
# the pgtopo process: wall time and its own peak RSS


@dataclass
class CliRun:
    argv: list[str]
    code: int
    seconds: float
    rss_mb: float
    out: str
    err: str
    wall0: float  # time.time() just before the process started
    raised: bool = False  # measured with WAL sender / slot limits raised in the file (see fresh_converge)
    streaming_at: float | None = None  # heal: wall-clock time the primary first showed the node streaming

    def check(self, codes: tuple[int, ...] = (0,)) -> CliRun:
        if self.code not in codes:
            tail = "\n".join((self.out + "\n" + self.err).strip().splitlines()[-25:])
            raise BenchError(f"`{' '.join(self.argv[-6:])}` exited {self.code}:\n{tail}")
        return self


LIVE: dict[int, subprocess.Popen] = {}  # pgtopo processes this benchmark started and has not reaped


def pgtopo_argv() -> list[str]:
    script = Path(sys.executable).with_name("pgtopo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pgtopo"]


class Child:
    """A pgtopo process, timed from just before it starts until it exits; its peak RSS comes from
    os.wait4, i.e. from that process alone (docker containers are not its children)."""

    def __init__(self, args: Sequence[str]) -> None:
        self.argv = [*pgtopo_argv(), *args]
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        self.wall0 = time.time()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     env=env, cwd=ROOT)
        LIVE[self.proc.pid] = self.proc

    def finish(self, timeout: float = 600.0) -> CliRun:
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - self.t0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        LIVE.pop(self.proc.pid, None)
        return CliRun(self.argv, self.proc.returncode, seconds, usage.ru_maxrss / 1024,
                      _read(self._out), _read(self._err), self.wall0)


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    text = handle.read().decode(errors="replace")
    handle.close()
    return text


def pgtopo(*args: str, timeout: float = 600.0) -> CliRun:
    return Child(args).finish(timeout)


# ---------------------------------------------------------------------------------------------
# Docker: names, clean-up, commands


MADE: list[str] = []  # label filters of everything this benchmark created, removed at the end
_ENGINE: list[docker.DockerClient] = []


def engine() -> docker.DockerClient:
    if not _ENGINE:
        _ENGINE.append(docker.from_env(timeout=120))
    return _ENGINE[0]


def new_name() -> str:
    return "bench" + secrets.token_hex(4)


def sh(*argv: str, timeout: float = 600.0, stdin: str | None = None) -> str:
    """Run a command (docker CLI, bash); its stdout, or BenchError with its stderr."""
    proc = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(argv[:4])} …` exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc.stdout


LEFTOVERS: list[str] = []  # objects the engine would not let us remove (reported, never hidden)
DESTROYS: list[str] = []  # one entry per `pgtopo destroy` run: "" when it exited 0, else its error


def remove_labelled(label: str) -> None:
    """Remove every container, volume and network carrying `label` (key=value)."""
    from docker.errors import NotFound

    client, flt = engine(), {"label": label}
    for c in client.containers.list(all=True, filters=flt):
        try:
            c.remove(force=True)
        except NotFound:
            pass
    for v in client.volumes.list(filters=flt):
        _remove_volume(v)
    for n in client.networks.list(filters=flt):
        _remove_network(n)


def _remove_network(network: docker.models.networks.Network) -> None:
    from docker.errors import APIError, NotFound

    for attempt in range(20):  # endpoints of just-removed containers may linger a moment
        try:
            network.remove()
            return
        except NotFound:
            return
        except APIError as exc:
            if attempt == 19:
                LEFTOVERS.append(f"network {network.name}: {exc.explanation}")
                print(f"warning: could not remove network {network.name}: {exc.explanation}", file=sys.stderr)
                return
            time.sleep(0.25)


def _remove_volume(volume: docker.models.volumes.Volume) -> None:
    from docker.errors import APIError, NotFound

    for attempt in range(20):  # an auto-removed container may still hold it for a moment
        try:
            volume.remove(force=True)
            return
        except NotFound:
            return
        except APIError:
            if attempt == 19:
                raise
            time.sleep(0.25)


def kill_children() -> None:
    """Kill the pgtopo processes this benchmark started and has not reaped (by pid)."""
    for pid, proc in list(LIVE.items()):
        proc.kill()
        proc.wait()
        LIVE.pop(pid, None)


def cleanup_all() -> None:
    """Kill pgtopo processes still running, then remove everything made, newest first."""
    kill_children()
    while MADE:
        label = MADE.pop()
        try:
            remove_labelled(label)
        except Exception as exc:  # keep removing the rest; say what was left
            print(f"warning: could not remove everything labelled {label}: {exc}", file=sys.stderr)


def check_image(image: str) -> None:
    from docker.errors import ImageNotFound

    try:
        engine().images.get(image)
    except ImageNotFound:
        raise BenchError(f"image {image} is not on this engine (this benchmark never pulls); `make bench` "
                         "builds pgtopo-local/postgres:15, or set PGTOPO_BENCH_IMAGE") from None


# ---------------------------------------------------------------------------------------------
# a cluster managed by pgtopo


@dataclass
class Cluster:
    name: str
    path: Path
    primary: str  # the file's primary as written at first

    def container(self, node: str) -> str:
        return f"{self.name}-{node}"

    def volume(self, node: str) -> str:
        return f"{self.name}-{node}-data"

    def port(self, node: str) -> int:
        """The 127.0.0.1 port published for the node (`docker port`)."""
        out = sh("docker", "port", self.container(node), str(PG_PORT)).split()
        return int(out[0].rsplit(":", 1)[1])

    def password(self) -> str:
        return sh("docker", "exec", self.container(self.primary), "cat", "/run/pgtopo/superuser_password").strip()

    def connect(self, node: str, password: str | None = None) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port(node), user="postgres", dbname="postgres",
                               password=password or self.password(), autocommit=True, connect_timeout=3)

    def psql(self, node: str, sql: str) -> str:
        return sh("docker", "exec", self.container(node), "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                  "-Atc", sql).strip()


def replica_names(n: int) -> list[str]:
    return [f"replica{i}" for i in range(1, n + 1)]


def topology_yaml(name: str, image: str, primary: str, replicas: Sequence[str],
                  params: dict[str, object] | None = None) -> str:
    lines = ["version: 1", f"cluster: {name}", f"image: {image}", f"primary: {primary}"]
    if params:
        lines.append("parameters: {" + ", ".join(f"{k}: {v}" for k, v in params.items()) + "}")
    lines += ["nodes:", f"  {primary}: {{}}"] + [f"  {r}: {{}}" for r in replicas]
    return "\n".join(lines) + "\n"


@contextmanager
def cluster(workdir: Path, image: str, replicas: Sequence[str], primary: str = "primary",
            params: dict[str, object] | None = None) -> Iterator[Cluster]:
    """A topology file for a new `bench…` cluster; on exit `pgtopo destroy --yes --volumes`, then
    everything still labelled with the cluster is removed."""
    name = new_name()
    label = f"{CLUSTER_LABEL}={name}"
    MADE.append(label)
    path = workdir / f"{name}.yaml"
    path.write_text(topology_yaml(name, image, primary, replicas, params))
    try:
        yield Cluster(name, path, primary)
    finally:
        kill_children()  # an apply interrupted by an error or SIGTERM would hold the cluster's lock
        done = pgtopo("destroy", str(path), "--yes", "--volumes", timeout=300)
        DESTROYS.append("" if done.code == 0 else _first_error(done))
        remove_labelled(label)
        MADE.remove(label)


def _first_error(run: CliRun) -> str:
    lines = [ln for ln in run.err.splitlines() if ln.startswith("error:")] or run.err.strip().splitlines()[-1:]
    return f"exit {run.code}: " + (lines[0][:300] if lines else "no message")


def converge(c: Cluster) -> CliRun:
    return pgtopo("apply", str(c.path), "--yes", "--log-format", "json").check()


def assert_streaming(c: Cluster, node: str, count: int) -> None:
    """Independent check: the node's pg_stat_replication shows `count` standbys streaming."""
    with c.connect(node) as conn:
        seen = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0]
    if seen != count:
        raise BenchError(f"{c.name}: apply exited 0 but {node} shows {seen} of {count} replicas streaming")


# ---------------------------------------------------------------------------------------------
# where an apply spends its time: the JSON "action done" events (duration, end timestamp)


@dataclass(frozen=True)
class Step:
    kind: str
    node: str | None
    start: float
    end: float


def steps(run: CliRun) -> list[Step]:
    found = []
    for line in run.err.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "action done" and "duration" in event:
            end = datetime.fromisoformat(event["timestamp"]).timestamp()
            found.append(Step(event["action"], event.get("node"), end - event["duration"], end))
    return found


def breakdown(run: CliRun, primary: str) -> dict[str, float]:
    """Seconds of the run by phase: before the first action, each action of the cluster, of the
    primary and of the replica that finished last (replicas run in parallel, so that one is the
    critical path), the rest between actions, and after the last action."""
    found = steps(run)
    if not found:
        return {"whole run (no actions)": run.seconds}
    first, last = min(s.start for s in found), max(s.end for s in found)
    replicas = [s for s in found if s.node and s.node != primary]
    slowest = max(replicas, key=lambda s: s.end).node if replicas else None
    parts: dict[str, float] = {"before the first action (start-up, lock, observe)": first - run.wall0}
    for s in found:
        if s.node and s.node not in (primary, slowest):
            continue
        role = "cluster" if not s.node else ("primary" if s.node == primary else "replica finishing last")
        key = f"{s.kind} ({role})"
        parts[key] = parts.get(key, 0.0) + (s.end - s.start)
    parts["between actions (waves, waiting for parallel nodes)"] = (last - first) - sum(
        v for k, v in parts.items() if not k.startswith("before"))
    parts["after the last action (wait until every replica streams, exit)"] = run.wall0 + run.seconds - last
    return parts


def breakdown_table(columns: dict[str, list[dict[str, float]]]) -> str:
    """Markdown: one row per phase, one column per label, cells the median over the runs."""
    keys: list[str] = []
    for runs in columns.values():
        for parts in runs:
            keys += [k for k in parts if k not in keys]
    head = "| phase | " + " | ".join(columns) + " |\n|---|" + "---:|" * len(columns) + "\n"
    body = ""
    for key in keys:
        cells = [statistics.median([p[key] for p in runs if key in p]) if any(key in p for p in runs) else None
                 for runs in columns.values()]
        body += f"| {key} | " + " | ".join("–" if v is None else f"{v:.2f} s" for v in cells) + " |\n"
    return head + body


# ---------------------------------------------------------------------------------------------
# a + b: cold converge, and the baseline script


def cold_run(s: Settings, workdir: Path, n: int, params: dict[str, object] | None = None) -> CliRun:
    with cluster(workdir, s.image, replica_names(n), params=params) as c:
        run = converge(c)
        assert_streaming(c, "primary", n)
        return run


WAL_LIMIT_ERRORS = ("exceeds max_wal_senders", "replication slots are in use")


def raised_limits(n: int) -> dict[str, object]:
    """WAL senders for n streaming replicas plus two per parallel clone (`-X stream`), n slots."""
    return {"max_wal_senders": 2 * n + 2, "max_replication_slots": n + 2}


@dataclass
class Attempts:
    """Per cluster size: how often pgtopo converged the file as specified, and why it did not."""

    tried: dict[int, int] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)
    reason: dict[int, str] = field(default_factory=dict)

    def record(self, n: int, reason: str | None) -> None:
        self.tried[n] = self.tried.get(n, 0) + 1
        if reason is not None:
            self.failed[n] = self.failed.get(n, 0) + 1
            self.reason.setdefault(n, reason)

    def failure(self, n: int) -> str:
        if not self.failed.get(n):
            return ""
        return f"failed {self.failed[n]} of {self.tried[n]} attempt(s), exit 2: {self.reason[n]}"


def fresh_converge(s: Settings, workdir: Path, n: int, params: dict[str, object] | None,
                   attempts: Attempts) -> CliRun:
    """Converge a new 1+n cluster from the file as specified.  When pgtopo runs out of WAL senders
    or slots (recorded in `attempts`: a finding), measure this repetition again with those limits
    raised in the file's parameters."""
    try:
        run = cold_run(s, workdir, n, params)
        attempts.record(n, None)
        return run
    except BenchError as exc:
        reason = next((ln for ln in str(exc).splitlines() if any(e in ln for e in WAL_LIMIT_ERRORS)), None)
        if reason is None:
            raise
        attempts.record(n, reason.strip())
        progress(f"1+{n} as specified did not converge ({reason.strip()}); measuring with {raised_limits(n)}")
    run = cold_run(s, workdir, n, {**(params or {}), **raised_limits(n)})
    run.raised = True
    return run


def converged_rows(runs: dict[int, list[CliRun]], attempts: Attempts,
                   target: Callable[[int], Target | None] = lambda n: None,
                   peer: Callable[[int], str] = lambda n: "") -> list[Row]:
    rows = []
    for n, done in runs.items():
        if attempts.failed.get(n):
            rows.append(Row(f"1+{n} as specified", [], "s", failure=attempts.failure(n)))
        rows.append(Row(f"1+{n}{raised_text(n, done)}", [r.seconds for r in done], "s", target(n), peer(n),
                        [r.rss_mb for r in done]))
    return rows


def raised_text(n: int, done: list[CliRun]) -> str:
    raised = sum(r.raised for r in done)
    return f" ({raised} of {len(done)} run(s) with {_limits_text(n)})" if raised else ""


def _limits_text(n: int) -> str:
    return ", ".join(f"{k}: {v}" for k, v in raised_limits(n).items())


def baseline_run(s: Settings, n: int) -> float:
    name = new_name()
    label = f"{RUN_LABEL}={name}"
    MADE.append(label)
    try:
        t0 = time.monotonic()
        sh("bash", str(BASELINE), name, str(n), s.image)
        return time.monotonic() - t0
    finally:
        remove_labelled(label)
        MADE.remove(label)


def converge_runs(s: Settings, workdir: Path,
                  attempts: Attempts) -> tuple[dict[int, list[CliRun]], dict[int, list[float]]]:
    """Interleaved, rep by rep: pgtopo 1+N, then the baseline 1+N, so drift hits both alike."""
    cold_ns = s.cold_ns if "a" in s.only else ()
    base_ns = s.baseline_ns if "b" in s.only else ()
    ours: dict[int, list[CliRun]] = {n: [] for n in sorted(set(cold_ns) | set(base_ns))}
    theirs: dict[int, list[float]] = {n: [] for n in base_ns}
    for rep in range(s.reps):
        for n in ours:
            ours[n].append(fresh_converge(s, workdir, n, None, attempts))
            progress(f"a  rep {rep + 1}/{s.reps}  pgtopo 1+{n}: {ours[n][-1].seconds:.2f} s")
            if n in theirs:
                theirs[n].append(baseline_run(s, n))
                progress(f"b  rep {rep + 1}/{s.reps}  baseline 1+{n}: {theirs[n][-1]:.2f} s")
    return ours, theirs


def cold_section(ours: dict[int, list[CliRun]], attempts: Attempts) -> Section:
    sec = Section("a", "Cold converge: empty engine → primary + N replicas streaming (`pgtopo apply`)")
    sec.rows += converged_rows(ours, attempts, lambda n: Target("<", 4.0) if n == 2 else None,
                               lambda n: "16.9 s (Patroni 1+2)" if n == 2 else "")
    sec.notes += [failure_note(n, attempts) for n in attempts.failed]
    sec.notes.append("Wall time of the `pgtopo apply FILE --yes --log-format json` process, all replicas directly "
                     "under the primary; `pgtopo destroy FILE --yes --volumes` between runs (not timed).")
    sec.extra.append("Where the time goes (median per phase, from apply's JSON `action done` events):\n\n"
                     + breakdown_table({f"1+{n}": [breakdown(r, "primary") for r in runs] for n, runs in ours.items()}))
    return sec


RATIO_TARGETS = {3: Target("<=", 0.9), 6: Target("<=", 0.75)}


def failure_note(n: int, attempts: Attempts) -> str:
    return (f"**1+{n} as specified does not always converge** ({attempts.failed[n]} of {attempts.tried[n]} "
            f"attempts failed): `pgtopo apply` exits 2 with `{attempts.reason[n]}` (the replicas are "
            f"cloned in parallel with `pg_basebackup -X stream`, two WAL senders each, and every replica "
            f"then holds one sender and one slot; PostgreSQL's defaults are max_wal_senders = 10, "
            f"max_replication_slots = 10; whether it fails depends on how the clones overlap). Each failed "
            f"repetition was measured again with {_limits_text(n)} added to the file's `parameters`.")


def baseline_section(ours: dict[int, list[CliRun]], theirs: dict[int, list[float]]) -> Section:
    sec = Section("b", "Baseline: the seed article's steps as a sequential script (bench/baseline.sh)")
    for n, secs in theirs.items():
        sec.rows.append(Row(f"1+{n} baseline.sh", secs, "s"))
        ratios = [p.seconds / b for p, b in zip(ours[n], secs)]
        limits = raised_text(n, ours[n]).replace(" (", " (pgtopo: ", 1)
        sec.rows.append(Row(f"1+{n} pgtopo / baseline (pair by pair){limits}", ratios, "×", RATIO_TARGETS.get(n),
                            rss_mb=[p.rss_mb for p in ours[n]]))
    sec.notes.append("Each baseline run follows the pgtopo run of the same N in the same repetition; the ratio "
                     "is taken pair by pair. The baseline clones replicas one after another (as the article "
                     "does), uses `pg_basebackup -c fast`, and polls with 100 ms sleeps.")
    return sec


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
        try:
            conn.close()
        except psycopg.Error:
            pass


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


# ---------------------------------------------------------------------------------------------
# h: scale


def scale_section(s: Settings, workdir: Path) -> Section:
    sec = Section("h", "Scale: converge 1+N with `parameters: {shared_buffers: 16MB, max_connections: 30}` "
                       "(one run each)")
    runs: dict[int, CliRun] = {}
    attempts = Attempts()
    for n in s.scale_ns:
        runs[n] = fresh_converge(s, workdir, n, SMALL_SERVERS, attempts)
        progress(f"h  1+{n}: {runs[n].seconds:.2f} s")
    sec.rows += converged_rows({n: [r] for n, r in runs.items()}, attempts)
    sec.notes += [failure_note(n, attempts) for n in attempts.failed]
    sec.notes.append(growth_note(runs))
    sec.extra.append("Where the time goes:\n\n" + breakdown_table(
        {f"1+{n}": [breakdown(r, "primary")] for n, r in runs.items()}))
    return sec


def growth_note(runs: dict[int, CliRun]) -> str:
    ns = sorted(runs)
    if len(ns) < 2:
        return "one point only: no growth to report"
    xs, ys = ns, [runs[n].seconds for n in ns]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    steps_ = ", ".join(f"1+{a}→1+{b}: +{(runs[b].seconds - runs[a].seconds) / (b - a):.2f} s/replica"
                       for a, b in itertools.pairwise(ns))
    return (f"Growth: least-squares slope {slope:.2f} s per added replica (intercept {my - slope * mx:.2f} s); "
            f"{steps_}; 1+{ns[-1]} takes {ys[-1] / ys[0]:.1f}× as long as 1+{ns[0]}.")


# ---------------------------------------------------------------------------------------------
# machine information


def machine_info(s: Settings) -> dict[str, str]:
    client = engine()
    version, info = client.version(), client.info()
    image = client.images.get(s.image)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": f"{len(os.sched_getaffinity(0))} ({cpu.group(1).strip() if cpu else platform.machine()})",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "docker": f"{version.get('Version')} (API {version.get('ApiVersion')}, {info.get('Driver')}, "
                  f"{info.get('OperatingSystem')})",
        "image": f"{s.image} ({image.short_id}, {pg_version(s.image)})",
        "pgtopo": git_describe(),
        "python": platform.python_version(),
        "others' containers running at start": str(len(client.containers.list())),
        "mode": f"{'--quick, ' if s.quick else ''}{s.reps} rep(s)",
    }


def pg_version(image: str) -> str:
    name = new_name()
    label = f"{RUN_LABEL}={name}"
    MADE.append(label)
    try:
        return sh("docker", "run", "--rm", "--pull", "never", "--label", f"{BENCH_LABEL}=1", "--label", label,
                  "--network", "none", image, "postgres", "--version").strip()
    finally:
        remove_labelled(label)
        MADE.remove(label)


def git_describe() -> str:
    try:
        head = sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").strip()
        dirty = sh("git", "-C", str(ROOT), "status", "--porcelain", "--", "pgtopo").strip()
    except (BenchError, FileNotFoundError):
        return "unknown"
    if not dirty:
        return head
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pgtopo").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{head} + uncommitted changes in pgtopo/ (sha256 of pgtopo/*.py: {digest.hexdigest()[:12]})"


# ---------------------------------------------------------------------------------------------
# report


PEERS = [
    ("cold start 1+2", "16.9 s", "a", "1+2"),
    ("switchover write downtime", "1.30 s", "e", "write downtime (last ack"),
    ("switchover command wall time", "2.3 s (patronictl)", "e", "`pgtopo switchover` wall time"),
    ("replica recreated on its volume → streaming", "1.03 s after `docker run`", "d", "(i) `docker rm -f`"),
    ("re-clone 113 MB", "1.22 s", "d", "(ii) `docker rm -f`"),
]


def section_table(sec: Section) -> str:
    head = ("| figure | median | spread (min – max) | runs | target | result | peak RSS (pgtopo) | Patroni (issue 6) |\n"
            "|---|---:|---:|---:|---|---|---:|---|\n")
    body = ""
    for r in sec.rows:
        median = "failed" if r.failure else (fmt(statistics.median(r.samples), r.unit) if r.samples else "–")
        rss = f"{max(r.rss_mb):.0f} MB" if r.rss_mb else ""
        runs = "–" if r.failure else str(len(r.samples))
        body += (f"| {r.label} | {median} | {spread(r)} | {runs} | "
                 f"{r.target.text(r.unit) if r.target else ''} | {r.verdict} | {rss} | {r.peer} |\n")
    return head + body


def render_section(sec: Section) -> str:
    text = f"## {sec.key}. {sec.title}\n\n"
    if sec.error:
        text += f"**Not measured**: the section failed:\n\n```\n{sec.error.strip()[-3000:]}\n```\n\n"
    if sec.rows:
        text += section_table(sec) + "\n"
    text += "".join(f"{note}\n\n" for note in sec.notes)
    text += "".join(f"{block}\n" for block in sec.extra)
    return text


def summary(sections: list[Section]) -> str:
    text = "| section | figure | median | target | result |\n|---|---|---:|---|---|\n"
    for sec in sections:
        for r in sec.rows:
            if r.failure:
                text += f"| {sec.key} | {r.label} | failed | converges | {r.verdict}: {r.failure} |\n"
            elif r.target is not None and r.samples:
                value = fmt(r.stat(r.target.stat), r.unit)
                text += f"| {sec.key} | {r.label} | {value} | {r.target.text(r.unit)} | {r.verdict} |\n"
    return text


def peers_table(sections: list[Section]) -> str:
    by_key = {sec.key: sec for sec in sections}
    text = "| figure | Patroni (issue 6) | pgtopo, this run (median) |\n|---|---|---:|\n"
    for label, theirs, key, prefix in PEERS:
        row = next((r for r in by_key.get(key, Section(key, "")).rows
                    if r.label.startswith(prefix) and r.samples), None)
        ours = fmt(statistics.median(row.samples), row.unit) if row and row.samples else "not measured"
        text += f"| {label} | {theirs} | {ours} |\n"
    return text


def render_report(info: dict[str, str], sections: list[Section]) -> str:
    text = "# pgtopo benchmark (issue 6)\n\nGenerated by `bench/run.py` (`make bench`). Medians of the " \
           "repetitions, min – max spread, pass/fail against the issue's targets.\n\n"
    text += "| machine | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in info.items()) + "\n"
    text += "## Targets\n\n" + summary(sections) + "\n"
    text += "## Next to the Patroni peer figures quoted in the issue\n\n" + peers_table(sections) + "\n"
    return text + "\n".join(render_section(sec) for sec in sections) + cleanup_report()


def cleanup_report() -> str:
    failed = [d for d in DESTROYS if d]
    text = (f"## Clean-up\n\n`pgtopo destroy FILE --yes --volumes` ran {len(DESTROYS)} time(s) between "
            f"measurements and failed {len(failed)} time(s).")
    text += "".join(f"\n\n* {err}" for err in sorted(set(failed)))
    if LEFTOVERS:
        text += "\n\nThe engine refused to remove (left behind, no containers or volumes in them):" + "".join(
            f"\n\n* {item}" for item in LEFTOVERS)
    return text + "\n"


class Noise(threading.Thread):
    """Samples, every 5 s, the 1-minute load average and how many containers not made by this
    benchmark run on the engine (others' tests share it), to say how quiet the machine was."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.loads: list[float] = []
        self.others: list[int] = []
        self.times: list[float] = []
        self.halt = threading.Event()
        self.client = docker.from_env(timeout=30)

    def run(self) -> None:
        while not self.halt.wait(5.0):
            self.loads.append(os.getloadavg()[0])
            self.times.append(time.monotonic())
            try:
                names = [c["Names"][0] for c in self.client.api.containers()]
            except Exception:
                continue
            self.others.append(sum(1 for n in names if not n.lstrip("/").startswith("bench")))

    def during(self, since: float) -> str:
        loads = [x for t, x in zip(self.times, self.loads) if t >= since]
        if not loads:
            return ""
        return (f"Load average (1 min) while this section ran: mean {statistics.mean(loads):.1f}, "
                f"max {max(loads):.1f} on {os.cpu_count()} CPUs.")

    def describe(self) -> dict[str, str]:
        self.halt.set()
        if not self.loads:
            return {}
        return {"load average (1 min) during the run": f"mean {statistics.mean(self.loads):.1f}, "
                                                      f"max {max(self.loads):.1f} (on {os.cpu_count()} CPUs)",
                "others' containers running during the run": f"{min(self.others, default=0)} – "
                                                            f"{max(self.others, default=0)}"}


NOISE: list[Noise] = []


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# main


def run_sections(s: Settings, workdir: Path) -> list[Section]:
    sections: list[Section] = []
    if "a" in s.only or "b" in s.only:
        sections += guarded("ab", "Cold converge and baseline", lambda: _converge_pair(s, workdir))
    steps_: list[tuple[str, str, Callable[[], Section]]] = [
        ("c", "No-op", lambda: noop_section(s, workdir)),
        ("d", "Heal", lambda: heal_section(s, workdir)),
        ("e", "Switchover", lambda: switchover_section(s, workdir)),
        ("f", "CLI start-up", lambda: cli_section(s)),
        ("h", "Scale", lambda: scale_section(s, workdir)),
    ]
    for key, title, fn in steps_:
        if key in s.only:
            sections += guarded(key, title, lambda fn=fn: [fn()])
    return sections


def _converge_pair(s: Settings, workdir: Path) -> list[Section]:
    attempts = Attempts()
    ours, theirs = converge_runs(s, workdir, attempts)
    out = [cold_section(ours, attempts)] if "a" in s.only else []
    return out + ([baseline_section(ours, theirs)] if "b" in s.only else [])


def guarded(key: str, title: str, fn: Callable[[], list[Section]]) -> list[Section]:
    """Run a section; on an error keep going with the next one and report what failed."""
    progress(f"section {key}: {title}")
    since = time.monotonic()
    try:
        done = fn()
    except BenchError as exc:
        progress(f"section {key} failed: {exc}")
        return [Section(key, title, error=str(exc))]
    except (psycopg.Error, docker.errors.DockerException, subprocess.TimeoutExpired, OSError) as exc:
        progress(f"section {key} failed: {exc!r}")
        return [Section(key, title, error=traceback.format_exc())]
    for sec in done:
        load = NOISE[0].during(since) if NOISE else ""
        if load:
            sec.notes.append(load)
        print(render_section(sec), flush=True)
    return done


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    s, out = settings_from(args), args.out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="pgtopo-bench-"))
    try:
        check_image(s.image)
        info = machine_info(s)
        progress(f"benchmark on {s.image}, {s.reps} rep(s){' (quick)' if s.quick else ''}; report → {out}")
        noise = Noise()
        noise.start()
        NOISE.append(noise)
        sections = run_sections(s, workdir)
        info.update(noise.describe())
        out.write_text(render_report(info, sections))
        print("## Targets\n\n" + summary(sections) + "\n## Patroni peers\n\n" + peers_table(sections)
              + "\n" + cleanup_report())
        progress(f"wrote {out}")
        return 1 if any(sec.error for sec in sections) else 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
