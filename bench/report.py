"""Rows, statistics and the Markdown report of the benchmark: medians, spreads, targets, where
an apply spends its time (from its JSON "action done" events), the machine and how busy it was."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker

from harness import (
    BENCH_LABEL,
    DESTROYS,
    LEFTOVERS,
    MADE,
    ROOT,
    RUN_LABEL,
    BenchError,
    CliRun,
    Settings,
    engine,
    new_name,
    remove_labelled,
    sh,
)

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
        # not strict: the sampler thread may be between its two appends
        loads = [x for t, x in zip(self.times, self.loads, strict=False) if t >= since]
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
