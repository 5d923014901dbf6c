"""A cluster made from a backup of another (the file's `bootstrap.restore`): when apply restores
instead of initdb, what it says about it, and which backup it starts from.  Pure.

Called by plan.py (the primary's RESTORE action, the refusal of a restore over data, the note
once a cluster was restored) and by backup/restore.py (the choice among the manifests its job
read).  Carried out by execute.py through `backup.restore`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pgtopo.actions import Action, Kind, Wave
from pgtopo.backup.spec import ImmediateTarget, LsnTarget, NameTarget, Restore, Target, TimeTarget, repository_text
from pgtopo.observed import Observed
from pgtopo.spec import Topology


def target_text(target: Target | None) -> str:
    """Where recovery stops, as the plan says it."""
    match target:
        case TimeTarget(time=when):
            fraction = ".%f" if when.microsecond else ""
            return when.astimezone(UTC).strftime(f"%Y-%m-%d %H:%M:%S{fraction}+00")
        case LsnTarget(lsn=lsn):
            return f"LSN {lsn.upper()}"
        case NameTarget(name=name):
            return f"restore point {name!r}"
        case ImmediateTarget():
            return "the end of the backup (its first consistent moment)"
    return "the end of its archived WAL"


def restore_action(topo: Topology, node: str, wave: Wave) -> Action:
    """The primary's bootstrap when the file restores: the backup's copy, its WAL up to the
    target, the promotion; its replicas are cloned from it afterwards, as after an initdb."""
    restore = _restore(topo)
    source = restore.from_.cluster
    which = "latest backup" if restore.backup == "latest" else f"backup {restore.backup}"
    repo = repository_text(restore.from_.repository)
    return Action(Kind.RESTORE, node, f"no data anywhere in the cluster and the file's bootstrap restores: restore from "
                  f"{source}'s {which} ({repo}, read-only) to {target_text(restore.target)}, then promote; "
                  f"{source} itself is not touched", wave=wave)


def refusals(topo: Topology, obs: Observed) -> list[str]:
    """A `bootstrap.restore` only makes a cluster that has no data: one that has some is never
    restored over.  Refused, unless the state volume records that this cluster was restored (then
    the block may stay in the file: notes() says so)."""
    if topo.bootstrap is None or obs.restored_from is not None or not has_data(obs):
        return []
    holders = sorted(n.name for n in obs.nodes.values() if n.has_data)
    where = f"{', '.join(holders)} {'hold' if len(holders) > 1 else 'holds'} data" if holders else \
        "the state volume records its identity"
    source = topo.bootstrap.restore.from_.cluster
    return [f"bootstrap.restore: cluster {topo.cluster} already exists ({where}) and was not restored from a "
            f"backup; pgtopo restores only into a cluster with no data anywhere and never over data. Remove "
            f"bootstrap: from the file to keep this cluster, or choose a new cluster name to restore {source}'s "
            "backup into"]


def notes(topo: Topology, obs: Observed) -> list[str]:
    """The quiet word for a cluster made by a restore whose file keeps its `bootstrap:` block."""
    if topo.bootstrap is None or obs.restored_from is None or not has_data(obs):
        return []
    return [f"bootstrap.restore: nothing to restore; this cluster was restored from {restored_text(obs.restored_from)} "
            "and has data now"]


def has_data(obs: Observed) -> bool:
    return obs.system_identifier is not None or any(n.has_data for n in obs.nodes.values())


def _restore(topo: Topology) -> Restore:
    assert topo.bootstrap is not None, "only a file with bootstrap: restores"
    return topo.bootstrap.restore


# What the state volume records about a restore (state.ClusterState.restored_from): "CLUSTER LABEL".
def restored_marker(cluster: str, label: str) -> str:
    return f"{cluster} {label}"


def restored_text(marker: str) -> str:
    cluster, _, label = marker.partition(" ")
    return f"{cluster}'s backup {label}" if label else marker


@dataclass(frozen=True)
class BackupInfo:
    """A complete backup as its manifest (layout.MANIFEST) describes it."""

    label: str
    stop_time: datetime | None
    timeline: int | None = None
    system_identifier: int | None = None
    method: str = "native"  # or pgbackrest: who took it, who restores it


def parse_manifest(label: str, text: str) -> BackupInfo | None:
    """One manifest; None when it cannot be read (a backup without one is not complete)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, Mapping):
        return None
    return BackupInfo(label=str(doc.get("label") or label), stop_time=_time(doc.get("stop_time")),
                      timeline=_int(doc.get("timeline")), system_identifier=_int(doc.get("system_identifier")))


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


class NoBackup(Exception):
    """No backup fits the file's restore (the message says why)."""


def choose(backups: list[BackupInfo], restore: Restore) -> BackupInfo:
    """The backup a restore starts from: the label the file names; for `latest`, the newest one
    that ended before a time target (recovery can only stop after a backup's end), or simply the
    newest for other targets.  Raises NoBackup, saying what the repository holds."""
    source, repo = restore.from_.cluster, repository_text(restore.from_.repository)
    # oldest first: by when they ended (labels of the two methods do not sort together)
    listed = sorted(backups, key=lambda b: (b.stop_time or datetime.min.replace(tzinfo=UTC), b.label))
    if not listed:
        raise NoBackup(f"{repo} holds no complete backup of cluster {source} (`pgtopo backup` takes one)")
    labels = ", ".join(b.label for b in listed)
    if restore.backup != "latest":
        for b in listed:
            if b.label == restore.backup:
                return b
        raise NoBackup(f"{repo} holds no complete backup {restore.backup} of cluster {source} (it holds {labels})")
    if isinstance(restore.target, TimeTarget):
        when = restore.target.time
        before = [b for b in listed if b.stop_time is not None and b.stop_time < when]
        if not before:
            raise NoBackup(f"no backup of cluster {source} in {repo} ended before {target_text(restore.target)} "
                           f"(it holds {labels}): recovery can only stop after the end of the backup it starts from")
        return before[-1]
    return listed[-1]
