"""WAL archiving as the primary's pg_stat_archiver reports it, and when it counts as failing: pure.

Made by `backup.archiver` (observation reads it on the file's primary when the file has a
`backup:` block); read by documents.py (the status document's `backup.archiving`) and by the
CLI's `status --check`, which exits 1 while archiving fails (docs/backup.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ArchiverFacts:
    """pg_stat_archiver of one server, and the archive_mode it runs with."""

    node: str
    archive_mode: str
    archived_count: int = 0
    last_archived_wal: str | None = None
    last_archived_time: datetime | None = None
    failed_count: int = 0
    last_failed_wal: str | None = None
    last_failed_time: datetime | None = None

    @property
    def failing(self) -> bool:
        """The last attempt failed: a failure newer than the last success (PostgreSQL retries the
        same segment until it succeeds, and WAL piles up in pg_wal meanwhile)."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time


def problem(facts: ArchiverFacts | None) -> str | None:
    """What `status` reports as a problem about archiving; None when there is none."""
    if facts is None or not facts.failing:
        return None
    assert facts.last_failed_time is not None
    since = f"last success {_when(facts.last_archived_time)}" if facts.last_archived_time else "none archived yet"
    return (f"{facts.node}: WAL archiving fails: {facts.last_failed_wal} could not be archived "
            f"(last attempt {_when(facts.last_failed_time)}; {facts.failed_count} failures, {since}); "
            "WAL piles up in pg_wal until it succeeds: see the server's log for the archive command's error")


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "never"
