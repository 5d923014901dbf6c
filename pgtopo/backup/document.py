"""What `pgtopo backups` prints: the cluster's complete backups and the recoverable window, as a
frozen pydantic document (`--output json`; schemas/backups.schema.json, `make schema`) and as text
drawn from it.  Pure.

Built by backup.listing from what the repository holds and the primary's archiver; called by the
CLI; its schema by schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pgtopo import __version__
from pgtopo.backup.record import BackupRecord

EndFrom = Literal["archiver", "wal-file", "backup"]
BACKUPS_FORMAT: Final = 1
BACKUPS_KIND: Final = "pgtopo-backups"


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecoverableWindow(_Document):
    """The moments a restore can reach: from the end of the oldest backup to the newest WAL archived."""

    start: AwareDatetime = Field(description="The oldest backup's stop time: the first consistent moment.")
    end: AwareDatetime = Field(description="The newest archived WAL (or the newest backup's stop time when later).")
    end_from: EndFrom = Field(
        description="Where `end` comes from: the primary's pg_stat_archiver.last_archived_time, the newest "
                    "archived segment file's modification time, or the newest backup's stop time.")


class BackupsDocument(_Document):
    """What `pgtopo backups --output json` prints."""

    model_config = ConfigDict(title="pgtopo backups (backups --output json)")

    format: Literal[1]
    kind: Literal["pgtopo-backups"]
    pgtopo_version: str
    cluster: str
    repository: str = Field(description="`volume NAME` or `path /DIR`.")
    backups: tuple[BackupRecord, ...] = Field(description="The complete backups, oldest first.")
    newest_wal: str | None = Field(description="The newest archived WAL segment file; null: none archived.")
    window: RecoverableWindow | None = Field(description="null: no backup.")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2)


def recoverable_window(records: Sequence[BackupRecord], wal_time: datetime | None,
                       archived_time: datetime | None) -> RecoverableWindow | None:
    """From the oldest backup's stop time to the newest WAL archived: the primary's own word
    (pg_stat_archiver) when it answered, else the newest segment file's time; never before the
    newest backup's stop time (a backup holds the WAL up to its stop)."""
    if not records:
        return None
    oldest = min(records, key=lambda r: r.start_time)
    newest = max(records, key=lambda r: r.stop_time)
    end: datetime = newest.stop_time
    end_from: EndFrom = "backup"
    source: EndFrom = "archiver" if archived_time is not None else "wal-file"
    newest_wal = archived_time if archived_time is not None else wal_time
    if newest_wal is not None and newest_wal > end:
        end, end_from = newest_wal, source
    return RecoverableWindow(start=oldest.stop_time, end=end, end_from=end_from)


def backups_document(cluster: str, repository: str, records: Sequence[BackupRecord], newest_wal: str | None,
                     window: RecoverableWindow | None) -> BackupsDocument:
    return BackupsDocument(format=BACKUPS_FORMAT, kind=BACKUPS_KIND, pgtopo_version=__version__, cluster=cluster,
                           repository=repository, backups=tuple(records), newest_wal=newest_wal, window=window)


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def text_lines(doc: BackupsDocument) -> list[str]:
    """The document for people: a table of backups, newest last, then the window (UTC)."""
    if not doc.backups:
        return [f"cluster {doc.cluster}: no complete backup in {doc.repository}"]
    header = ("LABEL", "TYPE", "START LSN", "STOP LSN", "TL", "STARTED (UTC)", "STOPPED (UTC)", "SIZE", "SOURCE")
    rows = [header] + [(r.label, r.type, r.start_lsn, r.stop_lsn, str(r.timeline), _when(r.start_time),
                        _when(r.stop_time), size_text(r.size_bytes), f"{r.source} ({r.backup_from})")
                       for r in doc.backups]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if doc.window is not None:
        source = {"archiver": "last WAL archived, as the primary reports it",
                  "wal-file": "newest archived WAL file", "backup": "newest backup's end"}[doc.window.end_from]
        lines.append(f"recoverable: {_when(doc.window.start)} to {_when(doc.window.end)} UTC ({source})")
    return lines


@dataclass
class Outcome:
    """What one `pgtopo backup` did (backup.take fills it in as it goes)."""

    due: bool
    reason: str
    record: BackupRecord | None = None
    seconds: float = 0.0
    removed: tuple[str, ...] = ()  # .partial directories an interrupted run left
    expired: tuple[str, ...] = ()  # labels retention removed
    cutoff: str | None = None  # the oldest archived WAL segment kept
    wal_removed: int = 0
    kept: tuple[str, ...] = ()
    retention: str = ""


def outcome_lines(outcome: Outcome) -> list[str]:
    """`pgtopo backup`'s last lines: the backup (size, duration, rate), then retention."""
    r = outcome.record
    if r is None:
        return [outcome.reason]
    rate = r.size_bytes / 1e6 / outcome.seconds if outcome.seconds > 0 else 0.0
    lines = [f"backup {r.label} taken from {r.source} ({r.backup_from}): {size_text(r.size_bytes)} in "
             f"{outcome.seconds:.1f} s ({rate:.1f} MB/s); WAL {r.start_lsn} to {r.stop_lsn} on timeline {r.timeline}"]
    if outcome.reason:
        lines.insert(0, f"due: {outcome.reason}")
    expired = f"expired {', '.join(outcome.expired)}" if outcome.expired else "nothing expired"
    lines.append(f"retention ({outcome.retention}): {len(outcome.kept)} backup(s) kept, {expired}")
    if outcome.wal_removed:
        lines.append(f"removed {outcome.wal_removed} archived WAL file(s) before {outcome.cutoff}")
    return lines
