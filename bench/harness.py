"""The benchmark's harness: settings, timed pgtopo processes, Docker clean-up, and the clusters
it measures (each named `bench<random>`, removed afterwards even on failure).  Used by run.py and
the section modules."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
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
SECTIONS = "abcdefhprs"


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
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (read and closed in wait())
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
        with suppress(NotFound):
            c.remove(force=True)
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


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
