"""The chaos runner: a real cluster, a writing client, a monitor, and R rounds of seeded
operations and faults, each followed by a recovery as a user would do it and the checks.

Called by `python -m tests.chaos` (`make chaos`), the slice test and the scenarios.  What each
round does comes from `choices.draw(seed, round)`; what the cluster does in return is real.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from pgtopo import labels

from . import checker, engine
from .checker import LossAllowance, Violation
from .choices import Choice, draw, pick
from .ops import keep_standbys, topology_change
from .probes import Client, Conn, Monitor
from .topology import SECRET_NAME, Synchronous, Topo, read_primary

OP_TIMEOUT = 60.0  # a pgtopo command still running after this is cancelled (and reported)
RECOVERY_ATTEMPTS = 6
PRIMARY_SUGGESTION = re.compile(r"\(primary: ([a-z][a-z0-9-]*)\)")
NO_SPACE = "No space left on device"
BURST_ROWS = 40_000  # rows of 960 bytes: about 40 MB of heap and as much WAL
FILLER_ROWS = 30_000  # about 4 MB on the primary, so that no clone fits in a full disk's 8 MB
STOP_TO_READ = re.compile(r"^\s*([a-z][a-z0-9-]*): .*Stop its container so its volume can be read", re.M)
UPSTREAM_DOWN = re.compile(r"its upstream ([a-z][a-z0-9-]*) cannot be observed.*bring the upstream up first")
# apply's refusal: "error: refusing to apply; nothing was changed:" (or "refusing to go on after N
# action(s) above; ...:"), then one refusal a line, each indented by two spaces
REFUSALS = re.compile(r"^(?:error: )?refusing to (?:apply|go on)\b[^\n]*:\n((?:  \S[^\n]*(?:\n|$))+)", re.M)
# A rewind or re-clone that would discard WAL no other node holds (plan.py's refusal), the one
# refusal a synchronous `required` run answers with --allow-data-loss (see Harness.discards_only)
DISCARD = re.compile(r"^([a-z][a-z0-9-]*): a (rewind|re-clone) would discard (.*?) on timeline .*--allow-data-loss")


@dataclass
class Options:
    seed: int = 1
    rounds: int = 5
    image: str = "pgtopo-local/postgres:17"
    lossy_rate: float = 0.0  # share of rounds designated lossy (they may pass --allow-data-loss)
    engine_restart: bool = False
    keep_going: bool = False
    keep: bool = False  # leave the cluster up after a violation, to look at it
    op_timeout: float = OP_TIMEOUT
    replay: str = ""  # extra arguments the replay command needs
    synchronous: str = ""  # METHOD:NUMBER[:DURABILITY] (e.g. any:1:required): the file's synchronous: block


@dataclass
class Harness:
    """One run: `start()`, then `run_round(draw(...))` R times, then `finish()`."""

    opts: Options
    log: Callable[[str], None] = print
    cluster: str = field(default_factory=lambda: "chaos-" + secrets.token_hex(3))
    violations: list[Violation] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    allowances: list[LossAllowance] = field(default_factory=list)
    former: set[str] = field(default_factory=set)  # every node the file ever named

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.cluster}-"))
        self.path = self.workdir / f"{self.cluster}.yaml"
        self.password = secrets.token_urlsafe(24)
        (self.workdir / SECRET_NAME).write_text(self.password + "\n")
        self.docker = docker.from_env(timeout=120)
        self.t0 = time.monotonic()
        self.topo = Topo(self.cluster, self.opts.image, "primary", {"primary": None, "replica": None, "replica2": None})
        self.monitor = Monitor(lambda: engine.node_ports(self.docker, self.cluster), self.password, self.now)
        self.client = Client(self._client_target, self.password, self.now)
        self.data_loss_flag = False
        self.sweep_mark = 0
        self.extra = ""
        self.lossy = False
        self.full_disk: str | None = None  # the tmpfs data volume a disk-full round made, until freed
        self.disk_full_seen = False  # a command said "No space left on device" while it existed
        self.filler = False
        self.last_op: engine.Run | None = None
        self.sync = Synchronous.parse(self.opts.synchronous) if self.opts.synchronous else None
        self.discards = 0  # applies given --allow-data-loss for an unacknowledged tail (no LossAllowance)

    # --- life cycle -------------------------------------------------------------------------

    def start(self, topo: Topo | None = None, extra: str = "") -> None:
        """Converge the first cluster, create the client's table, start the monitor and client."""
        self.topo = topo or self.topo
        if self.sync is not None:
            if len(self.topo.eligible()) < self.sync.number:
                raise ValueError(f"--synchronous {self.sync.describe()}: only {len(self.topo.eligible())} replicas "
                                 f"stream from the primary in the first file")
            extra = "\n".join(x for x in (extra.rstrip("\n"), self.sync.render()) if x)
        self.extra = extra
        self.former = set(self.topo.nodes())
        self.topo.write(self.path, extra)
        self.data_loss_flag = "--allow-data-loss" in engine.pgtopo("apply", "--help").out
        self.say(f"cluster {self.cluster}, image {self.opts.image}, file {self.path}, seed {self.opts.seed}, "
                 f"--allow-data-loss {'available' if self.data_loss_flag else 'not available'}"
                 + (f", synchronous {self.sync.describe()}" if self.sync else ""))
        first = engine.pgtopo("apply", str(self.path), "--yes")
        self.say(f"setup: {first.summary()}")
        if first.code != 0:
            raise RuntimeError(f"the first apply failed:\n{first.text()}")
        self.sql(self.topo.primary, "CREATE TABLE chaos_ack (id bigint PRIMARY KEY, node text NOT NULL, "
                                    "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        self.monitor.start()
        self.client.start()

    def finish(self) -> list[Violation]:
        """Stop the client and monitor, destroy the cluster with its volumes, check nothing is left."""
        self.client.stop()
        self.monitor.stop()
        if self.violations and self.opts.keep:
            self.say(f"kept cluster {self.cluster} for inspection: pgtopo destroy {self.path} --yes --volumes")
            return self.violations
        engine.unpause_all(self.docker, self.cluster)
        gone = engine.pgtopo("destroy", str(self.path), "--yes", "--volumes")
        self.say(f"teardown: {gone.summary()}; {len(self.client.acks)} acknowledged rows, "
                 f"{len(self.monitor.sweeps)} sweeps"
                 + (f", {self.discards} apply(s) discarding an unacknowledged tail" if self.sync else ""))
        left = checker.leftovers(checker.Objects(**engine.labelled(self.docker, self.cluster)))
        if gone.code != 0:
            left.append(Violation("orphans", f"destroy failed: {gone.summary()}"))
        self.record(left)
        engine.remove_everything(self.docker, self.cluster)
        if not self.violations:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.violations

    def run(self) -> list[Violation]:
        """The whole seeded run; stops at the first round with a violation unless keep_going."""
        try:
            self.start()
            for n in range(1, self.opts.rounds + 1):
                self.run_round(draw(self.opts.seed, n, self.opts.engine_restart, self.opts.lossy_rate))
                if self.violations and not self.opts.keep_going:
                    break
        finally:
            self.finish()
        if self.violations:
            self.report()
        return self.violations

    # --- one round --------------------------------------------------------------------------

    def run_round(self, choice: Choice) -> None:
        started = time.monotonic()
        self.history.append(choice.describe())
        self.say(choice.describe())
        self.lossy = choice.lossy
        if choice.wal_burst:
            self.wal_burst()
        self.op(choice)
        self.check_writers(f"round {choice.round} after the op")
        engine.unpause_all(self.docker, self.cluster)
        converged = self.recover()
        self.check_round(choice.round, converged)
        self.say(f"round {choice.round} done in {time.monotonic() - started:.1f} s; "
                 f"{len(self.client.acks)} rows acknowledged so far")

    def op(self, choice: Choice) -> None:
        match choice.op:
            case "change":
                before = set(self.topo.nodes())
                self.topo, what = topology_change(choice, self.topo, self.sync.number if self.sync else 0)
                self.write(f"change: {what}")
                if choice.disk_full:
                    added = sorted(set(self.topo.nodes()) - before)
                    if added:
                        self.fill_disk(added[0])
                    else:
                        self.say("  disk-full: does not apply, no replica is added")
                self.command(choice, "apply", str(self.path), "--yes")
            case "switchover":
                target = pick(choice.target, self.topo.replicas())
                if choice.switch_by_command:
                    self.command(choice, "switchover", str(self.path), "--to", target, "--yes")
                    self.topo = self.topo.with_primary(read_primary(self.path))
                    if self.sync is not None and len(self.topo.eligible()) < self.sync.number:
                        self.write(f"switchover: {self.topo.primary} is the primary")  # too few standbys: see write
                else:
                    self.topo = self.topo.with_primary(target)
                    self.write(f"switchover: primary: {target}")
                    self.command(choice, "apply", str(self.path), "--yes")
            case "failover":
                old, target = self.topo.primary, pick(choice.target, self.topo.replicas())
                kill = choice.failover_kill
                if self.sync is not None and self.sync.required and kill == "kill":
                    kill = "disconnect"  # a partition: the old primary's WAL end is unknown (the quorum rule)
                result = engine.node_fault(kill, self.container(old), self.topo.network)
                self.say(f"  failover: docker {kill} {old} (the primary): {result}")
                self.topo = self.topo.with_primary(target)
                self.write(f"failover: primary: {target}")
                self.command(choice, "apply", str(self.path), "--yes")
            case _:
                self.command(choice, "apply", str(self.path), "--yes")

    def wal_burst(self) -> None:
        """About 40 MB of WAL on the primary (a table refilled), not waited for on the replicas: the
        copies the round's fault stops then hold WAL several segments past their last checkpoint."""
        started = time.monotonic()
        try:
            for statement in ("CREATE TABLE IF NOT EXISTS chaos_burst (pad text)", "TRUNCATE chaos_burst",
                              "INSERT INTO chaos_burst SELECT repeat(md5(g::text), 30) "
                              f"FROM generate_series(1, {BURST_ROWS}) g"):
                self.sql(self.topo.primary, statement)
        except Exception as exc:  # the round goes on: the burst only makes its fault more telling
            self.say(f"  wal burst on {self.topo.primary} failed: {type(exc).__name__}: {exc}")
            return
        self.say(f"  wal burst: about 40 MB of WAL on {self.topo.primary} in {time.monotonic() - started:.1f} s")

    def command(self, choice: Choice, *args: str) -> engine.Run:
        """Run the op's pgtopo command with the round's fault injected `fault_delay` after it starts."""
        args = self.lossy_args(args)
        proc, started = engine.start_pgtopo(*args)
        nodes = self.topo.nodes()
        timer = threading.Timer(choice.fault_delay, lambda: self.fault(choice, proc, nodes))
        timer.start()
        run = engine.finish(proc, started, list(args), self.opts.op_timeout)
        timer.join()
        self.after_command(run)
        self.say(f"  {run.summary()}")
        self.timed_out(run)
        self.last_op = run
        return run

    def timed_out(self, run: engine.Run) -> bool:
        if run.timed_out:
            self.record([Violation("convergence", f"{run.summary()}: still running after "
                                                  f"{self.opts.op_timeout:.0f} s, cancelled (nothing may wait forever)")])
        return run.timed_out

    def fault(self, choice: Choice, proc: subprocess.Popen[str], nodes: list[str]) -> None:
        node = pick(choice.fault_target, nodes)
        match choice.fault:
            case "none":
                return
            case "kill-pgtopo":
                alive = proc.poll() is None
                if alive:
                    proc.send_signal(signal.SIGKILL)
                what = "kill -9 pgtopo: " + ("done" if alive else "too late, it had finished")
            case "engine-restart":
                what = "engine restart: " + engine.restart_engine()
            case kind:
                what = f"docker {kind} {node}: " + engine.node_fault(kind, self.container(node), self.topo.network)
        self.say(f"  fault at +{choice.fault_delay:.2f} s: {what}")

    # --- recovery: what a user does until apply converges -------------------------------------

    def recover(self) -> bool:
        """`pgtopo apply --yes` until it converges and `diff` exits 0, acting on refusals as a user
        would: name the node pgtopo suggests as primary, wait for another pgtopo's lock, free a full disk.
        False (with a convergence violation recorded) when it does not converge."""
        last = ""
        discard = False  # this apply gets --allow-data-loss for an unacknowledged tail alone (discards_only)
        for attempt in range(1, RECOVERY_ATTEMPTS + 1):
            if self.disk_full_seen:
                self.free_disk()
            args = self.lossy_args(("apply", str(self.path), "--yes"))
            tail_only = discard and "--allow-data-loss" not in args  # (a lossy round's apply has it, and its allowance)
            if tail_only:
                args = (*args, "--allow-data-loss")
                self.discards += 1
            discard = False
            run = engine.pgtopo(*args, timeout=self.opts.op_timeout)
            self.after_command(run, allowance=not tail_only)
            self.say(f"  recovery {attempt}: {run.summary()}")
            if self.timed_out(run):
                return False
            if run.code == 0:
                diff = engine.pgtopo("diff", str(self.path))
                if diff.code == 0:
                    return True
                self.say(f"  recovery {attempt}: diff exit {diff.code} after a converged apply: {diff.out.strip()[:300]}")
                last = diff.text()
                continue
            last = run.text()
            if "cannot reach the Docker engine" in last or "Docker engine is running" in last:
                # the engine went away (restarted by someone): what a user does is wait for it
                self.say(f"  user: waiting for the Docker engine: {'back' if engine.wait_for_engine() else 'still gone'}")
                continue
            if "another pgtopo holds the lock" in last:
                time.sleep(1.0)
                continue
            if self.discards_only(last):  # before "(primary: NAME)": that refusal names the old primary too
                discard = True
                continue
            suggested = [n for n in PRIMARY_SUGGESTION.findall(last) if n != self.topo.primary and n in self.topo.upstreams]
            if suggested:  # the way out that loses nothing: name the node pgtopo says holds the newest data
                self.topo = self.topo.with_primary(suggested[0])
                self.write(f"user: primary: {suggested[0]}, as pgtopo suggests")
                continue
            if (up := UPSTREAM_DOWN.search(last)) and up.group(1) in self.topo.upstreams:
                result = engine.docker_cli("start", self.container(up.group(1)))
                self.say(f"  user: docker start {up.group(1)}, as pgtopo asks: exit {result.returncode}")
                continue
            if (stop := STOP_TO_READ.search(last)) and stop.group(1) in self.topo.upstreams:
                result = engine.docker_cli("stop", "-t", "10", self.container(stop.group(1)))
                self.say(f"  user: docker stop {stop.group(1)}, as pgtopo asks: exit {result.returncode}")
                continue
            if "--allow-data-loss" in last and not (self.lossy and self.data_loss_flag):
                self.record([Violation("convergence", "apply refused and the only way out it offers is "
                                                      f"--allow-data-loss, in a round that is not lossy: {_tail(last)}")])
                return False
        self.record([Violation("convergence", f"not converged after {RECOVERY_ATTEMPTS} applies: {_tail(last)}")])
        return False

    # --- a full disk: a data volume too small for a clone, and what a user does about it ----------

    def fill_disk(self, node: str) -> None:
        """Before the apply that adds `node`, create its data volume as an 8 MB tmpfs with pgtopo's
        labels (as if its disk were nearly full), with enough data on the primary that no clone fits."""
        name = f"{self.cluster}-{node}-data"
        try:
            self.docker.volumes.get(name)
            self.say(f"  disk-full: does not apply, {name} exists already (kept since {node} left the file)")
            return
        except docker.errors.NotFound:
            pass
        if not self.filler:
            try:
                self.sql(self.topo.primary, f"CREATE TABLE IF NOT EXISTS chaos_filler AS SELECT g AS id, "
                                            f"repeat('x', 100) AS pad FROM generate_series(1, {FILLER_ROWS}) g")
                self.filler = True
            except Exception as exc:  # the clone may still not fit: an empty cluster's is over 8 MB
                self.say(f"  disk-full: could not write the filler table on {self.topo.primary}: {exc}")
        self.docker.volumes.create(name, driver="local",
                                   labels={labels.CLUSTER: self.cluster, labels.ROLE: "node", labels.NODE: node},
                                   driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=8m"})
        self.full_disk, self.disk_full_seen = name, False
        self.say(f"  disk-full: {name} created as an 8 MB tmpfs before the apply that clones {node}")

    def free_disk(self) -> None:
        """What a user does after "No space left on device": free the space, here by removing the
        tmpfs volume (it holds no data: the clone never completed), once no container uses it."""
        name = self.full_disk
        if name is None:
            return
        users = [c.name for c in self.docker.containers.list(all=True, filters={"volume": name})]
        if users:
            self.say(f"  user: cannot free {name} yet, used by {', '.join(users)}")
            return
        try:
            self.docker.volumes.get(name).remove()
            self.say(f"  user: removed the full tmpfs volume {name}, as \"{NO_SPACE}\" asks")
        except docker.errors.NotFound:
            self.say(f"  user: {name} is gone already")
        self.full_disk, self.disk_full_seen = None, False

    def discards_only(self, text: str) -> bool:
        """In a synchronous `required` run, a refusal of nothing but rewinds / re-clones that would
        discard WAL no other node holds: after a failover the quorum rule allowed, the old primary
        may hold commits that were waiting for standbys, never acknowledged.  A user who read that
        passes --allow-data-loss; the harness does so for the next apply without a LossAllowance,
        so the checker still wants every acknowledged row.  Any other refusal: False."""
        if self.sync is None or not self.sync.required or not self.data_loss_flag or self.lossy:
            return False
        found = discards(text)
        if not found:
            return False
        what = "; ".join(f"{node}: {kind} discards {amount}" for node, kind, amount in found)
        self.say(f"  user: synchronous {self.sync.describe()}: the refusal is only of WAL no other node holds, "
                 f"never acknowledged ({what}); next apply with --allow-data-loss, NO loss allowed: every "
                 "acknowledged row must survive")
        return True

    def lossy_args(self, args: tuple[str, ...]) -> tuple[str, ...]:
        if self.lossy and self.data_loss_flag and args[0] in ("apply", "switchover"):
            return (*args, "--allow-data-loss")
        return args

    def after_command(self, run: engine.Run, allowance: bool = True) -> None:
        """Log the command; a command given --allow-data-loss may lose rows acknowledged until its
        end (a LossAllowance), unless `allowance` is False (an unacknowledged tail, discards_only)."""
        with (self.workdir / "commands.log").open("a") as log:
            log.write(f"[{self.now():7.2f}s] {run.summary()}\n{run.out}{run.err}\n")
        if self.full_disk and NO_SPACE in run.text():
            self.disk_full_seen = True
            line = next(x for x in run.text().splitlines() if NO_SPACE in x)
            traceback = " (with a traceback)" if "Traceback" in run.text() else ""
            self.say(f"  disk-full: {line.strip()[:200]}{traceback}")
        if "--allow-data-loss" in run.args and allowance:
            self.allowances.append(LossAllowance(run.summary(), self.now()))

    # --- checks ----------------------------------------------------------------------------

    def check_writers(self, step: str) -> None:
        """Two writers in any sweep since the last check, and in one fresh sweep now."""
        sweeps = self.monitor.since(self.sweep_mark)
        self.sweep_mark += len(sweeps)
        found = checker.two_writers(sweeps)
        if not found:
            found = checker.two_writers(self.fresh_sweeps())
        self.record([Violation(v.invariant, f"{step}: {v.message}") for v in found])

    def fresh_sweeps(self, count: int = 2, timeout: float = 5.0) -> list[checker.Sweep]:
        """The monitor's next `count` sweeps, all started after this call."""
        mark = self.monitor.count() + 1  # the sweep under way may have started before
        deadline = time.monotonic() + timeout
        while self.monitor.count() < mark + count and time.monotonic() < deadline:
            time.sleep(0.05)
        fresh = self.monitor.since(mark)
        self.sweep_mark = max(self.sweep_mark, mark + len(fresh))
        return fresh

    def check_round(self, round_no: int, converged: bool = True) -> None:
        self.check_writers(f"round {round_no} after recovery")
        if self.full_disk:  # the clone fitted or never ran: the node's data would not survive a restart
            self.say(f"  disk-full: {self.full_disk} is still the tmpfs volume after recovery")
        acks = self.client.snapshot()  # before reading the primary: a row acknowledged after that read is not on it
        if not converged:  # the file's primary may be a standby never promoted: its rows prove nothing
            self.say(f"  round {round_no}: lost writes not checked, the recovery did not converge")
        elif (present := self.primary_ids()) is None:
            self.record([Violation("convergence", f"round {round_no}: the primary {self.topo.primary} does not "
                                                  "answer after recovery")])
        else:
            self.record(checker.lost_writes(acks, present, self.allowances))
        found = checker.Objects(**engine.labelled(self.docker, self.cluster))
        self.record(checker.orphans(found, set(self.topo.nodes()), self.former - set(self.topo.nodes()),
                                    self.cluster, self.topo.network))

    def primary_ids(self) -> set[int] | None:
        conn = Conn(self.password, "chaos-check")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            port = engine.node_ports(self.docker, self.cluster).get(self.topo.primary)
            try:
                if port is not None:
                    _, rows = conn.execute(port, "SELECT id FROM chaos_ack")
                    conn.close()
                    return {r[0] for r in rows}
            except Exception:
                pass
            time.sleep(0.3)
        return None

    # --- helpers ----------------------------------------------------------------------------

    def record(self, found: list[Violation]) -> None:
        for v in found:
            self.say(f"  VIOLATION [{v.invariant}] {v.message}")
        self.violations += found

    def write(self, what: str) -> None:
        self.former |= set(self.topo.nodes())
        if self.sync is not None:  # a new primary can leave too few replicas streaming from it (number > 1)
            self.topo, moved = keep_standbys(self.topo, self.sync.number)
            if moved:
                what += (f"; {', '.join(moved)} stream(s) from the primary again, for synchronous.number "
                         f"{self.sync.number}")
        self.topo.write(self.path, self.extra)
        self.say(f"  {what}")

    def container(self, node: str) -> str:
        return f"{self.cluster}-{node}"

    def sql(self, node: str, statement: str) -> list[tuple]:
        port = engine.node_ports(self.docker, self.cluster)[node]
        conn = Conn(self.password, "chaos-setup")
        try:
            return conn.execute(port, statement)[1]
        finally:
            conn.close()

    def _client_target(self) -> tuple[str, int | None]:
        node = self.topo.primary
        return node, self.monitor.ports.get(node)

    def now(self) -> float:
        """Seconds since this run started: the one clock of the log, the sweeps and the acks."""
        return time.monotonic() - self.t0

    def say(self, line: str) -> None:
        self.log(f"[{self.now():7.2f}s] {line}")

    def report(self, scenario: str | None = None) -> None:
        o = self.opts
        if scenario:
            self.log(f"\nCHAOS SCENARIO {scenario} FAILED")
            self.log("steps:")
        else:
            where = self.history[-1].split(":")[0] if self.history else "setup"
            self.log(f"\nCHAOS RUN FAILED: seed {o.seed}, {len(self.history)} of {o.rounds} rounds run, "
                     f"violation in {where}")
            self.log("choices so far (same seed, same choices; the timing is real, not replayed):")
        for line in self.history:
            self.log(f"  {line}")
        self.log("violations:")
        for v in self.violations:
            self.log(f"  [{v.invariant}] {v.message}")
        replay = f"SCENARIO={scenario}" if scenario else f"SEED={o.seed} ROUNDS={len(self.history)}{o.replay}"
        if self.sync is not None and not scenario:  # make chaos has no variable for it
            self.log(f"replay: python -m tests.chaos --seed {o.seed} --rounds {len(self.history)} --synchronous "
                     f"{self.sync.describe()}" + (f" --lossy {o.lossy_rate}" if o.lossy_rate else "")
                     + (" --engine-restart" if o.engine_restart else ""))
        else:
            self.log(f"replay: make chaos {replay}")
        self.log(f"files kept in {self.workdir}")


def discards(text: str) -> list[tuple[str, str, str]]:
    """(node, rewind | re-clone, how much WAL) for each refusal of a pgtopo output, when every
    refusal in it is of a rewind or re-clone that would discard WAL no other node holds and
    offers --allow-data-loss; [] when there is none, or any other refusal among them."""
    blocks = REFUSALS.findall(text)
    refusals = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    found = [(m[1], m[2], m[3]) for r in refusals if (m := DISCARD.match(r))]
    return found if refusals and len(found) == len(refusals) else []


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
