"""The one-shot containers of `pgtopo backup` and `pgtopo backups`: what each runs, and with
which mounts.  Pure (like desired.py's jobs): scripts are fixed POSIX sh text, every variable part
a positional argument.

Each is a helper by its labels (role=helper, job=backup…): one a killed pgtopo left stopped is
removed by the next apply, backup or destroy; `pgtopo backup` also removes one still running
(under the cluster's lock nobody else takes a backup).  Called by backup.take and backup.listing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pgtopo import conninfo as conninfo_text, desired, labels as L
from pgtopo.backup import layout
from pgtopo.backup.record import BackupRecord, read_record
from pgtopo.containers import ContainerSpec, Mount
from pgtopo.spec import Topology

APPLICATION_NAME = "pgtopo-backup"  # pg_stat_progress_basebackup shows the backup's progress under it
BACKUP_JOBS = ("backup", "backup-list", "backup-finish", "backup-expire")  # backup-expire: an older pgtopo's

# pg_basebackup into <label>.partial, tethered to pgtopo (docker_ops.tether): pgtopo killed, the
# engine closes the job's stdin, `cat` ends and pg_basebackup is stopped, so no copy goes on
# loading the source behind the next run's back.  One flush of the tree, then pg_verifybackup
# (checksums of every file, and the WAL it needs) when the image has it; last its disk usage,
# backup_label and the manifest's WAL-Ranges (what the record needs: results()).
BACKUP_SCRIPT = r"""
set -eu
exec 3<&0  # a background list's stdin is /dev/null: the tether goes to it as fd 3
dir="$1"; conninfo="$2"
pg_basebackup -D "$dir" -Fp -X stream -c fast --no-sync -d "$conninfo" </dev/null & pid=$!
( cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null ) &
rc=0; wait "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
sync
if command -v pg_verifybackup >/dev/null 2>&1; then pg_verifybackup -q "$dir"; fi
echo "pgtopo-size $(du -sk "$dir" | cut -f1)"
sed 's/^/pgtopo-label /' "$dir/backup_label"
sed -n '/^"WAL-Ranges": \[$/,/^\],$/s/^/pgtopo-ranges /p' "$dir/backup_manifest"
"""

# The cluster's complete backups (a directory with a record, not .partial): one line per record,
# then the newest archived WAL segment (segment names grow with time; a glob lists them in order)
# and its mtime.  With "tidy": first remove the .partial directories a killed run left.
LIST_SCRIPT = r"""
set -eu
dir="$1"; tidy="$2"; manifest="$3"
if [ "$tidy" = tidy ]; then
  for d in "$dir"/base/*.partial; do
    if [ -e "$d" ]; then rm -rf "$d"; echo "pgtopo-removed ${d##*/}"; fi
  done
  sync
fi
for m in "$dir"/base/*/"$manifest"; do
  case "$m" in *.partial/*) continue ;; esac
  if [ -f "$m" ]; then printf 'pgtopo-record '; tr -d '\n' < "$m"; echo; fi
done
newest=""
for f in "$dir"/wal/*; do
  case "${f##*/}" in *.*|"*") continue ;; esac
  newest="$f"
done
if [ -n "$newest" ]; then echo "pgtopo-wal ${newest##*/} $(stat -c %Y "$newest")"; fi
"""

# The record goes in last, flushed, then the rename makes the backup complete, flushed too.
FINISH_SCRIPT = r"""
set -eu
base="$1"; label="$2"; manifest="$3"; record="$4"
tmp="$base/$label.partial"
printf '%s\n' "$record" > "$tmp/$manifest"
sync
mv "$tmp" "$base/$label"
sync
"""

# Retention: each expired backup is first renamed .partial (no longer listed, and removed by the
# next run should this one be killed), then removed; then the archived WAL before the cutoff
# segment (pg_archivecleanup keeps .history files).
EXPIRE_SCRIPT = r"""
set -eu
dir="$1"; cutoff="$2"; shift 2
for label in "$@"; do
  if [ -d "$dir/base/$label" ]; then
    mv "$dir/base/$label" "$dir/base/$label.partial"
    sync
    rm -rf "$dir/base/$label.partial"
    echo "pgtopo-expired $label"
  fi
done
if [ -n "$cutoff" ] && [ -d "$dir/wal" ]; then
  echo "pgtopo-wal-removed $(pg_archivecleanup -n "$dir/wal" "$cutoff" | wc -l)"
  pg_archivecleanup "$dir/wal" "$cutoff"
fi
sync
"""


def _helper(topo: Topology, job: str, argv: list[str], read_only: bool = False) -> ContainerSpec:
    assert topo.backup is not None
    return ContainerSpec(name=desired.names(topo).helper(), image=topo.image, command=argv,
                         labels=L.labels(topo.cluster, "helper", job=job),
                         mounts=(layout.repository_mount(topo.backup.repository, read_only=read_only),))


def source_conninfo(topo: Topology, node: str) -> str:
    """pg_basebackup's connection to the source, as the replication user (password from the
    passfile), on the cluster's network."""
    return conninfo_text.make(host=desired.names(topo).container(node), port=L.PG_PORT,
                              user=topo.auth.replication_user, application_name=APPLICATION_NAME)


def backup_job(topo: Topology, node: str, label: str) -> ContainerSpec:
    """BACKUP_SCRIPT on the cluster's network, with the state volume read-only (the passfile)
    and an open stdin (the tether)."""
    partial = layout.backup_dir(topo.cluster, label) + layout.PARTIAL
    spec = _helper(topo, "backup", ["sh", "-c", BACKUP_SCRIPT, "pgtopo-backup", partial, source_conninfo(topo, node)])
    state = Mount(desired.names(topo).state_volume, L.STATE_MOUNT, read_only=True)
    return replace(spec, mounts=(*spec.mounts, state), network=topo.network_name, stdin=True,
                   env={"PGPASSFILE": L.PASSFILE, **desired.REQUIRE_SCRAM})


def list_job(topo: Topology, tidy: bool) -> ContainerSpec:
    """LIST_SCRIPT; read-only unless it tidies (under the lock, before a backup)."""
    argv = ["sh", "-c", LIST_SCRIPT, "pgtopo-backup-list", layout.cluster_dir(topo.cluster),
            "tidy" if tidy else "read", layout.MANIFEST]
    return _helper(topo, "backup-list", argv, read_only=not tidy)


# One container for both (each one a container start less): the record makes the backup complete,
# then retention; a failure of the first stops the second.
FINISH_AND_EXPIRE_SCRIPT = FINISH_SCRIPT + "shift 4\n" + EXPIRE_SCRIPT


def finish_job(topo: Topology, label: str, record: str, expired: list[str], cutoff: str | None) -> ContainerSpec:
    """FINISH_SCRIPT for the backup `label`, then EXPIRE_SCRIPT for the backups retention no longer
    keeps (`expired`) and the archived WAL before `cutoff`."""
    argv = ["sh", "-c", FINISH_AND_EXPIRE_SCRIPT, "pgtopo-backup-finish", layout.base_dir(topo.cluster), label,
            layout.MANIFEST, record, layout.cluster_dir(topo.cluster), cutoff or "", *expired]
    return _helper(topo, "backup-finish", argv)


@dataclass(frozen=True)
class Contents:
    """What LIST_SCRIPT printed: the complete backups (oldest first), the .partial directories it
    removed, and the newest archived WAL segment with its modification time."""

    records: tuple[BackupRecord, ...] = ()
    removed: tuple[str, ...] = ()
    newest_wal: str | None = None
    newest_wal_time: datetime | None = None
    damaged: int = 0  # records that could not be read (their backups are not listed)


def parse_list_output(output: str) -> Contents:
    records, removed, damaged = [], [], 0
    newest_wal, newest_time = None, None
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word == "pgtopo-record":
            record = read_record(rest)
            damaged += record is None
            records += [record] if record is not None else []
        elif word == "pgtopo-removed":
            removed.append(rest)
        elif word == "pgtopo-wal" and len(parts := rest.split()) == 2 and parts[1].isdigit():
            newest_wal, newest_time = parts[0], datetime.fromtimestamp(int(parts[1]), UTC)
    return Contents(tuple(sorted(records, key=lambda r: (r.start_time, r.label))), tuple(removed), newest_wal,
                    newest_time, damaged)


def results(output: str) -> tuple[str, str] | None:
    """backup_label, and the backup manifest's WAL-Ranges as a JSON document of its own, from
    what BACKUP_SCRIPT printed; None when either is missing (read from the copy instead)."""
    label, ranges = tagged(output, "pgtopo-label"), tagged(output, "pgtopo-ranges")
    if not label or not ranges:
        return None
    return "\n".join(label) + "\n", "{" + "\n".join(ranges).rstrip().rstrip(",") + "}"


def tagged(output: str, word: str) -> list[str]:
    """The rest of each line of a job's output that starts with `word` (its reports to pgtopo)."""
    return [line.partition(" ")[2] for line in output.splitlines() if line.partition(" ")[0] == word]
