"""The two reproductions of issue 11, as fixed sequences the harness runs and checks.

`python -m tests.chaos --scenario split-brain|lost-write` (or `make chaos SCENARIO=...`) and
`test_scenarios.py`.  Each runs its steps, then the same recovery and checks as a random round,
and returns the violations: on code with the bugs, split-brain reports two writers and
lost-write reports acknowledged rows missing.
"""

from __future__ import annotations

import time
from typing import Callable

from . import engine
from .checker import Violation
from .harness import Harness, Options
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


SCENARIOS: dict[str, Callable[[Options, Log], list[Violation]]] = {"split-brain": split_brain,
                                                                    "lost-write": lost_write}


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
