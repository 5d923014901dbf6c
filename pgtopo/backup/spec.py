"""The file's `backup:` block (archiving, base backups, retention, schedule) and `bootstrap:`
block (a new cluster restored from a backup, to a point in time).  Pure models, imported by
`pgtopo.spec`; no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

CLUSTER_PATTERN = r"^[a-z][a-z0-9-]{0,29}$"  # spec.NAME_PATTERN (a test keeps the two equal)
VOLUME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"  # Docker's volume names
PATH_PATTERN = r"^/[^\x00-\x1f\x7f]{0,4095}$"  # absolute, no control characters
LABEL_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"  # a native backup's label: its start, UTC (20261201T030000Z)
# pgBackRest's labels: a full backup's start (20261201-030000F), an incremental's after its full's
PGBACKREST_LABEL_PATTERN = r"^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$"
ANY_LABEL_PATTERN = r"^([0-9]{8}T[0-9]{6}Z|[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?)$"
RESTORE_BACKUP_PATTERN = r"^(latest|[0-9]{8}T[0-9]{6}Z|[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?)$"
LSN_PATTERN = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"
WINDOW = re.compile(r"^([1-9][0-9]{0,4})(h|d)$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class VolumeRepository(_Frozen):
    """A Docker volume pgtopo creates (labelled) and never removes."""

    volume: Annotated[str, StringConstraints(pattern=VOLUME_PATTERN)]


class PathRepository(_Frozen):
    """A directory of the Docker host, bind-mounted (it must exist, writable by the image's postgres user)."""

    path: Annotated[str, StringConstraints(pattern=PATH_PATTERN)]


Repository = VolumeRepository | PathRepository


def repository_text(repo: Repository) -> str:
    return f"volume {repo.volume}" if isinstance(repo, VolumeRepository) else f"path {repo.path}"


class FullRetention(_Frozen):
    """Keep this many full backups (and the WAL from the oldest one's start on)."""

    full: Annotated[int, Field(ge=1, le=1000)]


def _window(value: str) -> str:
    if not isinstance(value, str) or not WINDOW.fullmatch(value):
        raise ValueError(f"must be a number of hours or days, e.g. 36h or 14d (got {value!r})")
    return value


def window_delta(text: str) -> timedelta:
    match = WINDOW.fullmatch(text)
    assert match is not None
    return timedelta(**{"hours" if match.group(2) == "h" else "days": int(match.group(1))})


class WindowRetention(_Frozen):
    """Keep what recovery to any moment of the last `window` needs: the backups started in it and
    the newest one before it."""

    window: Annotated[str, AfterValidator(_window)]


Retention = FullRetention | WindowRetention


def _cron(value: str) -> str:
    try:
        if len(value.split()) != 5:  # cronsim also takes six, seconds first
            raise CronSimError("Wrong number of fields")
        CronSim(value, datetime(2000, 1, 1))
    except (CronSimError, ValueError) as exc:
        raise ValueError(f"must be a cron expression of five fields, e.g. \"0 3 * * *\" ({exc})") from None
    return value


class Backup(_Frozen):
    """Continuous WAL archiving and base backups into a repository (docs/backup.md)."""

    method: Literal["native", "pgbackrest"] = Field(
        default="native", description="native: pg_basebackup and an archive command (any image); pgbackrest: "
                                      "pgBackRest 2.41 or later in the image (full and incremental backups).")
    repository: Repository = Field(description="Where backups and archived WAL go: {volume: NAME} or {path: /DIR}.")
    from_: Literal["prefer-standby", "primary"] = Field(
        default="prefer-standby", alias="from",
        description="Take base backups from a streaming standby when one exists, or always from the primary.")
    retention: Retention = Field(default_factory=lambda: FullRetention(full=2),
                                 description="{full: N} backups, or {window: 14d}; expired after each backup.")
    schedule: Annotated[str, AfterValidator(_cron)] | None = Field(
        default=None, description="Cron expression (UTC) that `pgtopo backup --if-due` follows; no daemon runs it.")


def utc_now() -> datetime:
    """The clock a restore target is checked against (tests set it)."""
    return datetime.now(UTC)


def _past(value: datetime) -> datetime:
    if value > utc_now():
        raise ValueError(f"is in the future ({value.isoformat()}): a restore can only reach WAL written already")
    return value


class TimeTarget(_Frozen):
    time: Annotated[AwareDatetime, AfterValidator(_past)] = Field(
        description="Recover up to this moment (with its time zone, e.g. 2026-11-26T10:00:00Z).")


class LsnTarget(_Frozen):
    lsn: Annotated[str, StringConstraints(pattern=LSN_PATTERN)]


class NameTarget(_Frozen):
    name: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,63}$")] = Field(
        description="A restore point made with pg_create_restore_point().")


class ImmediateTarget(_Frozen):
    immediate: Literal[True] = Field(description="Stop as soon as the backup is consistent.")


Target = TimeTarget | LsnTarget | NameTarget | ImmediateTarget


class RestoreSource(_Frozen):
    cluster: Annotated[str, StringConstraints(pattern=CLUSTER_PATTERN)] = Field(
        description="The cluster whose backups to restore (its name in the repository).")
    repository: Repository


def _backup_label(value: str) -> str:
    if not re.fullmatch(RESTORE_BACKUP_PATTERN, value):
        raise ValueError(f"must be latest or a label as `pgtopo backups` lists it: 20261201T030000Z (native) or "
                         f"20261201-030000F (pgBackRest; an incremental's 20261201-030000F_20261202-030000I) "
                         f"(got {value!r})")
    return value


class Restore(_Frozen):
    """Create this cluster from a backup of another: base backup, then WAL up to the target."""

    from_: RestoreSource = Field(alias="from")
    target: Target | None = Field(default=None, description="Absent: every archived WAL (the end of the archive).")
    backup: Annotated[str, AfterValidator(_backup_label)] = Field(
        default="latest", description="`latest` (the newest backup that ends before the target) or a label.")


class Bootstrap(_Frozen):
    """How the cluster's data is made when no node has any: initdb when absent."""

    restore: Restore


def target_settings(target: Target | None) -> dict[str, str]:
    """The recovery_target_* settings of a restore (recovery_target_action and timeline apart)."""
    match target:
        case TimeTarget(time=when):
            return {"recovery_target_time": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")}
        case LsnTarget(lsn=lsn):
            return {"recovery_target_lsn": lsn.upper()}
        case NameTarget(name=name):
            return {"recovery_target_name": name}
        case ImmediateTarget():
            return {"recovery_target": "immediate"}
    return {}
