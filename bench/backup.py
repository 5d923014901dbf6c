"""Section r of `make bench`: backups and restore on a 1+1 cluster holding `pgbench -i -s N`.

Per repetition: `pgtopo backup` (from the standby: pg_basebackup, pg_verifybackup, the record,
retention) beside a bare `pg_basebackup` of the same standby into the same repository volume, in
a container of the same image on the cluster network (the floor pgtopo's job stands on); `pgtopo
backups`; then a new cluster restored from the newest backup by `pgtopo apply` of a file with
`bootstrap.restore` (restore, recovery to the end of the archive, promotion, its replica cloned),
its rows counted against the source's.  Then `method: pgbackrest` on a second cluster: a full
backup, an incremental one after an UPDATE of a tenth of the rows, the listing, and restores."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import BENCH_LABEL, CLUSTER_LABEL, BenchError, Cluster, Settings, cluster, pgtopo, progress, sh
from report import Row, Section, Target

COUNT = "SELECT count(*) FROM pgbench_accounts"


def pgbench_scale(s: Settings) -> int:
    return 5 if s.quick else 20


def _with_backup(c: Cluster, image: str, method: str = "native") -> str:
    return (f"version: 1\ncluster: {c.name}\nimage: {image}\nprimary: primary\nnodes:\n  primary: {{}}\n"
            f"  replica: {{}}\nbackup:\n  method: {method}\n  repository: {{volume: {c.name}-backup}}\n"
            "  retention: {full: 2}\n")


def _restored(r: Cluster, source: Cluster, image: str) -> str:
    return (f"version: 1\ncluster: {r.name}\nimage: {image}\nprimary: primary\nnodes:\n  primary: {{}}\n"
            f"  replica: {{}}\nbootstrap:\n  restore:\n    from: {{cluster: {source.name}, repository: "
            f"{{volume: {source.name}-backup}}}}\n")


def _bare_basebackup(c: Cluster, image: str, rep: int) -> float:
    """pg_basebackup of the standby as pgtopo's job runs it (plain format, WAL streamed, fast
    checkpoint, the replication user's passfile), with its default fsync; wall time of the
    container, then its copy removed."""
    target = f"/r/{c.name}/bench-bare-{rep}"
    conninfo = f"host={c.container('replica')} user=repuser"
    start = time.monotonic()
    sh("docker", "run", "--rm", "--pull", "never", "--label", f"{CLUSTER_LABEL}={c.name}", "--label",
       f"{BENCH_LABEL}=1", "--network", f"{c.name}-net", "-u", "postgres", "-v", f"{c.name}-pgtopo-state:/run/pgtopo:ro",
       "-v", f"{c.name}-backup:/r", "-e", "PGPASSFILE=/run/pgtopo/pgpass", image,
       "pg_basebackup", "-D", target, "-Fp", "-X", "stream", "-c", "fast", "-d", conninfo, timeout=1800)
    seconds = time.monotonic() - start
    sh("docker", "run", "--rm", "--pull", "never", "--label", f"{CLUSTER_LABEL}={c.name}", "-u", "postgres",
       "-v", f"{c.name}-backup:/r", image, "rm", "-rf", target)
    return seconds


def _restores(s: Settings, workdir: Path, c: Cluster, rows: int, tag: str) -> tuple[list[float], list[float],
                                                                                list[float]]:
    """Per repetition, a new 1+1 restored from `c`'s newest backup: its apply's seconds and RSS,
    and the rows it misses."""
    restored, restored_rss, missing = [], [], []
    c.psql("primary", "SELECT pg_switch_wal()")  # the last writes archived before the restores read them
    time.sleep(2)
    for rep in range(s.reps):
        with cluster(workdir, s.image, ["replica"]) as r:
            r.path.write_text(_restored(r, c, s.image))
            run = pgtopo("apply", str(r.path), "--yes", timeout=1800).check()
            restored.append(run.seconds)
            restored_rss.append(run.rss_mb)
            got = int(r.psql("primary", COUNT))
            missing.append(float(rows - got))
            streaming = r.psql("primary", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            if streaming != "1":
                raise BenchError(f"the restored cluster's replica is not streaming ({streaming})")
            progress(f"r  {tag} rep {rep + 1}/{s.reps}: restore into a new 1+1 {run.seconds:.2f} s, {got} rows")
    return restored, restored_rss, missing


def _loaded(c: Cluster, image: str, method: str, scale: int) -> int:
    c.path.write_text(_with_backup(c, image, method))
    pgtopo("apply", str(c.path), "--yes").check()
    sh("docker", "exec", c.container("primary"), "pgbench", "-U", "postgres", "-i", "-q", "-s", str(scale),
       "postgres", timeout=1800)
    return int(c.psql("primary", COUNT))


def _backup(c: Cluster, *args: str):  # type: ignore[no-untyped-def]
    run = pgtopo("backup", str(c.path), *args, timeout=1800).check()
    if "from replica" not in run.out:
        raise BenchError(f"the backup was not taken from the standby:\n{run.out[-800:]}")
    return run


def backup_section(s: Settings, workdir: Path) -> Section:
    scale = pgbench_scale(s)
    sec = Section("r", f"Backups and restore on 1+1 holding `pgbench -i -s {scale}`")
    taken, bare, ratio, listed = [], [], [], []
    taken_rss, listed_rss = [], []
    sizes: list[float] = []
    with cluster(workdir, s.image, ["replica"]) as c:
        rows = _loaded(c, s.image, "native", scale)
        for rep in range(s.reps):
            seconds = _bare_basebackup(c, s.image, rep)
            run = _backup(c)
            bare.append(seconds)
            taken.append(run.seconds)
            taken_rss.append(run.rss_mb)
            ratio.append(run.seconds / seconds)
            listing = pgtopo("backups", str(c.path), "--output", "json").check()
            listed.append(listing.seconds)
            listed_rss.append(listing.rss_mb)
            sizes.append(json.loads(listing.out)["backups"][-1]["size_bytes"] / 1e6)
            progress(f"r  rep {rep + 1}/{s.reps}: pg_basebackup {seconds:.2f} s, pgtopo backup {run.seconds:.2f} s, "
                     f"pgtopo backups {listing.seconds:.2f} s")
        restored, restored_rss, missing = _restores(s, workdir, c, rows, "native")
    # method pgbackrest: a full backup, then an incremental one after a change of a tenth of the rows
    full, full_ratio, incr, rest_listed, rest_sizes = [], [], [], [], []
    with cluster(workdir, s.image, ["replica"]) as c:
        rows_rest = _loaded(c, s.image, "pgbackrest", scale)
        for rep in range(s.reps):
            run = _backup(c)
            full.append(run.seconds)
            full_ratio.append(run.seconds / bare[rep])
            c.psql("primary", f"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 10 = {rep}")
            inc = _backup(c, "--type", "incr")
            incr.append(inc.seconds)
            listing = pgtopo("backups", str(c.path), "--output", "json").check()
            rest_listed.append(listing.seconds)
            rest_sizes.append(json.loads(listing.out)["backups"][-2]["size_bytes"] / 1e6)
            progress(f"r  pgbackrest rep {rep + 1}/{s.reps}: full {run.seconds:.2f} s, incr {inc.seconds:.2f} s")
        rest_restored, rest_rss, rest_missing = _restores(s, workdir, c, rows_rest, "pgbackrest")
    sec.rows += [
        Row("bare `pg_basebackup` of the standby (a container of the image, plain, WAL streamed, fsync)", bare),
        Row("`pgtopo backup` (from the standby; verify, record, retention)", taken, rss_mb=taken_rss),
        Row("`pgtopo backup` / bare `pg_basebackup`", ratio, "×"),
        Row("`pgtopo backups --output json`", listed, rss_mb=listed_rss),
        Row("`pgtopo apply` of a new 1+1 with `bootstrap.restore` (end of the archive), replica streaming",
            restored, rss_mb=restored_rss),
        Row("pgbench_accounts rows missing in the restored cluster", missing, "rows", Target("==", 0, "max")),
        Row("method pgbackrest: `pgtopo backup` (full, from the standby, lz4, retention)", full),
        Row("method pgbackrest: full backup / bare `pg_basebackup` (the same repetition's)", full_ratio, "×"),
        Row("method pgbackrest: `pgtopo backup --type incr` after a tenth of the rows changed", incr),
        Row("method pgbackrest: `pgtopo backups --output json`", rest_listed),
        Row("method pgbackrest: `pgtopo apply` of a new 1+1 restored from the newest (incremental) backup",
            rest_restored, rss_mb=rest_rss),
        Row("method pgbackrest: rows missing in the restored cluster", rest_missing, "rows", Target("==", 0, "max")),
    ]
    sec.notes.append(
        f"One 1+1 cluster with `backup: {{repository: {{volume: …}}, retention: {{full: 2}}}}` holding "
        f"`pgbench -i -s {scale}` ({rows} rows; backups of {min(sizes):.0f}–{max(sizes):.0f} MB as listed). Per "
        "repetition a bare pg_basebackup, then `pgtopo backup`, then `pgtopo backups`; afterwards, per repetition, a "
        "new 1+1 cluster restored from the newest backup by one `pgtopo apply` (restore job, recovery to the end of "
        "the archive, promotion, the replica cloned and streaming), its rows counted, then destroyed. Then the same "
        f"with `method: pgbackrest` on a second cluster: per repetition a full backup ({min(rest_sizes):.0f}–"
        f"{max(rest_sizes):.0f} MB in the repository, lz4), an UPDATE of a tenth of the rows, an incremental backup; "
        "the restores start from the newest, incremental, backup.")
    return sec
