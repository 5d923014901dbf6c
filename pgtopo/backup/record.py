"""A base backup's record, and the facts it is made from: pure.

The record is the JSON file (layout.MANIFEST) that `pgtopo backup` writes last into a backup's
directory, before the directory is renamed from `<label>.partial` to `<label>`: a directory with
a record and without the suffix is a complete backup, and nothing else is.  Made by backup.take
from what pg_basebackup left (backup_label, backup_manifest); read back by backup.listing;
listed by `pgtopo backups` (backup.document).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from pgtopo.backup.spec import ANY_LABEL_PATTERN, LSN_PATTERN

LABEL_FORMAT = "%Y%m%dT%H%M%SZ"  # spec.LABEL_PATTERN: the backup's start, UTC
SEGMENT_PATTERN = r"^[0-9A-F]{24}$"  # a WAL segment file's name: timeline, log, segment

Label = Annotated[str, StringConstraints(pattern=ANY_LABEL_PATTERN)]
Lsn = Annotated[str, StringConstraints(pattern=LSN_PATTERN)]


def label_of(moment: datetime) -> str:
    """A backup's label: the moment it started, UTC, to the second (20261201T030000Z)."""
    return moment.astimezone(UTC).strftime(LABEL_FORMAT)


class BackupRecord(BaseModel):
    """One complete base backup, as `pgtopo backups` lists it."""

    # a record a newer pgtopo wrote may say more: what this one knows is still read
    model_config = ConfigDict(frozen=True, extra="ignore")

    label: Label = Field(description="The backup's name in the repository: its start, UTC (pgBackRest's own "
                                     "labels for method pgbackrest).")
    type: Literal["full", "incr", "diff"] = Field(
        description="full: a complete copy of the data directory; incr: the files changed since the backup before "
                    "(pgbackrest only; restoring it needs the backups it refers to, which retention keeps).")
    method: Literal["native", "pgbackrest"] = Field(description="native: pg_basebackup; pgbackrest: pgBackRest.")
    cluster: str
    source: str = Field(description="The node it was taken from.")
    backup_from: Literal["primary", "standby"] = Field(description="What that node was (backup_label's BACKUP FROM).")
    start_lsn: Lsn = Field(description="Where recovery from it starts replaying WAL.")
    start_wal: Annotated[str, StringConstraints(pattern=SEGMENT_PATTERN)] = Field(
        description="The WAL segment file of start_lsn: archived WAL before it is not needed by this backup.")
    stop_lsn: Lsn = Field(description="The first moment it is consistent at: recovery must replay at least to here.")
    timeline: int = Field(ge=1, description="The timeline it started on.")
    start_time: AwareDatetime
    stop_time: AwareDatetime
    size_bytes: int = Field(ge=0, description="Space it takes in the repository (its disk usage).")
    system_identifier: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] = Field(
        description="The PostgreSQL cluster's system identifier (a string: JSON numbers lose its digits).")
    server_major: int = Field(ge=9, description="The PostgreSQL major of the server it was taken from.")
    pgtopo_version: str


def record_text(record: BackupRecord) -> str:
    """The record as its file holds it: one line of JSON (the listing job prints one per line)."""
    return json.dumps(record.model_dump(mode="json"), separators=(",", ":"))


def read_record(text: str) -> BackupRecord | None:
    """A record from its file's text; None when it is damaged (such a backup is not listed)."""
    try:
        return BackupRecord.model_validate_json(text)
    except ValidationError:
        return None


@dataclass(frozen=True)
class LabelFacts:
    """What PostgreSQL's backup_label says about a base backup's start."""

    start_lsn: str
    start_wal: str
    timeline: int
    backup_from: Literal["primary", "standby"]


_START = re.compile(r"^START WAL LOCATION: ([0-9A-F]{1,8}/[0-9A-F]{1,8}) \(file ([0-9A-F]{24})\)$", re.MULTILINE)
_TIMELINE = re.compile(r"^START TIMELINE: ([0-9]+)$", re.MULTILINE)
_FROM = re.compile(r"^BACKUP FROM: (primary|master|standby)$", re.MULTILINE)  # master: PostgreSQL 13


def parse_backup_label(text: str) -> LabelFacts:
    """backup_label's START WAL LOCATION (with its file), START TIMELINE and BACKUP FROM; a
    ValueError naming what is missing."""
    start, timeline, source = _START.search(text), _TIMELINE.search(text), _FROM.search(text)
    missing = [what for what, found in (("START WAL LOCATION", start), ("START TIMELINE", timeline),
                                        ("BACKUP FROM", source)) if found is None]
    if start is None or timeline is None or source is None:
        raise ValueError(f"backup_label has no {', '.join(missing)} line")
    backup_from: Literal["primary", "standby"] = "standby" if source.group(1) == "standby" else "primary"
    return LabelFacts(start.group(1), start.group(2), int(timeline.group(1)), backup_from)


def wal_end(manifest: str) -> str:
    """Where the WAL a backup needs ends: backup_manifest's WAL-Ranges, the End-LSN of the range
    on the newest timeline (a backup of a standby promoted meanwhile spans two).  A ValueError
    when the manifest says nothing about it."""
    try:
        ranges = json.loads(manifest)["WAL-Ranges"]
        newest = max(ranges, key=lambda r: int(r["Timeline"]))
        end = str(newest["End-LSN"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"backup_manifest has no readable WAL-Ranges ({type(exc).__name__}: {exc})") from None
    if not re.fullmatch(LSN_PATTERN, end):
        raise ValueError(f"backup_manifest's End-LSN is not an LSN: {end!r}")
    return end
