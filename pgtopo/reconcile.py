"""observe → plan → execute, until the plan is empty, every node's server answered and every
replica streams.

Called by the CLI's apply and diff.  Owns the order of things: refusals stop everything before any
change; destructive actions need the caller's consent before the first action; apply takes the
lock before it observes (diff never locks); each wave runs its nodes in parallel; a run that
started an action is recorded in the cluster's history before the lock is released.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgtopo import images, lock as cluster_lock, log, nodes, pg_ops, rollback, waits
from pgtopo.actions import Action, Kind, Plan, PullPolicy
from pgtopo.context import Context, Progress
from pgtopo.copies import wal_end_needed
from pgtopo.errors import (
    DockerError,
    NotConverged,
    PgtopoError,
    Replan,
    SafetyRefusal,
    ServerDidNotStart,
    SettingRejected,
    StalePlan,
)
from pgtopo.execute import execute
from pgtopo.observe import Snapshot, observe, read_wal_ends
from pgtopo.plan import plan
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker

    from pgtopo.journal import Journal
    from pgtopo.state import ClusterState

MAX_ROUNDS = 4
STREAM_TIMEOUT = 120.0
GONE_AFTER = 10.0  # a replica refusing connections this long while apply waits for it is gone


@dataclass
class Events:
    """Callbacks through which the CLI shows progress; all optional."""

    started: Callable[[Action], None] = lambda a: None
    finished: Callable[[Action, float, str | None], None] = lambda a, s, note: None
    info: Callable[[str], None] = lambda m: None
    progress: Progress = lambda node, text: None  # node, what is happening now


@dataclass
class Outcome:
    done: list[tuple[Action, float]] = field(default_factory=list)
    seconds: float = 0.0
    already_applied: bool = False  # a saved plan whose changes were in place: nothing was done

    def count(self, kind: Kind) -> int:
        return sum(1 for a, _ in self.done if a.kind is kind)


def diff(client: "docker.DockerClient", topo: Topology, prune_volumes: bool = False,
         allow_data_loss: bool = False, pull: PullPolicy = "missing", prune_roles: bool = False,
         prune_databases: bool = False, *, known: "ClusterState | None" = None,
         base_dir: Path | None = None) -> tuple[Plan, Snapshot]:
    """Observe and plan (never pulls: a missing image is a `+ pull` in the plan, or a refusal under
    --pull never).  With `base_dir` (where the file's secret files are) the passwords the file
    gives are compared with those in use, and used to connect should the server already have the
    file's superuser password; so are the passwords of its `roles:`."""
    wanted, warning = _file_passwords(topo, base_dir)
    passwords, unread = role_passwords(topo, base_dir)
    snapshot = observe(client, topo, known, wanted, passwords)
    # A promotion compares every copy of the WAL: read where the stopped ones end (only then).
    snapshot.observed = read_wal_ends(client, topo, snapshot.observed, wal_end_needed(topo, snapshot.observed))
    p = plan(topo, snapshot.observed, prune_volumes, allow_data_loss, pull, prune_roles, prune_databases)
    log.observed(topo.cluster, snapshot.observed)
    log.planned(topo.cluster, p)
    more = ((warning,) if warning else ()) + tuple(f"{why}; that role's password was not compared with the one in use"
                                                   for why in unread)
    return (replace(p, warnings=p.warnings + more) if more else p), snapshot


def role_passwords(topo: Topology, base_dir: Path | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """The passwords of the file's `roles:` that can be read, and why each other cannot be (diff
    then does not compare it, and apply refuses)."""
    from pgtopo import state as cluster_state
    from pgtopo.errors import SpecError

    found: dict[str, str] = {}
    unread: list[str] = []
    if base_dir is None:
        return found, ()
    for name in sorted(topo.roles):
        try:
            if (password := cluster_state.role_password(topo, name, base_dir)) is not None:
                found[name] = password
        except SpecError as exc:
            unread.append(exc.message)
    return found, tuple(unread)


def _role_passwords_readable(topo: Topology, base_dir: Path) -> None:
    """Apply refuses before it changes anything when a password of the file's `roles:` cannot be
    read (diff only warns: a CI job that plans may lack the secrets)."""
    from pgtopo.errors import SpecError

    unread = role_passwords(topo, base_dir)[1]
    if unread:
        raise SpecError(list(unread),
                        hint="set what the file's roles: read their passwords from, then apply again; nothing "
                             "was changed")


def _file_passwords(topo: Topology, base_dir: Path | None) -> tuple[tuple[str | None, str | None], str | None]:
    """The passwords the file asks for (None where it leaves them to pgtopo), and a warning when
    one cannot be read (an unset environment variable in a CI job that only plans)."""
    from pgtopo import state as cluster_state
    from pgtopo.errors import SpecError

    if base_dir is None or (topo.auth.superuser_password is None and topo.auth.replication_password is None):
        return (None, None), None
    try:
        return cluster_state.desired_passwords(topo, base_dir), None
    except SpecError as exc:
        return (None, None), f"{exc.message}; the file's passwords were not compared with those in use"


def apply(client: "docker.DockerClient", topo: Topology, base_dir: Path, *, consent: Callable[[Plan], bool],
          lock_timeout: float, events: Events | None = None, prune_volumes: bool = False,
          allow_data_loss: bool = False, pull: PullPolicy = "missing", journal: Journal | None = None,
          prune_roles: bool = False, prune_databases: bool = False) -> Outcome:
    """Make the cluster match `topo`; raises SafetyRefusal, NotConverged or another PgtopoError.

    The image is pulled first when `pull` says so (the lock is a container of it).  Then the
    lock, and the cluster is observed once, under it (terraform's order): a change never acts on
    what another apply was in the middle of, and nothing is observed twice.  The lock is held
    until every replica streams, and the run is recorded in the cluster's history (`journal`)
    before it is released."""
    events = _journaled(events or Events(), journal)
    started = time.monotonic()
    outcome = Outcome()
    _role_passwords_readable(topo, base_dir)
    _pull_first(client, topo.image, pull, events, outcome)
    rounds: PullPolicy = "never" if pull == "never" else "missing"  # pulled by now: a second pull is not wanted
    options = (prune_volumes, allow_data_loss, rounds, prune_roles, prune_databases)
    with ExitStack() as stack:
        try:
            held = stack.enter_context(
                cluster_lock.cluster_lock(client, topo.cluster, topo.image, lock_timeout, events.info, arm=False))
        except DockerError:  # the plan may say why in plainer words (the image is missing)
            _refuse(diff(client, topo, *options, base_dir=base_dir)[0])
            raise
        with _recorded(client, topo, base_dir, journal, events):
            snapshot = _converge(client, topo, base_dir, consent, events, outcome, options, held, journal)
            if not all_streaming(topo, snapshot):
                wait_streaming(topo, snapshot, STREAM_TIMEOUT, events.progress)
    outcome.seconds = time.monotonic() - started
    return outcome


def apply_saved(client: "docker.DockerClient", topo: Topology, base_dir: Path, saved: Plan,
                fingerprint: tuple[str, dict[str, Any]],
                *, consent: Callable[[Plan], bool], lock_timeout: float, events: Events | None = None,
                allow_data_loss: bool = False, pull: PullPolicy = "missing", journal: Journal | None = None) -> Outcome:
    """Carry out exactly a saved plan, after checking, under the lock, that the cluster is still
    in the state the plan was made from.  A cluster already as the file says (this plan, or the
    same change, was applied) is `already_applied`; any other change raises StalePlan.  A plan made
    while the engine lacked the image pulls it first, unless `pull` is never."""
    from pgtopo import documents

    events = _journaled(events or Events(), journal)
    started = time.monotonic()
    outcome = Outcome()
    _role_passwords_readable(topo, base_dir)
    _check(saved, consent, allow_data_loss=allow_data_loss)
    if any(a.kind is Kind.PULL for a in saved.actions):  # the plan was made while the engine lacked the image
        _pull_first(client, topo.image, "never" if pull == "never" else "missing", events, outcome)
        saved = replace(saved, actions=tuple(a for a in saved.actions if a.kind is not Kind.PULL))
    with cluster_lock.cluster_lock(client, topo.cluster, topo.image, lock_timeout, events.info) as held:
        snapshot = observe(client, topo, role_passwords=role_passwords(topo, base_dir)[0])
        digest, state = documents.fingerprint(snapshot.observed)
        if digest != fingerprint[0]:
            _stale_unless_applied(client, topo, base_dir, fingerprint[1], state, allow_data_loss)
            outcome.already_applied = True
            return outcome
        if journal is not None:
            journal.observed(snapshot)
        ctx = Context(client=client, topo=topo, snapshot=snapshot, base_dir=base_dir, progress=events.progress,
                      confirm_lock=held.confirm)
        with _recorded(client, topo, base_dir, journal, events):
            try:
                _run_waves(ctx, saved, events, outcome)
            except Replan as exc:  # a saved plan runs as it is: what it did not foresee ends it
                raise _unfinished(exc, "the saved plan did not foresee this",
                                  "make a new plan with `pgtopo diff FILE --out plan.json`: it re-clones the node") \
                    from exc
            wait_streaming(topo, snapshot, STREAM_TIMEOUT, events.progress)
    outcome.seconds = time.monotonic() - started
    return outcome


def _pull_first(client: "docker.DockerClient", image: str, policy: PullPolicy, events: Events,
                outcome: Outcome) -> None:
    """Pull the image when `policy` says so (images.py), shown as a `pull` action; a pull that
    found the engine's image up to date is not counted as a change."""
    action = Action(Kind.PULL, "", f"from its registry (--pull {policy})", target=image)
    announced = False

    def progress(text: str) -> None:
        nonlocal announced
        if not announced:
            events.started(action)
            announced = True
        events.progress("", text)

    pulled = images.ensure(client, image, policy, progress)
    if pulled is None:
        return
    if not announced:
        events.started(action)
    events.progress("", "")
    events.finished(action, pulled.seconds, None if pulled.newer else "the engine's image was up to date")
    if pulled.newer:
        outcome.done.append((action, pulled.seconds))


def _stale_unless_applied(client: "docker.DockerClient", topo: Topology, base_dir: Path, before: dict[str, Any],
                          now: dict[str, Any], allow_data_loss: bool) -> None:
    """The cluster changed since the plan was made: fine when it is now as the file says (planning
    again finds nothing to do: the plan's changes are in place); else StalePlan, naming what
    changed and what apply would do now."""
    from pgtopo import documents

    replanned, _ = diff(client, topo, allow_data_loss=allow_data_loss, base_dir=base_dir)
    if replanned.empty:
        return
    changes = documents.state_changes(before, now)
    listed = "\n".join(f"  {c}" for c in changes[:20]) or "  (the fingerprint differs)"
    pending = [f"  {a.describe()}" for a in replanned.actions] + [f"  refused: {r}" for r in replanned.refusals]
    raise StalePlan(f"the cluster changed since the plan was made, and not into what the file says; nothing was "
                    f"changed:\n{listed}\nthe file now needs:\n" + "\n".join(pending[:20]),
                    hint="make a new plan with `pgtopo diff FILE --out plan.json`")


def _journaled(events: Events, journal: Journal | None) -> Events:
    """`events`, also telling `journal` each action started and finished."""
    if journal is None:
        return events
    started, finished = events.started, events.finished

    def on_start(action: Action) -> None:
        journal.started(action)
        started(action)

    def on_finish(action: Action, seconds: float, note: str | None) -> None:
        journal.finished(action, seconds)
        finished(action, seconds, note)

    return replace(events, started=on_start, finished=on_finish)


@contextmanager
def _recorded(client: "docker.DockerClient", topo: Topology, base_dir: Path, journal: Journal | None,
              events: Events) -> Iterator[None]:
    """Record the run in the cluster's history however the block ends (the lock is still held);
    the block's own error goes on unchanged."""
    if journal is None:
        yield
        return
    try:
        yield
    except BaseException as exc:
        journal.record(client, topo, base_dir, exc, events.info)
        raise
    journal.record(client, topo, base_dir, None, events.info)


def _refuse(p: Plan, done: int = 0) -> None:
    """Refusals stop everything.  "nothing was changed" is said only when it is true: a later
    round refuses after earlier rounds have acted (their actions were printed)."""
    if p.refusals:
        changed = (f"refusing to go on after {done} action(s) above; the cluster is where they left it"
                   if done else "refusing to apply; nothing was changed")
        raise SafetyRefusal(f"{changed}:\n" + "\n".join(f"  {r}" for r in p.refusals),
                            hint="see `pgtopo status`; the next apply starts from there" if done else None)


def _check(p: Plan, consent: Callable[[Plan], bool], done: int = 0, allow_data_loss: bool = True) -> None:
    _refuse(p, done)
    changed = f"{done} action(s) above were carried out" if done else "nothing was changed"
    if p.data_loss and not allow_data_loss:
        listed = "\n".join(f"  ! {a.describe()}" for a in p.data_loss)
        raise SafetyRefusal(f"the plan discards WAL that no other node holds; {changed}:\n{listed}",
                            hint="only if losing those writes is intended: apply with --allow-data-loss")
    if p.destructive and not consent(p):
        listed = "\n".join(f"  ! {a.describe()}" for a in p.destructive)
        raise SafetyRefusal(f"the plan has destructive actions; {changed}:\n{listed}",
                            hint="review them with `pgtopo diff`, then run apply with --yes")


def _converge(client: "docker.DockerClient", topo: Topology, base_dir: Path, consent: Callable[[Plan], bool],
              events: Events, outcome: Outcome, options: tuple[bool, bool, PullPolicy, bool, bool], held: cluster_lock.Held,
              journal: Journal | None = None) -> Snapshot:
    known = None  # the state, once this apply has read it under the lock
    for n in range(MAX_ROUNDS):
        p, snapshot = diff(client, topo, *options, known=known, base_dir=base_dir)  # each round: the world moves
        if n == 0:
            if journal is not None:
                journal.observed(snapshot)
            for warning in p.warnings:
                events.info(f"warning: {warning}")
        if p.actions:
            held.arm()  # in the background; before a consent prompt, which may wait on a person
        _check(p, consent, len(outcome.done))
        ctx = Context(client=client, topo=topo, snapshot=snapshot, base_dir=base_dir, progress=events.progress,
                      confirm_lock=held.confirm)
        try:
            if not p.actions:
                silent = not_answering(topo, snapshot)
                if not silent:
                    return snapshot
                for node in silent:  # the plan could not see them: wait, then observe again
                    nodes.await_server(ctx, node)
                continue
            _run_waves(ctx, p, events, outcome)
        except Replan as exc:  # the waves after it were not run: observe and plan again
            if n == MAX_ROUNDS - 1:
                raise _unfinished(exc, f"after {MAX_ROUNDS} rounds") from exc
            events.info(exc.message)
        known = ctx.snapshot.state
    p, snapshot = diff(client, topo, *options, known=known, base_dir=base_dir)
    if p.actions or not_answering(topo, snapshot):
        pending = "\n".join([f"  {a.describe()}" for a in p.actions]
                            + [f"  {n}: its server does not answer" for n in not_answering(topo, snapshot)])
        raise NotConverged(f"still not in sync after {MAX_ROUNDS} rounds:\n{pending}",
                           hint="see the errors above and `pgtopo status`")
    return snapshot


def _unfinished(exc: Replan, when: str, hint: str | None = None) -> NotConverged:
    """A Replan with no round left to plan again in: the cluster does not match the file yet."""
    return NotConverged(f"{exc.message.removesuffix('; planning again')} ({when})", hint=hint or exc.hint)


def not_answering(topo: Topology, snapshot: Snapshot) -> list[str]:
    """Nodes of the file whose container runs but whose server did not answer (starting up after
    a container that a killed apply started finished initdb, say, or caught between two crashes):
    the plan saw nothing of their servers, so an empty plan does not mean converged."""
    return [n for n in sorted(topo.nodes) if (facts := snapshot.observed.node(n)).pg is None
            and facts.container is not None and facts.container.running]


def _run_waves(ctx: Context, p: Plan, events: Events, outcome: Outcome) -> None:
    """The plan's waves in order; work an action left running in the background is waited for
    before the next observation (its error is raised unless another one already is).  The lock
    is confirmed armed once the first wave has finished (its start ran meanwhile): only an
    engine that cannot start a container fails that, and then no wave after it runs."""
    first = len(outcome.done)
    try:
        for wave in p.waves():
            try:
                _run_wave(ctx, wave, events, outcome.done)
            except ServerDidNotStart as exc:
                _put_back(ctx, wave, [a for a, _ in outcome.done[first:]], exc, events, outcome)
                raise
            ctx.confirm_lock()
    finally:
        ctx.settle(raise_errors=sys.exc_info()[0] is None)


def _put_back(ctx: Context, wave: list[Action], done: list[Action], exc: ServerDidNotStart, events: Events,
              outcome: Outcome) -> None:
    """A restart whose server did not start: put that node back on the settings it ran with, take
    the change back out of the nodes configured but not restarted (rollback.py), and raise
    SettingRejected with the server's own words.  Returns (the caller raises `exc`) when the
    failure was no restart's."""
    failed = next((a for a in wave if a.node == exc.node and a.kind is Kind.RESTART), None)
    obs = ctx.snapshot.observed
    steps = rollback.steps(ctx.topo, obs, done, failed, exc.fatal) if failed is not None else ()
    if failed is None or not steps:
        return
    trouble = None
    try:
        _run_wave(ctx, list(steps), events, outcome.done)
    except PgtopoError as again:
        trouble = again.message
    message = rollback.message(ctx.topo, obs, done, failed, exc.fatal, steps, trouble)
    raise SettingRejected(message, hint=rollback.hint(ctx.topo, obs, done, failed)) from exc


def _run_wave(ctx: Context, wave: list[Action], events: Events, done: list[tuple[Action, float]]) -> None:
    """Each node's actions in order; different nodes in parallel; what finished is added to `done`
    (also when an error is raised).  The first error is raised after every other chain of the wave
    has finished, so nothing is left half-way unseen; a Replan only when no other error is."""
    chains: dict[str, list[Action]] = {}
    for action in wave:  # cluster-wide actions (no node) are independent of each other
        chains.setdefault(action.node or f"cluster:{action.kind.value}", []).append(action)

    finished = threading.Lock()

    def run_chain(chain: list[Action]) -> None:
        for action in chain:
            events.started(action)
            t0 = time.monotonic()
            note = execute(ctx, action)
            seconds = time.monotonic() - t0
            events.finished(action, seconds, note)
            with finished:
                done.append((action, seconds))

    errors: list[PgtopoError] = []
    # one thread per chain: clones are bounded per upstream in execute (free WAL senders)
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(chains)))) as pool:
        futures = [pool.submit(run_chain, chain) for chain in chains.values()]
        for f in futures:
            try:
                f.result()
            except PgtopoError as exc:
                errors.append(exc)
    if errors:
        raise min(errors, key=lambda e: isinstance(e, Replan))  # a real error first


def all_streaming(topo: Topology, snapshot: Snapshot) -> bool:
    """Did the last observation already see every replica streaming from its upstream?"""
    for node in topo.replicas():
        pg = snapshot.observed.node(node).pg
        if pg is None or pg.receiver is None or pg.receiver.status != "streaming":
            return False
        if pg.receiver.upstream != topo.upstream_of(node):
            return False
    return True


def wait_streaming(topo: Topology, snapshot: Snapshot, timeout: float,
                   progress: Callable[[str, str], None] = lambda n, t: None) -> None:
    """Wait until every replica's WAL receiver streams from its upstream (asks waits.SERVER apart)."""
    waiting = set(topo.replicas())
    last: dict[str, str] = {}
    unreachable: dict[str, float] = {}  # since when a node has refused connections

    def streaming_now() -> bool | None:
        for node in sorted(waiting):
            ep, upstream = snapshot.endpoints.get(node), topo.upstream_of(node) or ""
            ok, why = pg_ops.streams_from(ep, upstream) if ep else (False, "not running")
            if ok:
                waiting.discard(node)
                continue
            last[node] = why
            if why == pg_ops.WRITER:  # it never will (a writer the plan could not see): say so now
                raise NotConverged(f"{node} accepts writes, but the file makes it a replica of {upstream}",
                                   hint="run apply again: its plan decides what to do with it")
            if "cannot connect" not in why:
                unreachable.pop(node, None)
            elif time.monotonic() - unreachable.setdefault(node, time.monotonic()) > GONE_AFTER:
                # stopped or killed since it was observed: waiting longer cannot help
                raise NotConverged(f"{node} stopped answering while apply waited for it to stream ({why})",
                                   hint="run apply again: it starts from what it finds")
        if not waiting:
            progress("", "")
            return True
        progress("", f"waiting for {', '.join(sorted(waiting))} to stream")
        return None

    if waiting and waits.wait_until(streaming_now, time.monotonic() + timeout, waits.SERVER) is None:
        lines = "\n".join(f"  {n}: {last.get(n, 'not streaming')}" for n in sorted(waiting))
        raise NotConverged(f"replicas not streaming after {timeout:.0f} s:\n{lines}",
                           hint="see `pgtopo status` and `docker logs` of those nodes")
