"""A major upgrade of the primary, declared by a new image: dump and restore into a new cluster
built beside the old one in the primary's own volume, then a swap.  The replicas are then
re-cloned from the upgraded primary by the ordinary rules of plan.py.

Called by execute.py for Kind.UPGRADE.  The steps, each safe to kill:

1. The primary's container stops (no client can write from here on).
2. The old image's server starts on the old data in a job container without a network: it
   listens on a socket in the volume's root only, so nothing but the next job reaches it.
3. A job of the file's image initdbs `pgdata.next` as pgtopo initdbs a primary, starts it on a
   socket of its own, restores `pg_dumpall` of the old server into it (the new major's
   pg_dumpall, as PostgreSQL's documentation advises), analyzes every database
   (`vacuumdb --analyze-in-stages`), stops it and writes the node's settings.  Killed here, the old
   data is untouched and the next apply starts this step again from an empty `pgdata.next`.
4. The old server stops; a job swaps: `pgdata` becomes `pgdata.<old major>` (kept) and
   `pgdata.next` becomes `pgdata`, with a marker (labels.UPGRADE_SWAP) while both renames are
   under way, so an interrupted swap is finished, never taken for an empty volume.
5. The new cluster's system identifier goes into the state volume before the server starts (the
   volume also says which cluster it was upgraded from, so a kill just before this step is known).
6. The node's container is made again, of the file's image, and its server answers: the write
   downtime ends there, and apply prints it.

pg_upgrade is not used: it needs the old major's binaries inside the new image, which two
unrelated images (a Debian package's and an official image's, or an Alpine one) cannot promise;
dump and restore works between any two images.
"""

from __future__ import annotations

import time
from dataclasses import replace

from pgtopo import desired, docker_ops, labels as L, nodes, pgcontrol, state as cluster_state
from pgtopo.actions import Action
from pgtopo.containers import ContainerSpec, Mount
from pgtopo.context import Context
from pgtopo.errors import DockerError, SafetyRefusal
from pgtopo.spec import Topology

# The old cluster as the old image's server runs it: PGDATA as it is, TCP on the loopback of a
# container without a network (the next job joins that network namespace, nothing else can), no
# socket file, no WAL archiving.
SOURCE_ARGS = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "archive_mode=off"]
PGPASS = "/tmp/pgtopo-upgrade.pgpass"  # written into the build job before it starts; never in its environment

# As root, in the file's image: the two images' postgres users may differ (Debian's packages give
# it whatever uid is free; the official images 999, or 70 on Alpine), and each must reach the
# volume's root: open it as the official images do (sticky, like /tmp).  The swap closes it again.
OPEN_SCRIPT = r"""
set -eu
chmod 1777 "$1"
"""

BUILD_SCRIPT = r"""
set -eu
""" + desired.AUTO_CONF + desired.INITDB + r"""
next="$1"; auto="$2"; defaults="$3"; from="$4"
export LC_ALL=C PGPASSFILE=""" + PGPASS + r"""
until pg_isready -q -h 127.0.0.1 -p 5432; do sleep 0.2; done
sock=$(mktemp -d)
quiet() { "$@" >"$sock/out" 2>&1 || { cat "$sock/out" >&2; exit 1; }; }
rm -rf "$next"
initdb_cluster "$next"
quiet pg_ctl -D "$next" -l "$sock/log" -o "-c listen_addresses= -k $sock" -w -t 3600 start
# Two kinds of line are left out: the new cluster's own superuser exists already (the ALTER ROLE
# after its CREATE ROLE brings the old password), and the column option pg_attver that Debian's
# PostgreSQL 17.12 sets on every column, which no other major knows.  Any other error stops it.
{ pg_dumpall -h 127.0.0.1 -p 5432 -U postgres; echo "$?" > "$sock/dumped"; } \
  | sed -e '/^CREATE ROLE postgres;$/d' -e '/^ALTER TABLE ONLY .* ALTER COLUMN .* SET (pg_attver=[0-9]*);$/d' \
  | psql -X -q -h "$sock" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null
if [ "$(cat "$sock/dumped")" != 0 ]; then echo "pgtopo: pg_dumpall of the PostgreSQL $from server failed" >&2; exit 1; fi
quiet vacuumdb -h "$sock" -U postgres --all --analyze-in-stages
quiet pg_ctl -D "$next" -m fast -w -t 3600 stop
auto_conf "$auto" > "$next/postgresql.auto.conf"
printf '%s' "$defaults" >> "$next/postgresql.conf"
sync
"""

# As root (the old data may belong to another uid than the new image's postgres).
SWAP_SCRIPT = r"""
set -eu
root="$1"; data="$2"; next="$3"; kept="$4"; from="$5"; before="$6"
old() { [ -d "$data" ] && [ "$(cat "$data/PG_VERSION")" = "$from" ]; }
if old && [ -e "$kept" ]; then
  echo "pgtopo: $kept already exists (the data an earlier upgrade kept); move it out of the volume" >&2
  exit 2
fi
printf '%s\n' "$from" > "$root/upgrade.swap"
printf '%s\n' "$before" > "$root/upgraded-from"
sync
if old; then mv "$data" "$kept"; fi
if [ ! -e "$data" ]; then mv "$next" "$data"; fi
chown postgres: "$root" "$root/upgraded-from"
chmod 0700 "$root"
sync
rm -f "$root/upgrade.swap"
sync
"""

# As root, before a replica of an older major is copied again in the new image: its old data and
# the volume's root become the new image's postgres user's, so the copy can replace them.
ADOPT_SCRIPT = r"""
set -eu
chown -R postgres: "$1"
"""


def _root_job(topo: Topology, node: str, job: str, script: str, *args: str) -> ContainerSpec:
    return replace(desired.job(topo, node, job, ["sh", "-c", script, f"pgtopo-{job}", *args], network=False),
                   user="root")


def open_job(topo: Topology, node: str) -> ContainerSpec:
    return _root_job(topo, node, "upgrade-open", OPEN_SCRIPT, L.DATA_MOUNT)


def adopt_job(topo: Topology, node: str) -> ContainerSpec:
    return _root_job(topo, node, "adopt", ADOPT_SCRIPT, L.DATA_MOUNT)


def swap_job(topo: Topology, node: str, from_major: int, before: int) -> ContainerSpec:
    return _root_job(topo, node, "upgrade-swap", SWAP_SCRIPT, L.DATA_MOUNT, L.PGDATA, L.UPGRADE_NEXT,
                     L.kept_data(from_major), str(from_major), str(before))


# The old server lives only as long as pgtopo holds the container's stdin (docker_ops.tether):
# pgtopo killed, `cat` ends and the server shuts down (fast), so no old server is left running on
# the old data for the node's own container to be started beside, by hand, as a second postmaster.
# `docker stop` (SIGINT) shuts it down too.
SOURCE_SCRIPT = r"""
exec 3<&0  # a background list's stdin is /dev/null: the tether goes to it as fd 3
postgres -D "$0" "$@" & pg=$!
( cat <&3 >/dev/null; kill -INT "$pg" 2>/dev/null ) &
trap 'kill -INT "$pg" 2>/dev/null' INT TERM
wait "$pg"; rc=$?
wait "$pg" 2>/dev/null
exit "$rc"
"""


def source_container(topo: Topology, node: str, image: str) -> ContainerSpec:
    """The old image's server on the node's old data (step 2), tethered to pgtopo: a job by its
    labels, so one left behind is removed by the next apply before anything else is done on the node."""
    argv = ["sh", "-c", SOURCE_SCRIPT, L.PGDATA, *SOURCE_ARGS]
    return replace(desired.job(topo, node, "upgrade-source", argv, network=False), image=image, stdin=True)


def build_job(topo: Topology, node: str, from_major: int, source: str) -> ContainerSpec:
    """Step 3, in the file's image, in the network namespace of the old server's container."""
    argv = ["sh", "-c", BUILD_SCRIPT, "pgtopo-upgrade", L.UPGRADE_NEXT, desired.auto_conf(topo, node),
            desired.SERVER_DEFAULTS, str(from_major)]
    # no PGREQUIREAUTH: the new cluster's server is reached on its socket, where trust is the method
    return replace(desired.job(topo, node, "upgrade", argv, network=False), network=f"container:{source}",
                   env={"PGDATA": L.PGDATA})


def run(ctx: Context, action: Action) -> str:
    """Steps 1-6 for `action.node`; returns the note apply prints: the write downtime.
    `action.target` names the old image when the new cluster is still to be built; without it only
    what is left is done (an interrupted swap, or a new identity not yet recorded)."""
    node, observed, state = action.node, ctx.snapshot.observed, ctx.snapshot.state
    facts = observed.node(node)
    data = facts.data
    swapping = data is not None and data.swap_from is not None
    from_major = data.swap_from if data is not None and data.swap_from is not None else facts.major
    behind = from_major is not None and observed.image_major is not None and from_major < observed.image_major
    if state is None or state.system_identifier is None or (behind and not swapping and action.target is None):
        raise SafetyRefusal(f"{node}: its upgrade to {ctx.topo.image} cannot start: the cluster's identity is not "
                            "recorded, or no image of its data's major is known",
                            hint="run diff: it says what to do first")
    stopped = time.monotonic()
    nodes.stop(ctx, node)
    if from_major is not None and (swapping or action.target is not None):
        if action.target is not None and not swapping:
            ctx.progress(node, f"pg_dumpall of PostgreSQL {from_major}, restored into {ctx.topo.image}")
            _build(ctx, node, from_major, action.target, state.superuser_password)
        docker_ops.run_job(ctx.client, swap_job(ctx.topo, node, from_major, state.system_identifier))
        ctx.progress(node, "")
    _record(ctx, node)
    if facts.container is not None:
        docker_ops.remove_container(ctx.client, ctx.names.container(node))
    nodes.create(ctx, node)
    return (f"write downtime {time.monotonic() - stopped:.2f} s (from the old server's shutdown until the server of "
            f"{ctx.topo.image} accepted connections)")


def _build(ctx: Context, node: str, from_major: int, old_image: str, password: str) -> None:
    docker_ops.run_job(ctx.client, open_job(ctx.topo, node))
    cid = docker_ops.create_container(ctx.client, source_container(ctx.topo, node, old_image))
    try:
        with docker_ops.tether(ctx.client, cid):
            _dump_and_restore(ctx, node, from_major, password, cid)
            docker_ops.stop(ctx.client, cid, timeout=3600)  # a fast shutdown: the old data stays clean
    finally:
        docker_ops.remove_container(ctx.client, cid)


def _dump_and_restore(ctx: Context, node: str, from_major: int, password: str, source: str) -> None:
    """Step 3: the build job, in the old server's network namespace, with the superuser's password
    in a pgpass file written into it before it starts (never in its environment)."""

    def source_runs() -> bool:
        if not docker_ops.inspect_container(ctx.client, source)["State"].get("Running"):
            raise DockerError(f"{node}: the PostgreSQL {from_major} server of the old image did not run on the old "
                              f"data:\n{docker_ops.last_lines(ctx.client, source)}",
                              hint="fix the cause shown above (the old data is untouched), then apply again")
        return True

    # the image's postgres user, read through a helper that mounts nothing (files are only ever
    # copied out of helpers: docker_ops.HelperId)
    with docker_ops.helper(ctx.client, ctx.topo.image, (), L.labels(ctx.topo.cluster, "helper"),
                           ctx.names.helper()) as helper:
        uid, gid = cluster_state.postgres_ids(ctx.client, helper, ctx.topo.image)

    def pgpass(job: str) -> None:
        directory, name = PGPASS.rsplit("/", 1)
        line = cluster_state.pgpass_line("127.0.0.1", "postgres", password).encode()
        docker_ops.write_files(ctx.client, job, directory, {name: line}, uid, gid)

    docker_ops.run_job(ctx.client, build_job(ctx.topo, node, from_major, source), progress=source_runs, prepare=pgpass)


def _record(ctx: Context, node: str) -> None:
    """The new cluster's identity, from its pg_control, into the state volume before its server
    starts: from then on every clone is checked against it."""
    mounts = (Mount(ctx.names.volume(node), L.DATA_MOUNT, read_only=True),)
    with docker_ops.helper(ctx.client, ctx.topo.image, mounts, L.labels(ctx.topo.cluster, "helper"),
                           ctx.names.helper()) as cid:
        control = pgcontrol.parse(docker_ops.read_file(ctx.client, cid, f"{L.PGDATA}/global/pg_control") or b"")
    if control is None:
        raise DockerError(f"{node}: no pg_control in its volume after the upgrade's swap",
                          hint="see the volume's pgdata.next and pgdata.* directories, then apply again")
    state = ctx.snapshot.state
    assert state is not None
    new = replace(state, system_identifier=control.system_identifier)
    cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume, ctx.topo.cluster, new,
                        ctx.topo.auth.replication_user)
    with ctx.lock:
        ctx.snapshot.state = new
