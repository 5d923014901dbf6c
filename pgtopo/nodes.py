"""A node's server through its lifecycle: create its container, start it, stop it, and wait until
its server answers or streams.

Called by execute.py (every action that touches a node's container) and switch.py (stopping
and restarting the primaries it switches).  Every wait asks its server waits.SERVER apart (50 ms)
and, every few seconds, looks at the containers, so it ends early when what it waits on can never
come (the container exited, the upstream was paused).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pgtopo import desired, docker_ops, labels as L, log, pg_ops, state as cluster_state, waits
from pgtopo.context import Context
from pgtopo.copies import wal_removed
from pgtopo.errors import DockerError, NotConverged, PgtopoError, Replan, ServerDidNotStart
from pgtopo.timelines import lsn_text

READY_TIMEOUT = 120.0


def source_alive(ctx: Context, upstream: str) -> Callable[[], bool]:
    """A clone or rewind has no time limit (a large cluster takes as long as it takes), but one
    whose source was frozen (docker pause) would wait for ever: that ends the job."""
    name = ctx.names.container(upstream)
    return lambda: not docker_ops.inspect_container(ctx.client, name)["State"].get("Paused")



def stop(ctx: Context, node: str, grace: int = 120) -> None:
    """Fast shutdown of a node's container when it runs (SIGINT is the containers' stop signal),
    killed after `grace` seconds."""
    name = ctx.names.container(node)
    facts = ctx.snapshot.observed.node(node).container
    if facts is not None:
        if docker_ops.inspect_container(ctx.client, name)["State"].get("Paused"):
            raise DockerError(f"{node}: its container {name} was paused (docker pause) while apply ran; a frozen "
                              "server cannot shut down", hint=f"`docker unpause {name}`, then apply again")
        docker_ops.stop(ctx.client, name, timeout=grace)
    with ctx.lock:
        ctx.snapshot.endpoints.pop(node, None)


def start(ctx: Context, node: str) -> None:
    """Start a node's existing container and wait until its server answers."""
    docker_ops.start(ctx.client, ctx.names.container(node))
    await_server(ctx, node)


def create(ctx: Context, node: str) -> None:
    cover_in_pgpass(ctx, node)
    spec = desired.node_container(ctx.topo, node)
    cid = docker_ops.create_container(ctx.client, spec)
    docker_ops.start(ctx.client, cid)
    await_server(ctx, node)


def cover_in_pgpass(ctx: Context, node: str) -> None:
    """Before a node's container is made, the state's pgpass names it (a node added to the file
    since the state was written; a state written by an older pgtopo, for any host)."""
    with ctx.lock:
        old = ctx.snapshot.state
        if old is None or ctx.names.container(node) in old.hosts:
            return
        new = replace(old, hosts=tuple(sorted(set(old.hosts) | set(desired.pgpass_hosts(ctx.topo)))))
        cluster_state.write(ctx.client, ctx.topo.image, ctx.names.state_volume, ctx.topo.cluster, new,
                            ctx.topo.auth.replication_user)
        ctx.snapshot.state = new


def await_streaming(ctx: Context, node: str) -> None:
    """In rolling changes a replica must stream again before the next node is touched."""
    upstream = ctx.topo.upstream_of(node)
    if upstream is None or upstream not in ctx.snapshot.endpoints:
        return
    deadline, alive = time.monotonic() + READY_TIMEOUT, source_alive(ctx, upstream)
    log.waiting(ctx.topo.cluster, node, f"it streams from {upstream}", READY_TIMEOUT)
    # In slices, so an upstream frozen meanwhile (docker pause) ends the wait early.  Not one
    # waits.wait_until: nothing sleeps here (each slice is pg_ops.wait_streaming's wait_until), and the
    # deadline is checked before the upstream, so a wait that timed out says so.
    while True:
        try:
            pg_ops.wait_streaming(ctx.endpoint(node), upstream, min(deadline, time.monotonic() + waits.UPSTREAM_CHECK))
            return
        except NotConverged:
            if time.monotonic() >= deadline:
                raise
            if not alive():
                raise DockerError(f"{node}: its upstream {upstream} was paused (docker pause) while {node} waited to "
                                  "stream from it", hint=f"`docker unpause {ctx.names.container(upstream)}`, "
                                  "then apply again") from None


def await_replayed(ctx: Context, node: str, primary: str) -> None:
    """Before a standby restarts with a lower hot-standby setting: wait until it has replayed the
    primary's WAL as far as the primary has flushed it now.  That is past the parameter-change
    record the primary wrote and flushed when it started with the lower value (before it accepted
    connections), whose replay updates the standby's pg_control, against which the standby's
    settings are checked when it starts."""
    target = pg_ops.flush_lsn(ctx.endpoint(primary))
    ctx.progress(node, f"replaying {primary}'s WAL up to {lsn_text(target)} (its parameter change)")
    try:  # replayed past target - 1: the replay position is a record's end, and may be exactly target
        reached = pg_ops.wait_replayed_past(ctx.endpoint(node), target - 1, time.monotonic() + READY_TIMEOUT)
    finally:
        ctx.progress(node, "")
    if reached is None:
        raise NotConverged(f"{node}: did not replay {primary}'s WAL up to {lsn_text(target)} within {READY_TIMEOUT:.0f} s "
                           "or its replay is paused (PostgreSQL pauses a standby at a parameter change its settings "
                           "are below); not restarted: with the lower setting it would refuse to start before it has",
                           hint=f"see `pgtopo status` (is {node} streaming?), then apply again: a standby whose "
                                "replay PostgreSQL paused is re-cloned")


def _unless_wal_removed(ctx: Context, node: str, name: str, last: str) -> None:
    """Raise Replan when the server refuses connections because it is still short of a consistent
    state and its WAL receiver was told the upstream removed the WAL it needs: it would wait
    forever (copies.never_consistent; the next round re-clones it)."""
    from pgtopo.observe import last_stream_error, not_open_yet  # the same readings as observation's

    if not not_open_yet(last):
        return
    try:
        error = last_stream_error(docker_ops.last_lines(ctx.client, name, 200).splitlines())
    except PgtopoError:
        return
    if wal_removed(error):
        raise Replan(f"{node}: its server cannot open: {error}; planning again",
                     hint="run apply again: it re-clones the node from its upstream")


def await_server(ctx: Context, node: str, bootstrap: Callable[[], bool] | None = None) -> None:
    """Learn the published port of a started node, then wait until its server answers.

    A server that stops and is restarted by Docker (a crash loop: a setting it cannot start with)
    ends the wait at once, with the container's last lines, instead of at the deadline; meanwhile
    the wait reports how long it has waited.  `bootstrap`: the container first makes its data;
    while that says it is making progress the wait has no deadline, and when the container stops
    first (it exits, or Docker restarted it) the container is removed (its volume kept) and its
    last output reported."""
    name = ctx.names.container(node)
    started = time.monotonic()
    restarts = docker_ops.inspect_container(ctx.client, name).get("RestartCount", 0)
    port = docker_ops.host_port(ctx.client, name, L.PG_PORT)
    if port is None:
        state = docker_ops.inspect_container(ctx.client, name)["State"]
        if bootstrap is not None and (state.get("Restarting") or state.get("Status") in ("exited", "dead")):
            _bootstrap_failed(ctx, node, name)
        stopped = bool(state.get("Restarting")) or state.get("Status") in ("exited", "dead")
        why = "it keeps stopping" if state.get("Restarting") else f"container {state.get('Status')}"
        logs = docker_ops.last_lines(ctx.client, name)
        message, hint = f"{node}: Docker published no port for {name} ({why}):\n{logs}", f"see `docker logs {name}`"
        if stopped:
            raise ServerDidNotStart(message, node, fatal_line(logs), hint=hint)
        raise PgtopoError(message, hint=hint)
    ep = pg_ops.Endpoint(node, port, ctx.password, cluster=ctx.topo.cluster)
    deadline = time.monotonic() + READY_TIMEOUT
    log.waiting(ctx.topo.cluster, node, f"its server answers on port {port}", None if bootstrap else READY_TIMEOUT)
    try:
        # Not one waits.wait_until: nothing sleeps here (each slice is pg_ops.wait_ready's wait_until),
        # a bootstrap's progress moves the deadline, and after each slice the container decides
        # which error ends the wait (bootstrap failed, crash loop, exited) before the deadline does.
        while True:
            try:
                pg_ops.wait_ready(ep, min(deadline, time.monotonic() + waits.CONTAINER_CHECK))
                break
            except PgtopoError as exc:
                info = docker_ops.inspect_container(ctx.client, name)
                state = info["State"]
                gone = state.get("Status") in ("exited", "dead") and not state.get("Restarting")
                looping = bool(state.get("Restarting")) or info.get("RestartCount", 0) > restarts
                if bootstrap is not None and (gone or looping or info.get("RestartCount", 0) > 0):
                    _bootstrap_failed(ctx, node, name)
                if bootstrap is not None and bootstrap():
                    deadline = max(deadline, time.monotonic() + READY_TIMEOUT)
                if gone or looping or time.monotonic() >= deadline:
                    logs = docker_ops.last_lines(ctx.client, name)
                    why = ("its server stopped and Docker restarted it" if looping else
                           f"container {state.get('Status')}" if gone else f"no answer in {READY_TIMEOUT:.0f} s")
                    message = f"{node}: the server did not come up ({why}; last: {exc.message}):\n{logs}"
                    if gone or looping:
                        raise ServerDidNotStart(message, node, fatal_line(logs),
                                                hint=f"see `docker logs {name}`") from None
                    raise PgtopoError(message, hint=f"see `docker logs {name}`") from None
                if bootstrap is None:  # a bootstrap reports its own progress (initdb, the clone)
                    _unless_wal_removed(ctx, node, name, exc.message)
                    ctx.progress(node, f"waiting for its server to answer ({time.monotonic() - started:.0f} s)")
    finally:
        if bootstrap is None:
            ctx.progress(node, "")
    with ctx.lock:
        ctx.snapshot.endpoints[node] = ep


def fatal_line(logs: str) -> str:
    """The server's own reason for stopping: its last FATAL (or PANIC) line in these last lines of
    its log, from the level on (`FATAL:  could not map anonymous shared memory: …`); else the last line."""
    lines = [line.strip() for line in logs.splitlines() if line.strip()]
    for line in reversed(lines):
        for level in ("FATAL:", "PANIC:"):
            if level in line:
                return line[line.index(level):]
    return lines[-1] if lines else "(no output)"


def _bootstrap_failed(ctx: Context, node: str, name: str) -> None:
    logs = docker_ops.last_lines(ctx.client, name)
    docker_ops.remove_container(ctx.client, name)  # its volume is kept; the next apply goes on from there
    raise DockerError(f"{node}: its new container stopped before its server answered (making its data, or "
                      f"starting on it, failed); the container was removed, its volume kept:\n{logs}",
                      hint="fix the cause shown above and run apply again; it resumes where it stopped")
