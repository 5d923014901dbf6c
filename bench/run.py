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
  p  the pooler: a client through it and one straight to the nodes during a switchover, a restart
     and an image roll; its overhead on `SELECT 1`
  r  backups on 1+1 holding `pgbench -i -s 20` (5 with --quick): `pgtopo backup` beside a bare
     pg_basebackup of the same standby, `pgtopo backups`, and a new 1+1 restored by `pgtopo apply`
  s  synchronous replicas on 1+2: pgbench commit TPS and latency asynchronous, `any 1`, `first 1`
     ($PGTOPO_BENCH_SYNC_SECONDS per run, default 20, 5 with --quick); switchover under a client
     inserting every 10 ms, asynchronous beside `any 1`

Every cluster is named `bench<random>`; everything labelled io.pgtopo.cluster=<name> (and the
baseline's objects, labelled io.pgtopo.bench.run=<name>) is removed afterwards, even on failure,
Ctrl-C or SIGTERM.  Results go to stdout and to bench/RESULTS.md.  Exit 0 when every section ran
(targets may fail), 1 when a section could not be measured.

  .venv/bin/python bench/run.py [--reps N] [--quick] [--image IMAGE] [--only a,b,...] [--out FILE]

This file parses the options and runs the sections; converge.py holds a, b and h, operations.py
c to f, pooler.py p, backup.py r, sync.py s, harness.py starts pgtopo and cleans up after it, report.py makes the tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import psycopg

from backup import backup_section
from converge import Attempts, baseline_section, cold_section, converge_runs, scale_section
from harness import DEFAULT_IMAGE, DEFAULT_OUT, SECTIONS, BenchError, Settings, check_image, cleanup_all, progress
from operations import cli_section, heal_section, noop_section, switchover_section
from pooler import pooler_section
from report import (
    NOISE,
    Noise,
    Section,
    cleanup_report,
    machine_info,
    peers_table,
    render_report,
    render_section,
    summary,
)
from sync import sync_section


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
        ("p", "Pooler", lambda: pooler_section(s, workdir)),
        ("r", "Backups", lambda: backup_section(s, workdir)),
        ("s", "Synchronous replicas", lambda: sync_section(s, workdir)),
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
