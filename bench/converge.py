"""Sections a, b and h: cold converge with pgtopo, the seed article's sequential procedure
(bench/baseline.sh) in the same run, and how converge time grows from 1+1 to 1+12."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BASELINE,
    MADE,
    RUN_LABEL,
    SMALL_SERVERS,
    BenchError,
    CliRun,
    Settings,
    assert_streaming,
    cluster,
    converge,
    new_name,
    progress,
    remove_labelled,
    replica_names,
    sh,
)
from report import Row, Section, Target, breakdown, breakdown_table

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
        ratios = [p.seconds / b for p, b in zip(ours[n], secs, strict=False)]
        limits = raised_text(n, ours[n]).replace(" (", " (pgtopo: ", 1)
        sec.rows.append(Row(f"1+{n} pgtopo / baseline (pair by pair){limits}", ratios, "×", RATIO_TARGETS.get(n),
                            rss_mb=[p.rss_mb for p in ours[n]]))
    sec.notes.append("Each baseline run follows the pgtopo run of the same N in the same repetition; the ratio "
                     "is taken pair by pair. The baseline clones replicas one after another (as the article "
                     "does), uses `pg_basebackup -c fast`, and polls with 100 ms sleeps.")
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
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    steps_ = ", ".join(f"1+{a}→1+{b}: +{(runs[b].seconds - runs[a].seconds) / (b - a):.2f} s/replica"
                       for a, b in itertools.pairwise(ns))
    return (f"Growth: least-squares slope {slope:.2f} s per added replica (intercept {my - slope * mx:.2f} s); "
            f"{steps_}; 1+{ns[-1]} takes {ys[-1] / ys[0]:.1f}× as long as 1+{ns[0]}.")
