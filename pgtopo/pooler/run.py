"""Carry out the pooler's actions, and hold it paused around a step that interrupts the primary.

Called by execute.py.  The pooler's role and its password lookup live on the primary (they
replicate everywhere); its files are written into its container (never into a volume, the
environment or a label), owned by the image's own user, whose uid:gid the container's
FILES_OWNER label records.  A pause is always ended: by RESUME after the step, by RESUME when
PAUSE outlives its bound (the step is then not run), should pgtopo die in between by a command in
the pooler's container that waits on pgtopo's end, and failing all that by the next apply (plan:
a pooler paused with no apply running is resumed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pgtopo import docker_ops, labels as L, pg_ops, state as cluster_state, waits
from pgtopo.context import Context
from pgtopo.errors import DockerError, PoolerBusy, PostgresError
from pgtopo.pooler import admin, config, planning

if TYPE_CHECKING:
    import psycopg

FILES_OWNER = f"{L.PREFIX}.files-owner"  # label: uid:gid of the image's user, who owns the config files
READY_TIMEOUT = 30.0
# PgBouncer is its container's process 1, and SIGUSR2 is its RESUME
RESUME_ON_EOF = "cat >/dev/null; kill -USR2 1"


def create(ctx: Context, pool: config.Pool = "read-write") -> None:
    """Its role on the primary, then the container with its files, started and answering."""
    ensure_role(ctx)
    spec = config.container(ctx.topo, pool)
    owner = _owner(ctx, spec.image)
    spec = replace(spec, labels={**spec.labels, FILES_OWNER: f"{owner[0]}:{owner[1]}"})
    cid = docker_ops.create_container(ctx.client, spec)
    _write(ctx, cid, owner, pool)
    docker_ops.start(ctx.client, cid)
    _await(ctx, pool)


def recreate(ctx: Context, pool: config.Pool = "read-write") -> None:
    remove(ctx, pool)
    create(ctx, pool)


def remove(ctx: Context, pool: config.Pool = "read-write") -> None:
    docker_ops.remove_container(ctx.client, config.container_name(ctx.topo.cluster, pool))


def start(ctx: Context, pool: config.Pool = "read-write") -> None:
    """Start it again with files that point where the file says."""
    name = config.container_name(ctx.topo.cluster, pool)
    ensure_role(ctx)
    _write(ctx, name, _labelled_owner(ctx, pool), pool)
    docker_ops.start(ctx.client, name)
    _await(ctx, pool)


def configure(ctx: Context, pool: config.Pool = "read-write") -> None:
    """Point it where the file says (its role and files made again), RELOAD, and RESUME: a
    repoint after a failover, a replica that joined or left the read-only pool."""
    ensure_role(ctx)
    _write(ctx, config.container_name(ctx.topo.cluster, pool), _labelled_owner(ctx, pool), pool)
    admin.command(_console(ctx, pool), "RELOAD", "RESUME")


def resume(ctx: Context, pool: config.Pool = "read-write") -> None:
    admin.command(_console(ctx, pool), "RESUME")


class Pause:
    """The pooler held paused around one step.  `begin()`: the files pointing at the file's
    primary are written (PgBouncer reads them only at the RELOAD), then PAUSE within
    pooler.pause_timeout_seconds, else PoolerBusy (resumed, the files put back, the step must not
    go on); a step calls it as late as it can (a switchover: once the old primary is fenced and
    checkpointed, just before it stops).  `end()`: RELOAD and RESUME, so the pool goes to the
    file's primary; a step calls it as soon as that primary takes writes (a switchover: before
    the old primary restarts as a standby).  `end(repoint=False)`: the files put back, RESUME.
    Both run at most once."""

    def __init__(self, ctx: Context, what: str, stack: ExitStack) -> None:
        self.ctx, self.what, self.stack = ctx, what, stack
        self.console = _console(ctx)
        self.container = config.container_name(ctx.topo.cluster)
        self.owner = _labelled_owner(ctx)
        self.begun = self.ended = False

    def begin(self) -> None:
        pooler = self.ctx.topo.pooler
        if self.begun or pooler is None:
            return
        self.begun = True
        self.ctx.progress("pooler", f"pausing for the {self.what}")
        _write(self.ctx, self.container, self.owner)  # off the critical path: before the pause
        _resume_should_pgtopo_die(self.ctx, self.stack)
        if not admin.pause(self.console, pooler.pause_timeout_seconds):
            self.ended = True
            self._put_back()
            raise PoolerBusy(
                f"the pooler could not pause within {pooler.pause_timeout_seconds:g} s (a transaction or a session "
                f"ran on); it was resumed and the {self.what} was not started",
                hint="let long transactions finish (or raise pooler.pause_timeout_seconds), then apply again",
            )

    def end(self, repoint: bool = True) -> None:
        if not self.begun or self.ended:
            return
        self.ended = True
        self.ctx.progress("pooler", "")
        if repoint:
            admin.command(self.console, "RELOAD", "RESUME")
            return
        try:
            self._put_back()
        finally:
            admin.command(self.console, "RESUME")

    def _put_back(self) -> None:
        """The files as the running PgBouncer read them last: where observation found it pointing."""
        before = self.ctx.snapshot.observed.pooler.targets
        if before:
            _write(self.ctx, self.container, self.owner, targets=before)


@contextmanager
def paused(ctx: Context, what: str) -> Iterator[Pause]:
    """A Pause for one step, always ended: a step that fails only resumes the pool, pointing
    where it did (a switchover rolled back: the old primary takes writes again); the next apply
    points it anew if need be."""
    with ExitStack() as stack:
        pause = Pause(ctx, what, stack)
        try:
            yield pause
        except BaseException:
            pause.end(repoint=False)
            raise
        pause.end()


def _resume_should_pgtopo_die(ctx: Context, stack: ExitStack) -> None:
    """A command in the pooler's container waits on a stdin this process holds, then sends
    PgBouncer SIGUSR2 (RESUME): should pgtopo die while the pool is paused (kill -9 included),
    the pool resumes at once.  Needs `sh`, `cat` and `kill` in the image (an image without them:
    the next apply resumes it)."""
    stack.enter_context(docker_ops.exec_tethered(ctx.client, config.container_name(ctx.topo.cluster),
                                                 ["sh", "-c", RESUME_ON_EOF]))


def ensure_role(ctx: Context) -> None:
    """The pooler's login role and the function it looks other roles' passwords up with, on the
    primary (idempotent; the password follows the superuser's)."""
    state = ctx.snapshot.state
    if state is None:
        raise PostgresError("pooler: the cluster's credentials are not stored yet", hint="apply again")
    password = config.password(state.superuser_password)
    pg_ops.run(ctx.endpoint(ctx.topo.primary), lambda conn: _role_sql(conn, password), "create the pooler's role")


def _role_sql(conn: "psycopg.Connection", password: str) -> None:
    from psycopg import sql

    role, schema, function = (sql.Identifier(x) for x in (config.ROLE, config.LOOKUP_SCHEMA, config.LOOKUP_FUNCTION))
    with conn.transaction():
        pg_ops.put_role(conn, config.ROLE, sql.SQL(" LOGIN NOSUPERUSER NOREPLICATION NOCREATEDB NOCREATEROLE"),
                        password)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION postgres").format(schema))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        # Only roles that may log in, and never a superuser, a replication role or pgtopo's own:
        # those cannot log in through the pooler at all.
        conn.execute(sql.SQL(
            "CREATE OR REPLACE FUNCTION {}.{}(p_user text) RETURNS TABLE(usename name, passwd text) "
            "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$ "
            "SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE rolname = p_user AND rolcanlogin "
            "AND NOT rolsuper AND NOT rolreplication AND rolname NOT LIKE 'pgtopo%' "
            "AND (rolvaliduntil IS NULL OR rolvaliduntil > now()) $$").format(schema, function))
        conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {}.{}(text) FROM PUBLIC").format(schema, function))
        conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {}.{}(text) TO {}").format(schema, function, role))


def _owner(ctx: Context, image: str) -> tuple[int, int]:
    """uid:gid of the image's user; PgBouncer refuses to run as root, so neither does pgtopo."""
    user = docker_ops.image_user(ctx.client, image)
    if user is None:
        raise DockerError(f"pooler image {image} is not in the engine",
                          hint="build or pull it first (pgtopo never pulls the pooler's image)")
    name, _, group = user.partition(":")
    if name.isdigit() and (not group or group.isdigit()):
        ids = (int(name), int(group or name))
    else:
        with docker_ops.helper(ctx.client, image, (), L.labels(ctx.topo.cluster, "helper"), ctx.names.helper()) as hid:
            ids = (cluster_state.user_ids(ctx.client, hid, name) if name else None) or (0, 0)
    if ids[0] == 0:
        raise DockerError(f"pooler image {image} runs as root, and PgBouncer refuses to",
                          hint="use an image whose USER is an unprivileged user (e.g. pgtopo-local/pgbouncer:1)")
    return ids


def _labelled_owner(ctx: Context, pool: config.Pool = "read-write") -> tuple[int, int]:
    observed = ctx.snapshot.observed
    facts = (observed.pooler if pool == "read-write" else observed.read_pooler).container
    label = (facts.labels.get(FILES_OWNER) if facts is not None else None) or ""
    uid, _, gid = label.partition(":")
    if not (uid.isdigit() and gid.isdigit()):
        return _owner(ctx, ctx.topo.pooler.image if ctx.topo.pooler else "")
    return int(uid), int(gid)


def _write(ctx: Context, container: str, owner: tuple[int, int], pool: config.Pool = "read-write",
           targets: tuple[str, ...] | None = None) -> None:
    """pgbouncer.ini (pointing where the file says, or at `targets`) and the auth file."""
    state = ctx.snapshot.state
    if state is None:
        raise PostgresError("pooler: the cluster's credentials are not stored yet", hint="apply again")
    if targets is None:
        targets = ((ctx.topo.primary,) if pool == "read-write"
                   else planning.read_targets(ctx.topo, ctx.snapshot.observed))
    files = {f"{config.CONFIG_SUBDIR}/{config.INI}": config.ini(ctx.topo, targets, pool).encode(),
             f"{config.CONFIG_SUBDIR}/{config.AUTH_FILE}": config.auth_file(state.superuser_password).encode()}
    docker_ops.write_files(ctx.client, container, config.CONFIG_PARENT, files, *owner)


def _console(ctx: Context, pool: config.Pool = "read-write") -> admin.Console:
    state = ctx.snapshot.state
    port = docker_ops.host_port(ctx.client, config.container_name(ctx.topo.cluster, pool), config.PORT)
    if state is None or port is None:
        raise DockerError("pooler: its container runs without a published port", hint="apply again")
    return admin.Console(port, config.password(state.superuser_password))


def _await(ctx: Context, pool: config.Pool = "read-write") -> None:
    """Until its console answers (PgBouncer starts in well under a second)."""
    def answers() -> bool | None:
        try:
            admin.state(_console(ctx, pool))
        except (PostgresError, DockerError):
            return None
        return True

    if waits.wait_until(answers, time.monotonic() + READY_TIMEOUT, waits.SERVER) is None:
        name = config.container_name(ctx.topo.cluster, pool)
        raise DockerError(f"pooler: {name} did not answer within {READY_TIMEOUT:.0f} s: "
                          f"{docker_ops.last_lines(ctx.client, name)}", hint=f"see `docker logs {name}`")
