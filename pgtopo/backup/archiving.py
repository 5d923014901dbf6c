"""WAL archiving as the primary's pg_stat_archiver reports it, and when it counts as failing: pure.

Made by `backup.archiver` (observation reads it on the file's primary when the file has a
`backup:` block); read by documents.py (the status document's `backup.archiving`) and by the
CLI's `status --check`, which exits 1 while archiving fails (docs/backup.md).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime


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
    newest_backup: tuple[str, datetime] | None = None  # the newest complete backup: its label and end

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


def newest_backup(record: str | None, info: str | None) -> tuple[str, datetime] | None:
    """The newest complete backup of either method, by when it ended: `record` is the newest
    native backup's record (JSON), `info` pgBackRest's backup.info (its [backup:current] section
    holds one `label={JSON}` line per backup).  None when neither says anything readable."""
    found: list[tuple[datetime, str]] = []
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        doc = json.loads(record) if record else None
        if isinstance(doc, dict) and doc.get("label") and doc.get("stop_time"):
            found.append((datetime.fromisoformat(str(doc["stop_time"]).replace("Z", "+00:00")), str(doc["label"])))
    section = ""
    for line in (info or "").splitlines():
        if line.startswith("["):
            section = line.strip()
            continue
        label, sep, value = line.partition("=")
        if section != "[backup:current]" or not sep:
            continue
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            stop = json.loads(value).get("backup-timestamp-stop")
            if isinstance(stop, int):
                found.append((datetime.fromtimestamp(stop, UTC), label.strip()))
    if not found:
        return None
    stop, label = max(found)
    return label, stop


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "never"
