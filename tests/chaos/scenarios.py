"""The two reproductions of issue 11, and its full disk in a clone, as fixed sequences the
harness runs and checks.

`python -m tests.chaos --scenario split-brain|lost-write|disk-full` (or `make chaos SCENARIO=...`)
and `test_scenarios.py`.  Each runs its steps, then the same recovery and checks as a random round,
and returns the violations: on code with the bugs, split-brain reports two writers and
lost-write reports acknowledged rows missing; disk-full also reports an apply that does not fail
cleanly on the full disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import engine
from .checker import Violation
from .choices import Choice
from .harness import NO_SPACE, Harness, Options
from .topology import Topo, read_primary

Log = Callable[[str], None]


def split_brain(opts: Options, log: Log = print) -> list[Violation]:
    """Cascade primary -> replica -> replica2, replica allows one slot; `switchover --to replica`
    promotes it and fails on the slot; the next apply starts the old primary again."""
    h = Harness(opts, log)
    topo = Topo(h.cluster, opts.image, "primary", {"primary": None, "replica": None, "replica2": "replica"},
                node_params={"replica": {"max_replication_slots": 1}})
    try:
        h.start(topo)
        time.sleep(0.5)  # a few acknowledged rows before the switchover
        step(h, "switchover", str(h.path), "--to", "replica", "--yes")
        h.topo = h.topo.with_primary(read_primary(h.path))
        h.say(f"  the file now says primary: {h.topo.primary}")
        step(h, "apply", str(h.path), "--yes")
        h.check_writers("after the switchover and the next apply")
        h.recover()
        h.check_round(1)
    finally:
        h.finish()
    return _done(h, "split-brain")


def lost_write(opts: Options, log: Log = print, rows: int = 20) -> list[Violation]:
    """Flat 1+2; rows committed while replica is stopped reach replica2 only; replica2 stopped,
    the primary removed, replica started; `switchover --to replica` must not discard them."""
    h = Harness(opts, log)
    h.client.paused.set()  # this scenario writes its own rows, at known moments
    try:
        h.start()
        docker(h, "stop", h.container("replica"))
        acked = [a for a in (h.client.write_once() for _ in range(rows)) if a is not None]
        h.say(f"  {len(acked)} rows acknowledged by the primary while replica is stopped")
        ids = [a.id for a in acked]
        if not _wait(lambda: _count_on(h, "replica2", ids) == len(ids)):
            raise RuntimeError("replica2 never received the rows")
        h.say("  replica2 has them")
        docker(h, "stop", h.container("replica2"))
        docker(h, "rm", "-f", h.container("primary"))
        docker(h, "start", h.container("replica"))
        _wait(lambda: engine.docker_cli("exec", h.container("replica"), "pg_isready", "-q").returncode == 0)
        step(h, "switchover", str(h.path), "--to", "replica", "--yes")
        h.topo = h.topo.with_primary(read_primary(h.path))
        h.check_writers("after the failover")
        h.recover()
        h.check_round(1)
    finally:
        h.finish()
    return _done(h, "lost-write")


def disk_full(opts: Options, log: Log = print) -> list[Violation]:
    """Flat 1+2 with the client writing; the round of a random run that adds replica3 with a full
    disk (its data volume an 8 MB tmpfs, a filler table on the primary), and no other fault.  The
    apply must fail cleanly (exit 2, "No space left on device", no traceback); the recovery frees
    the space as a user would and must converge, with the usual checks."""
    h = Harness(opts, log)
    choice = Choice(1, "change", "add-replica", switch_by_command=False, failover_kill="stop", target=0.0,
                    other=0.0, value=0.0, fault="none", fault_target=0.0, fault_delay=0.0, lossy=False,
                    disk_full=True)
    try:
        h.start()
        time.sleep(0.5)  # a few acknowledged rows before the change
        h.run_round(choice)
        run = h.last_op
        if h.former != {"primary", "replica", "replica2", "replica3"} or run is None:
            h.record([Violation("disk-full", "the round did not add replica3")])
        elif run.code != 2 or NO_SPACE not in run.err or "Traceback" in run.text():
            h.record([Violation("disk-full", f"the apply onto the full disk did not fail cleanly (exit 2, "
                                             f"\"{NO_SPACE}\", no traceback): {run.summary()}\n{run.err[-800:]}")])
        if h.full_disk is not None:
            h.record([Violation("disk-full", f"the recovery converged without freeing {h.full_disk}")])
    finally:
        h.finish()
    return _done(h, "disk-full")


SCENARIOS: dict[str, Callable[[Options, Log], list[Violation]]] = {"split-brain": split_brain,
                                                                    "lost-write": lost_write,
                                                                    "disk-full": disk_full}


def step(h: Harness, *args: str) -> engine.Run:
    run = engine.pgtopo(*h.lossy_args(args))
    h.after_command(run)
    h.history.append(f"pgtopo {' '.join(args)}")
    h.say(f"  {run.summary()}")
    return run


def docker(h: Harness, *args: str) -> None:
    proc = engine.docker_cli(*args)
    h.history.append(f"docker {' '.join(args)}")
    h.say(f"  docker {' '.join(args)}: exit {proc.returncode}")


def _count_on(h: Harness, node: str, ids: list[int]) -> int:
    try:
        return int(h.sql(node, f"SELECT count(*) FROM chaos_ack WHERE id = ANY(ARRAY{ids}::bigint[])")[0][0])
    except Exception:
        return -1


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _done(h: Harness, name: str) -> list[Violation]:
    if h.violations:
        h.opts.replay = ""
        h.report(scenario=name)
    return h.violations
