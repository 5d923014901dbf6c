"""What `pgtopo backup` decides, each decision with its reason: pure.

Which node a base backup is taken from, whether a backup is due (`--if-due`, the file's
`backup.schedule`), which backups retention expires and from which WAL segment on the archive is
kept.  Called by backup.take; tested with plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim

from pgtopo.backup.record import BackupRecord
from pgtopo.backup.spec import FullRetention, Retention, WindowRetention, window_delta
from pgtopo.errors import PgtopoError
from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology


@dataclass(frozen=True)
class Source:
    """The node a base backup is taken from, and why that one."""

    node: str
    reason: str


def choose_source(topo: Topology, obs: Observed) -> Source:
    """`from: prefer-standby`: the streaming standby closest to the primary (then by name), else
    the primary; `from: primary`: the primary.  The primary must answer as a primary: a backup
    of a cluster without one would copy a server nobody can say is the cluster's."""
    assert topo.backup is not None
    primary = obs.node(topo.primary).pg
    if primary is None or primary.in_recovery:
        what = "does not answer" if primary is None else "runs as a standby"
        raise PgtopoError(f"cannot back up cluster {topo.cluster}: its primary {topo.primary} {what}; "
                          "nothing was done", hint="see `pgtopo status`; `pgtopo apply` brings the cluster to "
                                                   "what the file says")
    if topo.backup.from_ == "primary":
        return Source(topo.primary, "the primary (from: primary)")
    standbys = sorted((topo.depth(n), n) for n in topo.replicas()
                      if _streams(obs.node(n), primary.system_identifier))
    if not standbys:
        return Source(topo.primary, "the primary: no standby streams (from: prefer-standby)")
    depth, node = standbys[0]
    closest = "a standby of the primary" if depth == 1 else f"a standby {depth} hops from the primary"
    return Source(node, f"{closest}, streaming (from: prefer-standby)")


def _streams(facts: NodeFacts, system_identifier: int) -> bool:
    pg = facts.pg
    return (pg is not None and pg.in_recovery and pg.system_identifier == system_identifier
            and pg.receiver is not None and pg.receiver.status == "streaming")


def due(schedule: str | None, newest: datetime | None, now: datetime) -> tuple[bool, str]:
    """`--if-due`: a backup is due when a time of the schedule (cron, UTC) has come since the
    newest complete backup started; always without a schedule or without a backup."""
    if schedule is None:
        return True, "the file has no backup.schedule: every run is due"
    if newest is None:
        return True, "no complete backup yet"
    next_time = next(CronSim(schedule, newest.astimezone(UTC)))
    when = next_time.strftime("%Y-%m-%d %H:%M UTC")
    if next_time <= now:
        return True, f"the scheduled time {when} has come since the newest backup ({_moment(newest)})"
    return False, (f"not due: the newest backup started {_moment(newest)}; the next scheduled time is {when} "
                   f"(schedule {schedule!r})")


def _moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def kept(records: Sequence[BackupRecord], retention: Retention, now: datetime, taken: str) -> list[BackupRecord]:
    """The backups retention keeps, oldest first.  {full: N}: the N newest; {window: D}: those
    started within D, and the newest one before it (recovery to the window's first moment starts
    from that one).  The backup `taken` (just taken) is always kept."""
    ordered = sorted(records, key=lambda r: (r.start_time, r.label))
    match retention:
        case FullRetention(full=count):
            keep = ordered[-count:]
        case WindowRetention(window=window):
            since = now - window_delta(window)
            older = [r for r in ordered if r.start_time < since]
            keep = older[-1:] + [r for r in ordered if r.start_time >= since]
    keep += [r for r in ordered if r.label == taken and r not in keep]
    return sorted(keep, key=lambda r: (r.start_time, r.label))


def expired(records: Sequence[BackupRecord], keep: Sequence[BackupRecord]) -> list[BackupRecord]:
    return [r for r in sorted(records, key=lambda r: (r.start_time, r.label)) if r not in keep]


def wal_cutoff(keep: Sequence[BackupRecord]) -> str | None:
    """The first archived WAL segment to keep: the start segment of the oldest backup kept;
    older segments serve no backup (pg_archivecleanup keeps .history files whatever their age)."""
    return min(keep, key=lambda r: (r.start_time, r.label)).start_wal if keep else None


def retention_text(retention: Retention) -> str:
    match retention:
        case FullRetention(full=count):
            return f"full: {count}"
        case WindowRetention(window=window):
            return f"window: {window}"
