"""Carry out a switchover or a failover (the plan decided which, and checked it may).

Called by execute.py.  Switchover: CHECKPOINT, fast shutdown of the old primary, read its
shutdown checkpoint from pg_control, wait until the candidate has replayed past it (else start
the old primary again as it was and fail: a candidate that has not got everything is never
promoted), promote, then restart the old primary as a standby.  Failover: fence the old
primary (stopped, standby.signal in its data) before promoting, so it never returns as a
second primary.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pgtopo import desired, docker_ops, labels as L, pg_ops, pgcontrol
from pgtopo.actions import Action
from pgtopo.errors import PgtopoError
from pgtopo.timelines import lsn_text

if TYPE_CHECKING:
    from pgtopo.execute import Context

POLL = 0.01


def switchover(ctx: "Context", action: Action, stop, start) -> str:
    """Returns the note apply prints: the write downtime."""
    cand, old = action.node, action.upstream or ""
    pg_ops.checkpoint(ctx.endpoint(old))
    ctx.confirm_lock()  # the lock's container started during the checkpoint; the engine is quiet now
    old_container = ctx.names.container(old)
    started = time.monotonic()
    stop(ctx, old)
    final = _shutdown_checkpoint(ctx, old_container)
    deadline = time.monotonic() + ctx.topo.switchover.timeout_seconds
    if pg_ops.wait_replayed_past(ctx.endpoint(cand), final, deadline, POLL) is None:
        replayed = pg_ops.replay_lsn(ctx.endpoint(cand)) or 0
        start(ctx, old)
        raise PgtopoError(
            f"{cand} did not replay {old}'s last WAL ({lsn_text(final)}; it is at {lsn_text(replayed)}) within "
            f"{ctx.topo.switchover.timeout_seconds:.0f} s; {old} was started again as the primary and "
            f"{cand} was not promoted",
            hint="check the replication of the candidate (`pgtopo status`), then apply again",
        )
    pg_ops.promote(ctx.endpoint(cand))
    downtime = time.monotonic() - started
    if old in ctx.topo.nodes:
        _restart_as_standby(ctx, old, start)
    return f"write downtime {downtime:.2f} s (shutdown of {old} until {cand} accepted writes)"


def _shutdown_checkpoint(ctx: "Context", container: str) -> int:
    raw = docker_ops.read_file(ctx.client, container, f"{L.PGDATA}/global/pg_control") or b""
    control = pgcontrol.parse(raw)
    if control is None or not control.cleanly_shut_down:
        docker_ops.start(ctx.client, container)
        raise PgtopoError(f"{container} did not shut down cleanly; it was started again and nothing was promoted",
                          hint=f"see `docker logs {container}`, then apply again")
    return control.checkpoint


def _restart_as_standby(ctx: "Context", node: str, start) -> None:
    upstream = ctx.topo.upstream_of(node)
    if upstream is not None:
        pg_ops.create_slot(ctx.endpoint(upstream), L.slot_name(node))
    docker_ops.run_job(ctx.client, desired.demote_job(ctx.topo, node))
    start(ctx, node)


def failover(ctx: "Context", action: Action, stop) -> str:
    cand, old = action.node, action.upstream
    note = ""
    if old:
        fence(ctx, old, stop)
        note = f"; {old} is fenced: it can only start as a standby"
    pg_ops.promote(ctx.endpoint(cand))
    return f"{cand} promoted{note}"


def fence(ctx: "Context", node: str, stop) -> None:
    facts = ctx.snapshot.observed.node(node)
    if facts.container is not None:
        stop(ctx, node)
    if facts.volume is not None:
        docker_ops.run_job(ctx.client, desired.fence_job(ctx.topo, node))
