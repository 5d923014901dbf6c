"""The two reproductions of issue 11, its full disk in a clone, and the synchronous lane's quorum
failover, as fixed sequences the harness runs and checks.

`python -m tests.chaos --scenario split-brain|lost-write|disk-full|sync-quorum` (or `make chaos
SCENARIO=...`) and `test_scenarios.py` (all but sync-quorum: its fence may wait a minute).  Each
runs its steps, then the same recovery and checks as a random round, and returns the violations:
on code with the bugs, split-brain reports two writers and lost-write reports acknowledged rows
missing; disk-full also reports an apply that does not fail cleanly on the full disk; sync-quorum
a failover not promoted by the quorum rule, or an acknowledged row lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from . import engine
from .checker import Violation
from .choices import Choice
from .harness import BURST_ROWS, NO_SPACE, Harness, Options
from .probes import Conn
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


def sync_quorum(opts: Options, log: Log = print) -> list[Violation]:
    """`synchronous: any 1 required`, flat 1+2, the client writing.  Both standbys paused while a
    40 MB transaction commits on the primary: its commit waits for them, and the primary holds WAL
    no standby does (their sockets buffer a few MB at most).  The primary is cut off its network
    (its container runs, its server does not answer: its WAL end is unknown), the standbys thawed,
    the file names replica.  The quorum rule must let a failover promote a standby (R + W > N),
    the old primary's rejoin must be refused for the unacknowledged WAL it alone holds (the one
    refusal the harness answers with --allow-data-loss, no loss allowed), and every acknowledged
    row must be on the new primary.  The fence kills the old primary (its server did not answer:
    a fast shutdown would wait out wal_sender_timeout for standbys it is cut off from)."""
    h = Harness(replace(opts, synchronous=opts.synchronous or "any:1:required"), log)
    try:
        h.start()
        h.sql(h.topo.primary, "CREATE TABLE chaos_burst (pad text)")
        time.sleep(1.0)  # acknowledged rows first
        for node in ("replica", "replica2"):
            docker(h, "pause", h.container(node))
        waiting = threading.Thread(target=_unacknowledged_burst, args=(h,), daemon=True)
        waiting.start()
        time.sleep(2.0)  # the burst is in the primary's WAL, its commit waiting for a standby
        docker(h, "network", "disconnect", h.topo.network, h.container("primary"))
        for node in ("replica", "replica2"):
            docker(h, "unpause", h.container(node))
        h.topo = h.topo.with_primary("replica")
        h.write("the file now says primary: replica")
        step(h, "apply", str(h.path), "--yes")
        h.check_writers("after the failover")
        h.check_round(1, h.recover())
        said = (h.workdir / "commands.log").read_text()
        if "unreachable copies left aside" not in said:
            h.record([Violation("sync-quorum", "no failover promoted a standby by the quorum rule (see commands.log)")])
        if not h.discards:
            h.record([Violation("sync-quorum", "the old primary rejoined without a refusal to discard the WAL only "
                                               "it held (or the recovery never got there)")])
    finally:
        h.finish()
    return _done(h, "sync-quorum")


def _unacknowledged_burst(h: Harness) -> None:
    """About 40 MB in one transaction on the primary; its COMMIT never returns (the standbys are
    paused, then the primary is cut off): WAL nobody acknowledged.  Cut after 90 s at the latest."""
    conn = Conn(h.password, "chaos-burst")
    port = engine.node_ports(h.docker, h.cluster)[h.topo.primary]
    timer = threading.Timer(90.0, lambda: conn.unstick(0))
    timer.start()
    try:
        conn.execute(port, "INSERT INTO chaos_burst SELECT repeat(md5(g::text), 30) "
                           f"FROM generate_series(1, {BURST_ROWS}) g")
        h.record([Violation("sync-quorum", "a COMMIT returned while every synchronous standby was paused "
                                           "(durability: required)")])
    except Exception as exc:
        h.say(f"  the burst's COMMIT never returned: {type(exc).__name__}: {(str(exc).strip() or '?').splitlines()[0][:160]}")
    finally:
        timer.cancel()
        conn.close()


SCENARIOS: dict[str, Callable[[Options, Log], list[Violation]]] = {"split-brain": split_brain,
                                                                    "lost-write": lost_write,
                                                                    "disk-full": disk_full,
                                                                    "sync-quorum": sync_quorum}


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
