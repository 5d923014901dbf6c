"""Carry out a switchover or a failover (the plan decided which, and checked that it may), and
fence or unfence a node.

Called by execute.py.  Never two writers: the old primary is fenced (standby.signal in its data)
before anything else, so from then on it can only start as a standby, whatever happens to pgtopo.
Switchover: fence, CHECKPOINT, fast shutdown, read the shutdown checkpoint from pg_control, wait
until the candidate has replayed past it (else unfence and start the old primary again as it was:
a candidate that has not got everything is never promoted), promote, restart the old primary as
a standby.  Failover: confirm the lock, fence every node the plan named (stopped, standby.signal),
then promote.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from pgtopo import desired, docker_ops, labels as L, nodes, pg_ops, pgcontrol, waits
from pgtopo.actions import Action
from pgtopo.containers import Mount
from pgtopo.context import Context
from pgtopo.errors import PgtopoError, RolledBack
from pgtopo.timelines import lsn_text

T = TypeVar("T")
PROMOTE_TIMEOUT = 60.0
GRACE = 3.0  # how long past its deadline a wait on a server that stopped answering is given


class Interruption(Protocol):
    """Told when writes stop and when they can go on (the pooler's pause: pooler/run.py)."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


def switchover(ctx: Context, action: Action, pause: Interruption | None = None) -> str:
    """Returns the note apply prints: the write downtime.  `pause` begins once the old primary is
    fenced and checkpointed, just before it stops (a pause that cannot begin unfences it: nothing
    changed), and ends once the candidate takes writes, before the old primary restarts as a
    standby."""
    cand, old = action.node, action.upstream or ""
    old_container = ctx.names.container(old)
    docker_ops.exec_run(ctx.client, old_container, ["touch", desired.FENCE_SIGNAL])  # read at start-up only
    pg_ops.checkpoint(ctx.endpoint(old))
    ctx.confirm_lock()  # the lock's container started during the checkpoint; the engine is quiet now
    if pause is not None:
        try:
            pause.begin()
        except PgtopoError:
            unfence(ctx, old)
            raise
    started = time.monotonic()
    timeout = ctx.topo.switchover.timeout_seconds
    # A fast shutdown waits for every WAL sender to see its standby confirm the last WAL; one whose
    # standby froze waits for wal_sender_timeout.  Past the switchover's timeout Docker kills it
    # (safe: crash recovery), the shutdown is not clean, and the switchover is rolled back.
    with _volume_reader(ctx, old) as reader:  # made before the shutdown: no time lost after it
        docker_ops.stop(ctx.client, old_container, timeout=max(1, math.ceil(timeout)))
        with ctx.lock:
            ctx.snapshot.endpoints.pop(old, None)
        final = _shutdown_checkpoint(ctx, old, reader)
    deadline = max(started + timeout, time.monotonic() + 1.0)
    try:
        replayed = _within(deadline - time.monotonic() + GRACE, lambda: pg_ops.wait_replayed_past(
            ctx.endpoint(cand), final, deadline, waits.SWITCHOVER))
    except (_Frozen, PgtopoError):
        replayed = None
    if replayed is None:
        _roll_back(ctx, old)
        raise RolledBack(
            f"{cand} did not replay {old}'s last WAL ({lsn_text(final)}) within {timeout:.0f} s (it is stuck, "
            f"paused or cut off); {old} was unfenced and started again as the primary, {cand} was not promoted",
            hint="check the candidate's replication with `pgtopo status`, then switch over again",
        )
    _promote(ctx, cand, old)
    downtime = time.monotonic() - started
    if pause is not None:
        pause.end()
    if old in ctx.topo.nodes:
        _restart_as_standby(ctx, old)
    return f"write downtime {downtime:.2f} s (shutdown of {old} until {cand} accepted writes)"


class _Frozen(Exception):
    """A wait outlived its bound: the server stopped answering mid-query."""


def _within(seconds: float, fn: Callable[[], T]) -> T:
    """Run `fn` in a thread and give up after `seconds`: a server frozen mid-query (docker pause)
    never answers, and a socket to it may never fail.  Raises what `fn` raised, or _Frozen."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=run, name="pgtopo-wait", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise _Frozen()
    if error:
        raise error[0]
    return result[0]


def _promote(ctx: Context, cand: str, fenced: str) -> None:
    try:
        _within(PROMOTE_TIMEOUT + GRACE, lambda: pg_ops.promote(ctx.endpoint(cand), PROMOTE_TIMEOUT))
    except _Frozen:
        raise PgtopoError(
            f"{cand} stopped answering while it was being promoted; whether it was is not known"
            + (f"; {fenced} stayed fenced, so no other node can accept writes" if fenced else ""),
            hint=f"once {cand} answers again (`docker ps`, `docker logs`), run apply: it goes on from there",
        ) from None


def _roll_back(ctx: Context, old: str) -> None:
    """The candidate was not promoted: the old primary takes writes again, unfenced."""
    unfence(ctx, old)
    nodes.start(ctx, old)


def _volume_reader(ctx: Context, node: str) -> AbstractContextManager[docker_ops.HelperId]:
    """A helper that mounts the node's data volume read-only (never a copy out of the node's own
    container: docker_ops.HelperId says why)."""
    mounts = (Mount(ctx.names.volume(node), L.DATA_MOUNT, read_only=True),)
    return docker_ops.helper(ctx.client, ctx.topo.image, mounts, L.labels(ctx.topo.cluster, "helper"),
                             ctx.names.helper())


def _shutdown_checkpoint(ctx: Context, old: str, reader: docker_ops.HelperId) -> int:
    container = ctx.names.container(old)
    raw = docker_ops.read_file(ctx.client, reader, f"{L.PGDATA}/global/pg_control") or b""
    control = pgcontrol.parse(raw)
    if control is None or not control.cleanly_shut_down:
        _roll_back(ctx, old)
        raise RolledBack(f"{container} did not shut down cleanly; it was unfenced and started again as the primary, "
                         "nothing was promoted", hint=f"see `docker logs {container}`, then apply again")
    return control.checkpoint


def _restart_as_standby(ctx: Context, node: str) -> None:
    upstream = ctx.topo.upstream_of(node)
    if upstream is not None:
        pg_ops.create_slot(ctx.endpoint(upstream), L.slot_name(node))
    docker_ops.run_job(ctx.client, desired.demote_job(ctx.topo, node))
    nodes.start(ctx, node)


def failover(ctx: Context, action: Action) -> str:
    """Fence every node the plan named, then promote.  The lock is confirmed first: a fence or a
    promotion must never run for an apply whose lock the engine could not arm."""
    cand = action.node
    ctx.confirm_lock()
    for node in action.fence:
        fence(ctx, node)
    _promote(ctx, cand, ", ".join(action.fence))
    fenced = f"; fenced (standby only from now on): {', '.join(action.fence)}" if action.fence else ""
    return f"{cand} promoted{fenced}"


def fence(ctx: Context, node: str) -> None:
    """Stop the node's container (if any) and write standby.signal into its data.  A server that
    did not answer is killed at once: its shutdown could not reach its standbys anyway (a fast
    shutdown waits wal_sender_timeout for them), and its shutdown checkpoint would be WAL they lack."""
    facts = ctx.snapshot.observed.node(node)
    if facts.container is not None:
        nodes.stop(ctx, node, grace=120 if facts.pg is not None else 0)
    if facts.volume is not None:
        docker_ops.run_job(ctx.client, desired.fence_job(ctx.topo, node))


def unfence(ctx: Context, node: str) -> None:
    """Remove standby.signal: from the running server's data, or with a job when it is stopped."""
    name = ctx.names.container(node)
    container = ctx.snapshot.observed.node(node).container
    if container is not None and docker_ops.inspect_container(ctx.client, name)["State"].get("Running"):
        docker_ops.exec_run(ctx.client, name, ["rm", "-f", desired.FENCE_SIGNAL])
    else:
        docker_ops.run_job(ctx.client, desired.unfence_job(ctx.topo, node))
