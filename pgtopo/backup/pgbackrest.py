"""`backup.method: pgbackrest`: what pgBackRest is told to do, and what its answers mean.  Pure.

pgBackRest keeps its repository in <repository>/<cluster>/pgbackrest (a stanza named after the
cluster), beside where the native method keeps its files, so one repository may hold clusters of
both methods.  Three parts run it:

- every node archives with `pgbackrest archive-push` (archive_command): the repository is mounted
  in every node, so this needs no connection; the first push into a repository without the
  cluster's stanza makes it (`stanza-create`, which refuses a repository holding another
  cluster's stanza of the same name: its WAL is never mixed with this one's);
- a backup runs in a one-shot job, the repository's host in pgBackRest's words, which reaches the
  primary and the standby it copies from through `pgbackrest server` (TLS, mutual certificates
  made for that one backup: backup.tls) started in their containers for the time of the backup;
- a restore runs `pgbackrest restore` in the restore job, then recovers with
  `pgbackrest archive-get` as its restore_command (backup.restore).

Called by backup.layout (the archive command), backup.take, backup.listing and backup.restore.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pgtopo import labels as L
from pgtopo.backup.record import BackupRecord
from pgtopo.backup.spec import FullRetention, Retention, window_delta

SUBDIR = "pgbackrest"
TLS_DIR = "/tmp/pgtopo-backup-tls"  # the certificates of one backup, in the containers that use them
CONFIG = f"{TLS_DIR}/pgbackrest.conf"
SERVER_PORT = 8432  # pgBackRest's default: only on the cluster's network, never published
SPOOL = "/tmp/pgbackrest-spool"  # not the image's /var/spool/pgbackrest: another uid may own it
COMPRESS = "lz4"  # the fastest of pgBackRest's compressions: a backup's time is CPU time on two cores
MIN_VERSION = (2, 41)  # `server` (TLS) came with 2.37, backup annotations with 2.41
ANNOTATION_PREFIX = "pgtopo-"


def repo_path(cluster: str, mount: str) -> str:
    return f"{mount}/{cluster}/{SUBDIR}"


def _base(cluster: str, mount: str) -> list[str]:
    """What every pgbackrest command line of pgtopo starts with: no configuration file (not the
    image's /etc/pgbackrest.conf either), the stanza, the repository; no log file."""
    return ["pgbackrest", "--no-config", f"--stanza={cluster}", f"--repo1-path={repo_path(cluster, mount)}",
            "--log-level-file=off"]


def archive_command(cluster: str, mount: str) -> str:
    """archive_command of every node: push the segment; when that fails, make the stanza (a no-op
    when it exists and matches this cluster) and push again.  The data directory is the archive
    command's working directory.  Errors go to the server's log."""
    base = " ".join(shlex.quote(a) for a in _base(cluster, mount)) + ' --pg1-path="$PWD" --log-level-console=off ' \
        "--log-level-stderr=warn"
    push = f"{base} --compress-type={COMPRESS} archive-push %p"
    return f"{push} || {{ {base} stanza-create && {push}; }}"


def archive_get_command(cluster: str, mount: str) -> str:
    """restore_command of a restore from a pgBackRest repository (mounted read-only)."""
    base = " ".join(shlex.quote(a) for a in _base(cluster, mount))
    return f'{base} --pg1-path="$PWD" --log-level-console=off --log-level-stderr=warn archive-get %f "%p"'


def retention_lines(retention: Retention) -> list[str]:
    """pgBackRest's retention for the file's: a count of full backups, or a window rounded up to
    whole days (pgBackRest counts time retention in days): never less than the file asks for."""
    if isinstance(retention, FullRetention):
        return [f"repo1-retention-full={retention.full}", "repo1-retention-full-type=count"]
    days = max(1, math.ceil(window_delta(retention.window).total_seconds() / 86400))
    return [f"repo1-retention-full={days}", "repo1-retention-full-type=time"]


def job_config(cluster: str, mount: str, hosts: list[tuple[str, str]], standby: bool, retention: Retention,
               annotations: Mapping[str, str], processes: int = 2) -> str:
    """pgbackrest.conf of a backup job: the repository, retention, and each node it reaches as
    (container name, what it is) — the primary first; `standby`: copy from the standby listed."""
    lines = ["[global]", f"repo1-path={repo_path(cluster, mount)}", *retention_lines(retention),
             "start-fast=y", f"compress-type={COMPRESS}", f"process-max={processes}", "log-level-file=off",
             "log-level-console=info", "log-level-stderr=off", f"backup-standby={'y' if standby else 'n'}",
             "archive-timeout=120", "",
             f"[{cluster}]"]
    for i, (host, _) in enumerate(hosts, start=1):
        lines += [f"pg{i}-host={host}", f"pg{i}-host-type=tls", f"pg{i}-host-port={SERVER_PORT}",
                  f"pg{i}-host-ca-file={TLS_DIR}/ca.crt", f"pg{i}-host-cert-file={TLS_DIR}/client.crt",
                  f"pg{i}-host-key-file={TLS_DIR}/client.key", f"pg{i}-path={L.PGDATA}", f"pg{i}-port={L.PG_PORT}",
                  f"pg{i}-host-config=/dev/null"]  # as --no-config: never the image's own pgbackrest.conf
    lines += [f"annotation={ANNOTATION_PREFIX}{k}={v}" for k, v in sorted(annotations.items())]
    return "\n".join(lines) + "\n"


def server_argv(cluster: str, client_name: str) -> list[str]:
    """`pgbackrest server` in a node's container: TLS on the cluster's network, admitting only the
    client certificate of this backup, for this stanza."""
    return ["pgbackrest", "--no-config", "--log-level-file=off", "--log-level-console=off", "--log-level-stderr=error",
            "--tls-server-address=*", f"--tls-server-port={SERVER_PORT}",
            f"--tls-server-ca-file={TLS_DIR}/ca.crt", f"--tls-server-cert-file={TLS_DIR}/server.crt",
            f"--tls-server-key-file={TLS_DIR}/server.key", f"--tls-server-auth={client_name}={cluster}", "server"]


# In a node's container, tethered to pgtopo (docker_ops.exec_tethered): the server runs until
# pgtopo closes the tether (or dies), then it is stopped and the certificates removed.
# LISTENING (run in the same container) waits until it listens: up to five seconds, then prints
# what the server said.
SERVER_SCRIPT = r"""
dir="$1"; shift
"$@" </dev/null >/dev/null 2>"$dir/server.err" & pid=$!
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"""

LISTENING = r"""
dir="$1"; i=0
until grep -qE "^ *[0-9]+: [0-9A-F]+:""" + f"{SERVER_PORT:04X}" + r""" [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -ge 100 ]; then echo "it does not listen on its port after 5 s: $(cat "$dir/server.err" 2>/dev/null)"; exit 1; fi
  sleep 0.05
done
"""

# The backup job (the repository's host), tethered as the native method's: the stanza made when the
# repository has none (the servers were started just now: a refused connection is tried again for
# a few seconds), the backup, then what the repository holds.  An existing stanza is checked
# against the primary by the backup itself.
BACKUP_SCRIPT = r"""
set -eu
exec 3<&0
config="$1"; kind="$2"; stanza="$3"; repo="$4"
tries=0
until [ -f "$repo/backup/$stanza/backup.info" ] || \
      out=$(pgbackrest --config="$config" --stanza="$stanza" --log-level-console=warn stanza-create </dev/null 2>&1); do
  tries=$((tries + 1))
  case "$out" in *HostConnectError*) ;; *) echo "$out"; exit 1 ;; esac
  if [ "$tries" -ge 40 ]; then echo "$out"; exit 1; fi
  sleep 0.25
done
pgbackrest --config="$config" --stanza="$stanza" --type="$kind" backup </dev/null & pid=$!
( cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null ) &
rc=0; wait "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
printf 'pgtopo-info '
pgbackrest --config="$config" --stanza="$stanza" --log-level-console=warn --output=json info | tr -d '\n'
echo
"""

# What the repository holds for a cluster (read-only); nothing when it has no stanza yet.
LIST_SCRIPT = r"""
set -eu
repo="$1"; stanza="$2"
if [ ! -f "$repo/backup/$stanza/backup.info" ]; then exit 0; fi
printf 'pgtopo-info '
pgbackrest --no-config --log-level-file=off --log-level-console=warn --stanza="$stanza" --repo1-path="$repo" \
  --output=json info | tr -d '\n'
echo
"""


def list_argv(cluster: str, mount: str) -> list[str]:
    return ["sh", "-c", LIST_SCRIPT, "pgtopo-backup-list", repo_path(cluster, mount), cluster]


def restore_argv(cluster: str, mount: str, label: str, target_dir: str) -> list[str]:
    """`pgbackrest restore` of one backup set into an empty directory; recovery is set up by the
    restore script itself (backup.restore), after this."""
    return [*_base(cluster, mount), f"--pg1-path={target_dir}", f"--set={label}", "--type=none", f"--spool-path={SPOOL}",
            "--log-level-console=warn", "--log-level-stderr=off", "--process-max=2", "restore"]


class InfoError(ValueError):
    """`pgbackrest info` said something pgtopo cannot read."""


def stanza_of(text: str, cluster: str) -> dict[str, Any] | None:
    """The cluster's stanza in `pgbackrest info --output=json`; None when it has none."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InfoError(f"pgbackrest info printed no JSON ({exc})") from None
    if not isinstance(doc, list):
        raise InfoError("pgbackrest info printed no list of stanzas")
    for stanza in doc:
        if isinstance(stanza, dict) and stanza.get("name") == cluster:
            return stanza
    return None


def backups(text: str, cluster: str) -> list[dict[str, Any]]:
    """The cluster's complete backups as `info` describes them, each with the system identifier
    of its database ("system-id" beside the backup's own keys), oldest first."""
    stanza = stanza_of(text, cluster)
    if stanza is None:
        return []
    dbs = {(d.get("id"), d.get("repo-key")): d for d in stanza.get("db") or [] if isinstance(d, dict)}
    found = []
    for b in stanza.get("backup") or []:
        if not isinstance(b, dict) or b.get("error") is True:
            continue
        db = b.get("database") or {}
        found.append({**b, "system-id": (dbs.get((db.get("id"), db.get("repo-key"))) or {}).get("system-id"),
                      "server-version": (dbs.get((db.get("id"), db.get("repo-key"))) or {}).get("version")})
    return sorted(found, key=lambda b: (b["timestamp"]["start"], b["label"]))


def archive_range(text: str, cluster: str) -> tuple[str | None, str | None]:
    """The oldest and newest archived segment of the cluster's current database."""
    stanza = stanza_of(text, cluster)
    archives = [a for a in (stanza or {}).get("archive") or [] if isinstance(a, dict)]
    if not archives:
        return None, None
    newest = archives[-1]
    return newest.get("min"), newest.get("max")


def moment(epoch: object) -> datetime:
    if not isinstance(epoch, int):
        raise InfoError(f"pgbackrest info gave a time that is not a number: {epoch!r}")
    return datetime.fromtimestamp(epoch, UTC)


def parse_version(text: str) -> tuple[int, int] | None:
    """`pgbackrest version` prints "pgBackRest 2.55.1"."""
    words = text.split()
    if len(words) < 2 or words[0] != "pgBackRest":
        return None
    parts = words[1].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


def record_of(b: Mapping[str, Any], cluster: str) -> BackupRecord:
    """A backup as `pgtopo backups` lists it, from one of backups(): what pgtopo knows of it
    beyond pgBackRest (the node it was taken from) comes from the annotations it was taken with."""
    notes = b.get("annotation") or {}
    try:
        start_wal = str(b["archive"]["start"])
        version = str(b.get("server-version") or "0")
        return BackupRecord(
            label=b["label"], type=b["type"], method="pgbackrest", cluster=cluster,
            source=str(notes.get(f"{ANNOTATION_PREFIX}source", "?")),
            backup_from="standby" if notes.get(f"{ANNOTATION_PREFIX}from") == "standby" else "primary",
            start_lsn=str(b["lsn"]["start"]).upper(), start_wal=start_wal, stop_lsn=str(b["lsn"]["stop"]).upper(),
            timeline=int(start_wal[:8], 16), start_time=moment(b["timestamp"]["start"]),
            stop_time=moment(b["timestamp"]["stop"]), size_bytes=int(b["info"]["repository"]["delta"]),
            system_identifier=str(b.get("system-id")), server_major=int(version.split(".")[0]),
            pgtopo_version=str(notes.get(f"{ANNOTATION_PREFIX}version", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InfoError(f"pgbackrest info describes backup {b.get('label')!r} in a way pgtopo cannot read "
                        f"({type(exc).__name__}: {exc})") from None


def records(text: str, cluster: str) -> list[BackupRecord]:
    return [record_of(b, cluster) for b in backups(text, cluster)]
