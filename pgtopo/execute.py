"""Carry out one action against Docker and Postgres.

Called by reconcile.py, which runs the waves of a plan (nodes of a wave in parallel).  Each
action is idempotent where it can be (a re-run after an interruption finds work half done and
finishes it), and every wait asks against a deadline (waits.wait_until, at the intervals named in
waits.py) instead of sleeping a fixed time.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from pgtopo import (
    desired,
    docker_ops,
    images,
    labels as L,
    nodes,
    pg_ops,
    probe,
    proof,
    state as cluster_state,
    switch,
    upgrade,
)
from pgtopo.actions import Action, Kind, Phase
from pgtopo.backup import repository, restore
from pgtopo.context import Context
from pgtopo.errors import DockerError, PgtopoError, SafetyRefusal, SettingRejected
from pgtopo.pooler import config as pooler_config, run as pooler
from pgtopo.roles import ops as roles_ops, planning as roles_planning

PROOF_TIMEOUT = 120.0  # initdb and a start of a throw-away server (2-3 s), on a slow machine


def execute(ctx: Context, action: Action) -> str | None:
    """Run one action; returns a note when it had to deviate (a failed rewind re-cloned);
    raises a PgtopoError subclass when it cannot be done.  An action the plan marked is run with
    the pooler paused around it (pooler/run.py)."""
    if action.pause_pooler:
        with pooler.paused(ctx, action.kind.value) as pause:
            if action.kind is not Kind.SWITCHOVER:  # a switchover pauses as late as it can
                pause.begin()
            return _execute(ctx, action, pause)
    return _execute(ctx, action)


def _execute(ctx: Context, action: Action, pause: pooler.Pause | None = None) -> str | None:
    node = action.node
    match action.kind:
        case Kind.REWIND:
            return _rewind(ctx, action)
        case Kind.SWITCHOVER:
            return switch.switchover(ctx, action, pause)
        case Kind.FAILOVER:
            return switch.failover(ctx, action)
        case Kind.FENCE:
            switch.fence(ctx, node)
        case Kind.UNFENCE:
            switch.unfence(ctx, node)
        case Kind.DEMOTE:
            _ensure_slot(ctx, action)
            nodes.stop(ctx, node)
            docker_ops.run_job(ctx.client, desired.demote_job(ctx.topo, node))
        case Kind.UPGRADE:
            return upgrade.run(ctx, action)
        case Kind.PULL:  # apply pulls before it takes the lock; this is for an image gone since
            images.ensure(ctx.client, action.target or ctx.topo.image, "missing", lambda text: ctx.progress("", text))
        case Kind.CREATE_NETWORK:
            docker_ops.create_network(ctx.client, ctx.topo.network_name, L.labels(ctx.topo.cluster, "network"))
        case Kind.CREATE_STATE:
            _create_state(ctx)
        case Kind.PREPARE_REPOSITORY:
            repository.ensure(ctx.client, ctx.topo)
        case Kind.REMOVE_JOB | Kind.REMOVE:
            docker_ops.remove_container(ctx.client, action.target or ctx.names.container(node))
        case Kind.CREATE_VOLUME:
            docker_ops.create_volume(ctx.client, ctx.names.volume(node), L.labels(ctx.topo.cluster, "node", node))
        case Kind.INIT:
            _bootstrap(ctx, action)
        case Kind.RESTORE:  # the restored data, then its container as for any existing data
            restore.run(ctx, action)
            nodes.create(ctx, node)
            _record_system_identifier(ctx, node)
        case Kind.CLONE:
            _bootstrap(ctx, action)
        case Kind.RECLONE:
            _clone(ctx, action)
        case Kind.CREATE:
            nodes.create(ctx, node)
        case Kind.RECREATE:
            nodes.stop(ctx, node)
            docker_ops.remove_container(ctx.client, ctx.names.container(node))
            nodes.create(ctx, node)
            if action.wave.phase is Phase.ROLL:  # a running node rolled: it streams again before the next
                nodes.await_streaming(ctx, node)  # (a stopped one may follow an old upstream: the next round repoints it)
        case Kind.START:
            nodes.start(ctx, node)
        case Kind.RESTART:
            if action.replay_past:
                nodes.await_replayed(ctx, node, action.replay_past)
            nodes.stop(ctx, node)
            nodes.start(ctx, node)
            nodes.await_streaming(ctx, node)
        case Kind.CONNECT:
            docker_ops.connect_network(ctx.client, ctx.names.container(node), ctx.topo.network_name, node)
            nodes.await_server(ctx, node)  # the published port comes back with the network, maybe another one
            nodes.await_streaming(ctx, node)
        case Kind.REMOVE_VOLUME:
            docker_ops.remove_volume(ctx.client, action.target or ctx.names.volume(node))
        case Kind.CREATE_ROLE:
            replication = ctx.snapshot.state.replication_password if ctx.snapshot.state else ""
            pg_ops.ensure_replication_role(ctx.endpoint(node), ctx.topo.auth.replication_user, replication)
            if ctx.snapshot.state is not None and ctx.snapshot.state.system_identifier is None:
                _record_system_identifier(ctx, node)  # a first start that failed, finished by a later apply
        case Kind.SET_PASSWORD:
            _set_passwords(ctx, node)
        case Kind.RECORD_IDENTITY:
            _record_system_identifier(ctx, node)
        case Kind.REWRITE_CONF:
            nodes.stop(ctx, node)
            docker_ops.run_job(ctx.client, desired.conf_job(ctx.topo, node, {k: v for k, v in action.settings if v is not None}))
        case Kind.RESTORE_CONF:
            nodes.stop(ctx, node)
            docker_ops.run_job(ctx.client, desired.restore_conf_job(ctx.topo, node, {k: v for k, v in action.settings
                                                                                    if v is not None}))
            nodes.start(ctx, node)
            nodes.await_streaming(ctx, node)
        case Kind.PROVE_SETTINGS:
            _prove(ctx, node)
        case Kind.CONFIGURE:
            pg_ops.alter_system(ctx.endpoint(node), dict(action.settings))
        case Kind.REPOINT:
            _ensure_slot(ctx, action)
            pg = ctx.snapshot.observed.node(node).pg
            conninfo = desired.conninfo(ctx.topo, node, pg.server_version if pg else None)
            pg_ops.set_replication_source(ctx.endpoint(node), conninfo, action.slot or "")
        case Kind.CREATE_SLOT:
            _ensure_slot(ctx, action)
        case Kind.DROP_SLOT:
            pg_ops.drop_slot(ctx.endpoint(node), action.slot or "")
        case Kind.CREATE_POOLER:
            pooler.create(ctx, pooler_config.pool_of(node))
        case Kind.RECREATE_POOLER:
            pooler.recreate(ctx, pooler_config.pool_of(node))
        case Kind.START_POOLER:
            pooler.start(ctx, pooler_config.pool_of(node))
        case Kind.REPOINT_POOLER:
            pooler.configure(ctx, pooler_config.pool_of(node))
        case Kind.RESUME_POOLER:
            pooler.resume(ctx, pooler_config.pool_of(node))
        case Kind.REMOVE_POOLER:
            docker_ops.remove_container(ctx.client, action.target or "")
        case Kind.CREATE_DB_ROLE | Kind.ALTER_DB_ROLE:
            _ensure_role(ctx, action)
        case Kind.CREATE_DATABASE | Kind.ALTER_DATABASE:
            name = action.target or ""
            roles_ops.ensure_database(ctx.endpoint(node), name, ctx.topo.databases[name])
        case Kind.DROP_DATABASE:
            roles_ops.drop_database(ctx.endpoint(node), action.target or "")
        case Kind.DROP_DB_ROLE:
            roles_ops.drop_role(ctx.endpoint(node), action.target or "")
    return None


def _ensure_role(ctx: Context, action: Action) -> None:
    """A role of the file as the file says; its password (read from the file now, never kept) set
    when it is made, or when the plan found the one in use differs."""
    name = action.target or ""
    setting = action.kind is Kind.CREATE_DB_ROLE or roles_planning.PASSWORD in dict(action.settings)
    password = cluster_state.role_password(ctx.topo, name, ctx.base_dir) if setting else None
    roles_ops.ensure_role(ctx.endpoint(action.node), name, ctx.topo.roles[name], password)


def _prove(ctx: Context, node: str) -> None:
    """Start a throw-away server of the image with the node's new settings (proof.py); raise
    SettingRejected, with the server's own reason, when it does not start."""
    output = docker_ops.run_job(ctx.client, desired.proof_job(ctx.topo, node, proof.STARTED, proof.REFUSED),
                                timeout=PROOF_TIMEOUT)
    found = proof.verdict(output)
    if found is None:
        raise DockerError(f"{node}: the job that starts a server with the new settings printed no verdict:\n"
                          f"{output.strip()[-300:]}", hint="see the output above, then apply again")
    started, log = found
    if not started:
        raise SettingRejected(proof.message(node, nodes.fatal_line(log)), hint=proof.HINT)


def _create_state(ctx: Context) -> None:
    superuser, replication = cluster_state.desired_passwords(ctx.topo, ctx.base_dir)
    new = cluster_state.ClusterState(
        superuser_password=superuser or cluster_state.generate_password(),
        replication_password=replication or cluster_state.generate_password(),
        hosts=desired.pgpass_hosts(ctx.topo),
    )
    if ctx.snapshot.observed.state_volume is None:
        docker_ops.create_volume(ctx.client, ctx.names.state_volume, L.labels(ctx.topo.cluster, "state"))
    cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume, ctx.topo.cluster, new,
                        ctx.topo.auth.replication_user)
    ctx.snapshot.state = new


def _bootstrap(ctx: Context, action: Action) -> None:
    """A node without data: a new container that initdbs (the primary) or clones from its
    upstream (a replica) before its server starts, in one container start (desired.NODE_SCRIPT).
    A left-over container of the node holds no data either (the plan checked) and is replaced."""
    node = action.node
    upstream = action.upstream if action.kind is Kind.CLONE else None
    if upstream is not None:
        _check_source(ctx, node, upstream, "clone")
        _ensure_slot(ctx, action)
    name = ctx.names.container(node)
    if ctx.snapshot.observed.node(node).container is not None:
        docker_ops.remove_container(ctx.client, name)
    nodes.cover_in_pgpass(ctx, node)
    cid = docker_ops.create_container(ctx.client, desired.node_container(ctx.topo, node, secrets.token_hex(8)))
    docker_ops.start(ctx.client, cid)
    if upstream is None:
        ctx.progress(node, "initdb")
        nodes.await_server(ctx, node, bootstrap=lambda: False)
        ctx.progress(node, "")
        _record_system_identifier(ctx, node)
    else:
        with _clone_slot(ctx, upstream), _clone_progress(ctx, node, upstream) as cloning:
            nodes.await_server(ctx, node, bootstrap=_unless_frozen(ctx, node, upstream, cloning))


def _record_system_identifier(ctx: Context, node: str) -> None:
    """Keep the new cluster's identity in the state: every later clone and rewind checks its
    source against it (this apply's from memory at once; the volume is written meanwhile)."""
    sysid = probe.probe(ctx.endpoint(node)).system_identifier
    assert ctx.snapshot.state is not None
    updated = ctx.snapshot.state = replace(ctx.snapshot.state, system_identifier=sysid)
    ctx.in_background(lambda: cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume,
                                                  ctx.topo.cluster, updated, ctx.topo.auth.replication_user))


def _set_passwords(ctx: Context, node: str) -> None:
    """The file's passwords: ALTER ROLE on the primary (standbys follow through WAL), then into
    the state volume, whose pgpass the replicas read when they next connect (a running
    replication connection stays up).  Killed in between, the next apply connects with the
    file's password (Endpoint.fallback) and finishes the job."""
    superuser, replication = cluster_state.desired_passwords(ctx.topo, ctx.base_dir)
    old = ctx.snapshot.state
    assert old is not None
    new = replace(old, superuser_password=superuser or old.superuser_password,
                  replication_password=replication or old.replication_password)
    pg_ops.set_passwords(ctx.endpoint(node), {"postgres": new.superuser_password,
                                              ctx.topo.auth.replication_user: new.replication_password})
    cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume, ctx.topo.cluster, new,
                        ctx.topo.auth.replication_user)
    with ctx.lock:
        ctx.snapshot.state = new
        ctx.snapshot.endpoints = {  # a standby may replay the new superuser password a moment later
            n: replace(ep, password=new.superuser_password, fallback=old.superuser_password)
            for n, ep in ctx.snapshot.endpoints.items()}


def _check_source(ctx: Context, node: str, upstream: str, verb: str) -> None:
    """Refuse to copy data from a server of another cluster."""
    facts = probe.probe(ctx.endpoint(upstream))
    expected = ctx.snapshot.state.system_identifier if ctx.snapshot.state else None
    if expected is not None and facts.system_identifier != expected:
        raise SafetyRefusal(
            f"{node}: refusing to {verb} from {upstream}: it serves another cluster "
            f"(system identifier {facts.system_identifier}, this cluster is {expected})",
            hint=f"fix {upstream} first; pgtopo never copies from a server of another cluster",
        )


def _rewind(ctx: Context, action: Action) -> str | None:
    """pg_rewind against the upstream; when that fails, re-clone and say so."""
    upstream = action.upstream or ctx.topo.primary
    _check_source(ctx, action.node, upstream, "rewind")
    _ensure_slot(ctx, action)
    nodes.stop(ctx, action.node)
    alive = nodes.source_alive(ctx, upstream)
    try:
        docker_ops.run_job(ctx.client, desired.rewind_job(ctx.topo, action.node), progress=alive)
    except DockerError as exc:
        docker_ops.run_job(ctx.client, desired.clone_job(ctx.topo, action.node), progress=alive)
        first = exc.message.splitlines()[-1] if exc.message else "failed"
        return f"pg_rewind failed ({first}); re-cloned from {upstream} instead"
    return None


def _clone(ctx: Context, action: Action) -> None:
    """pg_basebackup from the upstream, after checking it serves this very cluster."""
    upstream = action.upstream or ctx.topo.primary
    _check_source(ctx, action.node, upstream, "clone")
    _ensure_slot(ctx, action)
    nodes.stop(ctx, action.node)
    observed = ctx.snapshot.observed
    major = observed.node(action.node).major
    if observed.image_major is not None and major is not None and major < observed.image_major:
        # data of an older major, made by the old image's postgres user: the new image's takes it over first
        docker_ops.run_job(ctx.client, upgrade.adopt_job(ctx.topo, action.node))
    with _clone_slot(ctx, upstream), _clone_progress(ctx, action.node, upstream):
        docker_ops.run_job(ctx.client, desired.clone_job(ctx.topo, action.node),
                           progress=nodes.source_alive(ctx, upstream))


def _unless_frozen(ctx: Context, node: str, upstream: str, cloning: Callable[[], bool]) -> Callable[[], bool]:
    """The clone's progress, and an error as soon as its source is seen frozen (docker pause)."""
    alive = nodes.source_alive(ctx, upstream)

    def check() -> bool:
        if not alive():
            raise DockerError(f"{node}: its clone source {upstream} is paused (docker pause); the clone cannot go on",
                              hint=f"`docker unpause {ctx.names.container(upstream)}`, then apply again")
        return cloning()

    return check


def _clone_slot(ctx: Context, upstream: str) -> threading.Semaphore:
    """Bound parallel clones from one upstream by its free WAL senders: a clone with -X stream
    takes two, and every replica of the file streaming from it keeps one."""
    with ctx.lock:
        if upstream not in ctx.clone_slots:
            pg = ctx.snapshot.observed.node(upstream).pg
            wanted = desired.settings(ctx.topo, upstream).get("max_wal_senders", str(desired.DEFAULT_WAL_SENDERS))
            senders = pg.limits.get("max_wal_senders", 10) if pg else int(wanted) if wanted.isdigit() else 10
            free = senders - len(ctx.topo.downstreams(upstream))
            ctx.clone_slots[upstream] = threading.Semaphore(max(1, free // 2))
        return ctx.clone_slots[upstream]


@contextmanager
def _clone_progress(ctx: Context, node: str, upstream: str) -> Iterator[Callable[[], bool]]:
    """Report pg_stat_progress_basebackup of the upstream every 250 ms while the clone runs;
    yields "is the clone still making progress?" (a row seen in the last 30 s)."""
    done = threading.Event()
    ep = ctx.endpoint(upstream)
    seen = [time.monotonic()]

    def poll() -> None:
        while not done.wait(0.25):
            try:
                row = pg_ops.basebackup_progress(ep, f"{node}-clone")
            except PgtopoError:
                continue
            if row is not None:
                seen[0] = time.monotonic()
                phase, streamed, total = row
                size = f"{streamed / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
                ctx.progress(node, f"clone from {upstream}: {phase}, {size}")

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield lambda: time.monotonic() - seen[0] < 30.0
    finally:
        done.set()
        thread.join(timeout=2)
        ctx.progress(node, "")


def _ensure_slot(ctx: Context, action: Action) -> None:
    if action.upstream and action.slot:
        pg_ops.create_slot(ctx.endpoint(action.upstream), action.slot)

