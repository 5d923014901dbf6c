"""A new cluster's primary made from another cluster's backup (the file's `bootstrap.restore`):
the plan's RESTORE action.

Called by execute.py, which then creates the node's container on the restored data as for any
existing data and records its system identifier (the source's: a restore is a copy of it).  The
source repository is mounted read-only, and only in this action's two jobs: one that prints the
backups' manifests (restore_plan.choose picks one), one that copies the chosen backup into
pgdata.tmp, recovers it to the target with a server of its own (no network, no TCP, a socket in
a private directory), promotes it, gives its roles the new cluster's passwords, stops it and
renames it into place.  The source cluster itself is never reached.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo import desired, docker_ops, labels as L, state as cluster_state
from pgtopo.actions import Action
from pgtopo.backup import jobs, layout, pgbackrest, restore_plan
from pgtopo.backup.spec import Restore, VolumeRepository, target_settings
from pgtopo.containers import ContainerSpec, Mount
from pgtopo.context import Context
from pgtopo.errors import DockerError, PgtopoError, SpecError
from pgtopo.spec import Topology

MANIFEST_BEGIN = "pgtopo-manifest"  # the line before each manifest the listing job prints
NO_PGBACKREST = "pgtopo-no-pgbackrest"  # the repository holds pgBackRest backups; the image has no pgbackrest


class NoPgbackrest(Exception):
    """The source's backups were taken by pgBackRest, and the file's image has none to restore them."""

# Prints "<MANIFEST_BEGIN> <label>" and the manifest of every complete backup of a cluster (a
# backup under way has none yet: it is written last); then, when the repository holds backups of
# the cluster made by pgBackRest, what `pgbackrest info` says of them (pgbackrest.LIST_SCRIPT).
# Reads only.
LIST_SCRIPT = r"""
set -eu
base="$1"; manifest="$2"; begin="$3"; shift 3
if [ -d "$base" ]; then
  for f in "$base"/*/"$manifest"; do
    if [ -f "$f" ]; then
      d=${f%/*}
      printf '%s %s\n' "$begin" "${d##*/}"
      cat "$f"
      printf '\n'
    fi
  done
fi
if command -v pgbackrest >/dev/null 2>&1; then sh -c "$@"
elif [ -f "$3/backup/$4/backup.info" ]; then echo "pgtopo-no-pgbackrest"; fi
"""

# The restore.  Work happens in pgdata.tmp (and the server's socket and log in restore.run beside
# it); pgdata.tmp is renamed into place last, so a job killed at any point leaves no PGDATA and the
# next apply restores again.  Recovery runs with hot_standby off (no connection before the end of
# recovery, and no pause at a parameter change the backup's settings are below), archive_mode off
# (the source's archive command must not run here) and no synchronous standby (the password change
# must not wait for one).  The roles' passwords are read by psql from the state volume's files,
# never put on a command line, and the statements that carry them are not logged.
RESTORE_SCRIPT = r"""
set -eu
""" + desired.FLUSHING + desired.AUTO_CONF + r"""
data="$1"; backup="$2"; manifest="$3"; recovery="$4"; auto="$5"; repl="$6"; method="$7"; shift 7
tmp="$data.tmp"; run="${data%/*}/restore.run"; log="$run/server.log"
if [ -e "$data" ]; then echo "pgtopo: $data holds data already; not restoring over it: run pgtopo apply" >&2; exit 4; fi
if [ "$method" = native ] && [ ! -f "$backup/$manifest" ]; then
  echo "pgtopo: $backup is not a complete backup (no $manifest)" >&2; exit 2
fi
rm -rf "$tmp" "$run"
mkdir -m 0700 "$run"
if [ "$method" = native ]; then
  flushing "${data%/*}" cp -R "$backup" "$tmp"
else  # pgbackrest restore, its command line the arguments after the seventh
  mkdir -m 0700 "$tmp"
  flushing "${data%/*}" "$@"
fi
chmod 0700 "$tmp"
rm -f "$tmp/$manifest" "$tmp/backup_manifest" "$tmp/standby.signal" "$tmp/postmaster.pid" "$tmp/postmaster.opts"
printf '%s' "$recovery" >> "$tmp/postgresql.auto.conf"
touch "$tmp/recovery.signal"
printf 'local all postgres trust\n' > "$run/pg_hba.conf"
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d ' ' -f 3 "/proc/$1/stat")" != Z ]; }
failed() { tail -n 12 "$log" >&2 || true; echo "pgtopo: $1" >&2; exit 3; }
postgres -D "$tmp" -c listen_addresses= -c unix_socket_directories="$run" -c hba_file="$run/pg_hba.conf" \
         -c logging_collector=off >"$log" 2>&1 &
pid=$!
tries=0
until [ "$(psql -h "$run" -U postgres -X -qAt -d postgres -c 'SELECT pg_is_in_recovery()' 2>"$run/psql.err" || true)" = f ]; do
  if grep -q 'ready to accept connections' "$log"; then tries=$((tries + 1)); fi
  if [ "$tries" -ge 300 ]; then  # promoted 30 s ago, and still no answer on its socket
    kill -INT "$pid"; wait "$pid" || true
    cat "$run/psql.err" >&2
    failed "the restored server does not answer on its socket (psql's error above)"
  fi
  if ! alive "$pid"; then
    wait "$pid" || true
    if grep -q 'recovery ended before configured recovery target was reached' "$log"; then
      failed "recovery ended before the target: the archive holds no WAL that reaches it"
    fi
    failed "the server stopped before its recovery ended (its log above)"
  fi
  sleep 0.1
done
psql -h "$run" -U postgres -X -q -v ON_ERROR_STOP=1 -v repl="$repl" -d postgres >/dev/null <<'SQL' || {
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET password_encryption = 'scram-sha-256';
\set pw `cat /run/pgtopo/superuser_password`
ALTER ROLE postgres PASSWORD :'pw';
\set pw `cat /run/pgtopo/replication_password`
SELECT format('ALTER ROLE %I PASSWORD %L', :'repl', :'pw') WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'repl')
\gexec
\unset pw
CHECKPOINT;
SQL
  kill -INT "$pid"; wait "$pid" || true
  failed "could not give the restored roles the new cluster's passwords"
}
kill -INT "$pid"
wait "$pid" || true
grep -q 'database system is shut down' "$log" || failed "the restored server did not shut down cleanly"
auto_conf "$auto" > "$tmp/postgresql.auto.conf"
rm -f "$tmp/recovery.signal" "$tmp/standby.signal" "$tmp"/pg_wal/archive_status/*.ready
for h in "$tmp"/pg_wal/*.history; do  # the new cluster's own archive gets its timelines' history
  if [ -f "$h" ]; then touch "$tmp/pg_wal/archive_status/${h##*/}.ready"; fi
done
sync
mv "$tmp" "$data"
rm -rf "$run"
"""


def run(ctx: Context, action: Action) -> None:
    """Restore the node's data from the chosen backup and record the restore in the state volume
    (before the job: killed after its rename, the next apply still knows this cluster's data came
    from a restore and does not refuse its file's bootstrap: block)."""
    node, restore = action.node, restore_of(ctx.topo)
    source = restore.from_.cluster
    _check_repository(ctx, restore)
    ctx.progress(node, f"reading {source}'s backups")
    try:
        chosen = restore_plan.choose(backups(ctx, restore), restore)
    except restore_plan.NoBackup as exc:
        raise SpecError([f"bootstrap.restore: {exc}"]) from None
    except NoPgbackrest:
        raise SpecError([f"bootstrap.restore: {source}'s backups in the repository were taken by pgBackRest, and "
                         f"image {ctx.topo.image} has no pgbackrest command to restore them"],
                        hint="use an image with pgBackRest 2.41 or later for the restored cluster") from None
    finally:
        ctx.progress(node, "")
    with ctx.lock:
        assert ctx.snapshot.state is not None, "the state volume is made before the restore"
        marked = ctx.snapshot.state = replace(ctx.snapshot.state,
                                              restored_from=restore_plan.restored_marker(source, chosen.label))
    cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume, ctx.topo.cluster, marked,
                        ctx.topo.auth.replication_user)
    if ctx.snapshot.observed.node(node).container is not None:  # one without data (the plan saw none)
        docker_ops.remove_container(ctx.client, ctx.names.container(node))
    ctx.progress(node, f"restore {source}'s backup {chosen.label} to {restore_plan.target_text(restore.target)}")
    try:
        docker_ops.run_job(ctx.client, restore_job(ctx.topo, node, restore, chosen.label, chosen.method))
    except DockerError as exc:
        raise PgtopoError(f"{node}: the restore from {source}'s backup {chosen.label} failed: {exc.message}",
                          hint="nothing was made of this cluster's data; fix the cause (another target, another "
                               "backup:), then apply again") from exc
    finally:
        ctx.progress(node, "")


def restore_of(topo: Topology) -> Restore:
    assert topo.bootstrap is not None, "only a file with bootstrap: restores"
    return topo.bootstrap.restore


def _check_repository(ctx: Context, restore: Restore) -> None:
    """A missing repository volume would be created, empty and unlabelled, by the job mounting it."""
    repo = restore.from_.repository
    if isinstance(repo, VolumeRepository) and not any(
            v["Name"] == repo.volume for v in docker_ops.list_volumes(ctx.client, repo.volume)):
        raise SpecError([f"bootstrap.restore.from.repository: volume {repo.volume} does not exist"])


def backups(ctx: Context, restore: Restore) -> list[restore_plan.BackupInfo]:
    """The complete backups of the source cluster, from their manifests (a job that reads only)."""
    output = docker_ops.run_job(ctx.client, list_job(ctx.topo, restore), timeout=120)
    return parse_listing(output, restore.from_.cluster)


def parse_listing(output: str, cluster: str = "") -> list[restore_plan.BackupInfo]:
    """The native backups' manifests, then pgBackRest's (its info line comes last)."""
    found: list[restore_plan.BackupInfo] = []
    info_lines = jobs.tagged(output, "pgtopo-info")
    native = output.split("\npgtopo-info ", 1)[0] if info_lines else output
    native = "\n".join(line for line in native.splitlines() if line != NO_PGBACKREST)
    parts = f"\n{native}".split(f"\n{MANIFEST_BEGIN} ")
    for part in parts[1:]:
        label, _, text = part.partition("\n")
        info = restore_plan.parse_manifest(label.strip(), text)
        if info is not None and info.label == label.strip():
            found.append(info)
    if NO_PGBACKREST in output.splitlines() and not found:
        raise NoPgbackrest(cluster)
    if info_lines:
        try:
            records = pgbackrest.records(info_lines[-1], cluster)
        except pgbackrest.InfoError as exc:
            raise PgtopoError(f"the source repository's pgBackRest listing cannot be read: {exc}",
                              hint="run `pgbackrest info` in that repository to see what it holds") from None
        found += [restore_plan.BackupInfo(label=r.label, stop_time=r.stop_time, timeline=r.timeline,
                                          system_identifier=int(r.system_identifier), method="pgbackrest")
                  for r in records]
    return found


def _source_mount(restore: Restore) -> Mount:
    return layout.repository_mount(restore.from_.repository, layout.SOURCE_MOUNT, read_only=True)


def list_job(topo: Topology, restore: Restore) -> ContainerSpec:
    """A helper by its labels: one a killed pgtopo left behind is removed by the next apply."""
    source = restore.from_.cluster
    argv = ["sh", "-c", LIST_SCRIPT, "pgtopo-backups", layout.base_dir(source, layout.SOURCE_MOUNT),
            layout.MANIFEST, MANIFEST_BEGIN, *pgbackrest.list_argv(source, layout.SOURCE_MOUNT)[2:]]
    return ContainerSpec(name=desired.names(topo).helper(), image=topo.image, command=argv,
                         labels=L.labels(topo.cluster, "helper", job="backups"), mounts=(_source_mount(restore),))


def recovery_conf(restore: Restore, method: str = "native") -> str:
    """What the restore's server recovers with, after the backup's own postgresql.auto.conf."""
    source = restore.from_.cluster
    entries = {
        "restore_command": pgbackrest.archive_get_command(source, layout.SOURCE_MOUNT) if method == "pgbackrest"
        else layout.restore_command(source),
        **target_settings(restore.target),
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
        "hot_standby": "off",
        "archive_mode": "off",
        "primary_conninfo": "",
        "primary_slot_name": "",
        "synchronous_standby_names": "",
    }
    return "\n" + desired.conf_text(entries)


def restore_job(topo: Topology, node: str, restore: Restore, label: str, method: str = "native") -> ContainerSpec:
    """The node's data volume, the state volume (for the new passwords) and the source repository
    read-only; no network."""
    source = restore.from_.cluster
    copy = pgbackrest.restore_argv(source, layout.SOURCE_MOUNT, label, f"{L.PGDATA}.tmp") \
        if method == "pgbackrest" else []
    argv = ["sh", "-c", RESTORE_SCRIPT, "pgtopo-restore", L.PGDATA,
            layout.backup_dir(source, label, layout.SOURCE_MOUNT), layout.MANIFEST,
            recovery_conf(restore, method), desired.auto_conf(topo, node), topo.auth.replication_user, method, *copy]
    spec = desired.job(topo, node, "restore", argv, network=False)
    n = desired.names(topo)
    # its psql speaks only to its own server, on a socket, where trust is the one method
    env = {k: v for k, v in spec.env.items() if k not in desired.REQUIRE_SCRAM}
    return replace(spec, env=env, mounts=(*spec.mounts, Mount(n.state_volume, L.STATE_MOUNT, read_only=True),
                                          _source_mount(restore)))

