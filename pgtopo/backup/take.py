"""`pgtopo backup`: a base backup of the cluster into its repository, then retention.

Called by the CLI.  Under the cluster's lock (lock.py), so an apply and another backup never
interleave with it: the backup jobs a killed run left are removed and its .partial directories
too; with `--if-due`, the schedule is asked (policy.due); the cluster is observed and the source
chosen (policy.choose_source); pg_basebackup runs in a job tethered to this process
(jobs.BACKUP_SCRIPT); the record is made from backup_label and backup_manifest and written last
(jobs.FINISH_SCRIPT), which makes the backup complete; then, in the same job, retention expires
backups and archived WAL (policy.kept, jobs.EXPIRE_SCRIPT).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pgtopo import __version__, docker_ops, labels as L, pg_ops, waits
from pgtopo.backup import archiving, jobs, layout, listing, pgbackrest_run, policy, repository
from pgtopo.backup.document import Outcome
from pgtopo.backup.record import BackupRecord, LabelFacts, label_of, parse_backup_label, record_text, wal_end
from pgtopo.backup.spec import repository_text
from pgtopo.containers import ContainerSpec
from pgtopo.errors import DockerError, PgtopoError, SafetyRefusal
from pgtopo.lock import cluster_lock
from pgtopo.observe import Snapshot, observe
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker


REPLAY_WAIT = 30.0  # seconds a standby is given to replay the checkpoint made ahead of its backup


@dataclass
class Events:
    """What the run reports as it goes: a line (`info`), and live progress (`progress(node, text)`,
    an empty text clears it)."""

    info: Callable[[str], None] = lambda message: None
    progress: Callable[[str, str], None] = lambda node, text: None


def take(client: "docker.DockerClient", topo: Topology, lock_timeout: float, events: Events,
         if_due: bool = False, kind: str = "full") -> Outcome:
    """A backup (unless `if_due` and the schedule says it is not due), then retention.  `kind`:
    full, or incr (method pgbackrest only: the CLI refuses it for native)."""
    assert topo.backup is not None
    if topo.backup.method == "pgbackrest":
        pgbackrest_run.check_image(client, topo)
    with cluster_lock(client, topo.cluster, topo.image, lock_timeout, events.info):
        _remove_jobs(client, topo)
        repository.ensure(client, topo)
        contents = listing.read(client, topo, tidy=True)
        for name in contents.removed:
            events.info(f"removed {name}: left by an interrupted backup")
        newest = contents.records[-1].start_time if contents.records else None
        due, reason = policy.due(topo.backup.schedule, newest, datetime.now(UTC)) if if_due else (True, "")
        if not due:
            return Outcome(False, reason, removed=contents.removed)
        snapshot = observe(client, topo)
        _refuse_foreign(topo, snapshot, contents.records)
        if topo.backup.method == "pgbackrest" and (failing := archiving.problem(snapshot.observed.archiver)):
            raise PgtopoError(f"{failing}; a pgBackRest backup waits until its WAL is archived, so none was started",
                              hint="fix archiving first (`pgtopo status` shows it; a full repository: free space), "
                                   "then run `pgtopo backup` again")
        source = policy.choose_source(topo, snapshot.observed)
        events.info(f"backup of cluster {topo.cluster} from {source.node}: {source.reason}")
        started = time.monotonic()
        if topo.backup.method == "pgbackrest":
            outcome = _pgbackrest_backup(client, topo, source.node, kind, contents, events)
            outcome.reason = reason
            outcome.seconds = time.monotonic() - started
            return outcome
        if source.node != topo.primary:
            _restartpoint_ahead(topo, snapshot, source.node, events)
        record = _base_backup(client, topo, snapshot, source.node, {r.label for r in contents.records}, events)
        outcome = Outcome(True, reason, record, removed=contents.removed)
        _finish(client, topo, (*contents.records, record), record, outcome)
        outcome.seconds = time.monotonic() - started
        return outcome


def _pgbackrest_backup(client: "docker.DockerClient", topo: Topology, node: str, kind: str,
                       before: jobs.Contents, events: Events) -> Outcome:
    """pgBackRest's backup (backup.pgbackrest_run); its retention ran with it: what it expired is
    what was listed before and is not now."""
    assert topo.backup is not None
    began = time.monotonic()

    def progress() -> None:
        events.progress(node, f"backup ({kind}, pgBackRest): {time.monotonic() - began:.0f} s")

    record, after = pgbackrest_run.take(
        client, topo, node, kind, lambda spec, prepare: _run_tethered(client, spec, progress, prepare))
    events.progress(node, "")
    outcome = Outcome(True, "", record)
    now = {r.label for r in after.records}
    outcome.expired = tuple(r.label for r in before.records if r.label not in now)
    outcome.kept = tuple(r.label for r in after.records)
    outcome.retention = policy.retention_text(topo.backup.retention)
    return outcome


def _refuse_foreign(topo: Topology, snapshot: Snapshot, records: tuple[BackupRecord, ...]) -> None:
    """Backups of another cluster under this cluster's name (one of the same name, destroyed with
    its volumes and made again): retention would expire them and their WAL; refused, untouched."""
    sysid = snapshot.observed.system_identifier
    foreign = sorted({r.system_identifier for r in records if sysid is not None and r.system_identifier != str(sysid)})
    if foreign:
        assert topo.backup is not None
        where = repository_text(topo.backup.repository)
        raise SafetyRefusal(f"the repository ({where}) holds backups of {topo.cluster} with another system identifier "
                            f"({', '.join(foreign)}; this cluster is {sysid}): an earlier cluster of this name, whose "
                            "backups and WAL this one must not expire; nothing was changed",
                            hint=f"move {topo.cluster}/ in the repository aside, or give backup.repository another "
                                 "volume or path")


def _remove_jobs(client: "docker.DockerClient", topo: Topology) -> None:
    """The backup jobs a killed pgtopo left (a tethered one may still be stopping), and stopped
    listing jobs; a running listing job is another `pgtopo backups`, left alone."""
    for c in docker_ops.list_containers(client, f"{topo.cluster}-"):
        labels = c.get("Labels") or {}
        job = labels.get(f"{L.PREFIX}.job")
        if labels.get(L.CLUSTER) == topo.cluster and labels.get(L.ROLE) == "helper" and job in jobs.BACKUP_JOBS \
                and (job == "backup" or c.get("State") != "running"):
            docker_ops.remove_container(client, c["Id"])


def _restartpoint_ahead(topo: Topology, snapshot: Snapshot, node: str, events: Events) -> None:
    """A backup of a standby starts at its last restartpoint, which only a checkpoint of the
    primary, replayed, moves (an idle primary may not make one for long): a CHECKPOINT on the
    primary, then wait until the standby has replayed it, so the backup needs WAL from now on
    only.  Should that fail, the backup starts from an older restartpoint: still a backup."""
    primary, standby = snapshot.endpoints.get(topo.primary), snapshot.endpoints.get(node)
    if primary is None or standby is None:
        return
    try:
        pg_ops.checkpoint(primary)
        target = pg_ops.flush_lsn(primary)
        if pg_ops.wait_replayed_past(standby, target - 1, time.monotonic() + REPLAY_WAIT) is None:
            events.info(f"{node} has not replayed the primary's checkpoint within {REPLAY_WAIT:.0f} s: "
                        "the backup starts from its previous restartpoint")
    except PgtopoError as exc:
        events.info(f"a checkpoint ahead of the backup failed ({exc.message}): the backup starts from "
                    f"{node}'s previous restartpoint")


def _fresh_label(taken: set[str]) -> tuple[str, datetime]:
    """The start moment and its label, one no backup has (labels are to the second)."""
    def fresh() -> tuple[str, datetime] | None:
        now = datetime.now(UTC)
        return (label_of(now), now) if label_of(now) not in taken else None

    found = waits.wait_until(fresh, time.monotonic() + 2.0, waits.DOCKER)
    if found is None:
        raise PgtopoError("no fresh backup label: the clock does not move", hint="check the clock of this host")
    return found


def _base_backup(client: "docker.DockerClient", topo: Topology, snapshot: Snapshot, node: str, taken: set[str],
                 events: Events) -> BackupRecord:
    label, start = _fresh_label(taken)
    pg = snapshot.observed.node(node).pg
    assert pg is not None
    ep = snapshot.endpoints.get(node)
    seen: list[bool] = []  # has the copy been seen under way yet
    output = _run_tethered(client, jobs.backup_job(topo, node, label), lambda: _progress(ep, node, events, seen))
    events.progress(node, "")
    stop = datetime.now(UTC)
    sizes = jobs.tagged(output, "pgtopo-size")
    size = int(sizes[-1]) * 1024 if sizes and sizes[-1].isdigit() else 0
    parsed = None
    if (printed := jobs.results(output)) is not None:
        with contextlib.suppress(PgtopoError):  # a tail cut short: read the files themselves
            parsed = _parse_results(label, *printed)
    facts, end = parsed or _read_results(client, topo, label)
    record = BackupRecord(label=label, type="full", method="native", cluster=topo.cluster, source=node,
                          backup_from=facts.backup_from, start_lsn=facts.start_lsn, start_wal=facts.start_wal,
                          stop_lsn=end, timeline=facts.timeline, start_time=start, stop_time=stop, size_bytes=size,
                          system_identifier=str(pg.system_identifier), server_major=pg.server_version // 10000,
                          pgtopo_version=__version__)
    return record


def _progress(ep: pg_ops.Endpoint | None, node: str, events: Events, seen: list[bool]) -> None:
    """pg_stat_progress_basebackup on the source; once the copy is done, the flush and the check."""
    try:
        row = pg_ops.basebackup_progress(ep, jobs.APPLICATION_NAME) if ep is not None else None
    except PgtopoError:
        return
    if row is None:
        events.progress(node, "backup: flushing and verifying the copy" if seen else "backup: starting")
        return
    seen[:] = [True]
    phase, streamed, total = row
    events.progress(node, f"backup: {phase}, {streamed / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))


def _run_tethered(client: "docker.DockerClient", spec: ContainerSpec, progress: Callable[[], None],
                  prepare: Callable[[str], None] | None = None) -> str:
    """Run a job whose stdin this process holds (docker_ops.tether) to its end; its output's tail.
    Not docker_ops.run_job: the tether must be attached before the start.  A job is awaited by
    asking the engine every waits.JOB_END seconds, reporting its progress every waits.PROGRESS.
    `prepare(container id)` runs between its creation and its start (files it needs)."""
    cid = docker_ops.create_container(client, spec)
    try:
        if prepare is not None:
            prepare(cid)
        with docker_ops.tether(client, cid):
            shown = [0.0]  # when progress was last shown: every waits.PROGRESS seconds, the end asked for more often

            def exited() -> int | None:
                state = docker_ops.inspect_container(client, cid).get("State") or {}
                if state.get("Running"):
                    if time.monotonic() - shown[0] >= waits.PROGRESS:
                        shown[0] = time.monotonic()
                        progress()
                    return None
                return int(state.get("ExitCode", -1))

            code = waits.wait_until(exited, float("inf"), waits.JOB_END)
        output = docker_ops.last_lines(client, cid, 80)
        if code != 0:
            tail = "\n".join(output.splitlines()[-8:])
            raise DockerError(f"the backup job failed (exit {code}):\n{tail}",
                              hint="fix the cause shown above, then run `pgtopo backup` again (what it left "
                                   "is removed first)")
        return output
    finally:
        docker_ops.remove_container(client, cid)


def _read_results(client: "docker.DockerClient", topo: Topology, label: str) -> tuple[LabelFacts, str]:
    """backup_label and backup_manifest of the copy, read through a helper (read-only): when the
    job's output did not carry them (jobs.results)."""
    assert topo.backup is not None
    partial = layout.backup_dir(topo.cluster, label) + layout.PARTIAL
    mounts = (layout.repository_mount(topo.backup.repository, read_only=True),)
    with docker_ops.helper(client, topo.image, mounts, L.labels(topo.cluster, "helper"),
                           L.Names(topo.cluster).helper()) as hid:
        label_text = docker_ops.read_file(client, hid, f"{partial}/backup_label")
        manifest = docker_ops.read_file(client, hid, f"{partial}/backup_manifest")
    if label_text is None or manifest is None:
        return _parse_results(label, None, None)
    return _parse_results(label, label_text.decode(errors="replace"), manifest.decode(errors="replace"))


def _parse_results(label: str, label_text: str | None, manifest: str | None) -> tuple[LabelFacts, str]:
    try:
        if label_text is None or manifest is None:
            raise ValueError("backup_label or backup_manifest is missing")
        return parse_backup_label(label_text), wal_end(manifest)
    except ValueError as exc:
        raise PgtopoError(f"the backup {label} is not usable: {exc}; it was not made complete",
                          hint="run `pgtopo backup` again (the incomplete copy is removed first)") from exc


def _finish(client: "docker.DockerClient", topo: Topology, records: tuple[BackupRecord, ...], record: BackupRecord,
            outcome: Outcome) -> None:
    """The record written, which makes the backup complete; then retention: the backups it no
    longer keeps, and the archived WAL older than the oldest kept.  One job (jobs.finish_job)."""
    assert topo.backup is not None
    keep = policy.kept(records, topo.backup.retention, datetime.now(UTC), record.label)
    gone = policy.expired(records, keep)
    outcome.cutoff = policy.wal_cutoff(keep)
    spec = jobs.finish_job(topo, record.label, record_text(record), [r.label for r in gone], outcome.cutoff)
    output = docker_ops.run_job(client, spec, timeout=3600)
    outcome.expired = tuple(jobs.tagged(output, "pgtopo-expired"))
    counts = jobs.tagged(output, "pgtopo-wal-removed")
    outcome.wal_removed = int(counts[-1]) if counts and counts[-1].strip().isdigit() else 0
    outcome.kept = tuple(r.label for r in keep)
    outcome.retention = policy.retention_text(topo.backup.retention)
