"""kill -9 of pgtopo inside each kind of step: initdb, rewind, the fence, the promotion and the
demotion of a switchover, a repoint, a password change.  The next apply finishes the job and
loses nothing.

test_interrupt.py kills apply during a clone and during a restart.  These tests kill it inside
the other kinds of step, found without hooks in pgtopo: a Docker event of the cluster (the start
of the container that runs initdb, of the rewind job; the exec that fences the old primary; the
creation of the demote job, or of the helper that writes the state volume) or, for a step that
is SQL only, the server polled every 10 ms (the slot a repoint makes first, a promotion).  Each
test asserts that the kill landed inside its step: pgtopo died of SIGKILL after its
`-v --log-format json` events said the step started and before they said it was done, and what
the engine or the servers showed at that moment.

Throughout each test a monitor (tests/chaos/probes.py) sweeps every node for writers and a client
commits rows.  After the kill, what a user checks: the next apply exits 0 (retried as stated),
`diff` exits 0, no sweep ever saw two writers, exactly one node accepts writes now, every
acknowledged row is on the primary, every replica streams from its upstream, and the cluster's
labelled objects are exactly a container and a volume per node, the state volume and the
network (the make_cluster fixture fails on unlabelled ones).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import psycopg
import pytest

from pgtopo import labels
from tests.chaos import checker, engine as chaos_engine
from tests.chaos.probes import Client, Conn, Monitor
from tests.chaos.topology import read_primary

from .conftest import IMAGE, Cluster, Result, actions, cleanup, pgtopo, remove_strays, wait_for

PASSWORD = "kill-steps-first-superuser-password-0123"
NEW_PASSWORD = "kill-steps-second-superuser-password-0123"
SECRET = "superuser.secret"
KILL_TIMEOUT = 120.0  # the step never came: fail rather than wait for ever

Event = dict[str, Any]
DockerTrigger = Callable[[Event], str | None]


# --- a pgtopo command killed at a chosen moment ------------------------------------------------


@dataclass
class Killed:
    """A pgtopo command run with `-v --log-format json` until the test killed it (or it ended)."""

    code: int
    why: str | None  # what fired the kill; None when nothing did
    at: float  # time.monotonic() of the kill
    log: list[Event]  # pgtopo's JSON events, as far as it got
    docker: list[Event]  # the cluster's container events up to the kill
    out: str
    errors: list[str]  # a trigger that broke says so here

    def began(self, kind: str, node: str) -> bool:
        return logged(self.log, "action started", kind, node)

    def finished(self, kind: str, node: str) -> bool:
        return logged(self.log, "action done", kind, node)

    def saw(self, action: str, container: str) -> bool:
        """Did the engine report `action` (create, start, die, exec_create…) for `container`?"""
        return any(is_event(e, action, container) for e in self.docker)

    def __str__(self) -> str:
        tail = "\n".join(json.dumps(e) for e in self.log[-8:])
        return (f"exit {self.code}, killed at: {self.why}, trigger errors: {self.errors}\n--- stdout\n{self.out}"
                f"--- its last log events\n{tail}")


def logged(log: list[Event], event: str, kind: str, node: str) -> bool:
    return any(e.get("event") == event and e.get("action") == kind and e.get("node") == node for e in list(log))


def is_event(event: Event, action: str, container: str) -> bool:
    return (event.get("Action", "").split(":")[0] == action
            and event.get("Actor", {}).get("Attributes", {}).get("name") == container)


class Watched:
    """Runs one pgtopo command, keeping its JSON log events (stderr), and SIGKILLs it when a
    trigger first fires: `on_docker(event)` for each container event of the cluster, `poll()`
    every 10 ms.  Each returns why it fired, or None."""

    def __init__(self, cluster: str, args: list[str], *, on_docker: DockerTrigger | None = None,
                 poll: Callable[[], str | None] | None = None) -> None:
        self.log: list[Event] = []
        self.docker: list[Event] = []
        self.errors: list[str] = []
        self.why: str | None = None
        self.at = 0.0
        self._docker_at_kill: list[Event] = []
        self._out: list[str] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._engine = docker.from_env(timeout=KILL_TIMEOUT + 60)  # its own: the stream holds a connection
        self._events = self._engine.events(decode=True, filters={"type": "container",
                                                                 "label": f"{labels.CLUSTER}={cluster}"})
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pgtopo", *args, "-v", "--log-format", "json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True, env=env)
        self._threads = [threading.Thread(target=fn, daemon=True) for fn in (
            self._read_log, lambda: self._out.extend(self.proc.stdout or ()),
            lambda: self._read_docker(on_docker), lambda: self._poll(poll))]
        for thread in self._threads:
            thread.start()

    def kill(self, why: str) -> None:
        with self._lock:
            if self.why is None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.why, self.at = why, time.monotonic()
                self._docker_at_kill = list(self.docker)

    def _read_log(self) -> None:
        for line in self.proc.stderr or ():
            if line.startswith("{"):
                self.log.append(json.loads(line))

    def _read_docker(self, on_docker: DockerTrigger | None) -> None:
        try:
            for event in self._events:
                self.docker.append(event)
                if on_docker is not None and (why := on_docker(event)):
                    self.kill(why)
        except Exception as exc:  # closing the stream ends it with an error too
            if not self._done.is_set():
                self.errors.append(f"docker events: {exc!r}")

    def _poll(self, poll: Callable[[], str | None] | None) -> None:
        try:
            while poll is not None and not self._done.wait(0.01) and self.proc.poll() is None:
                if why := poll():
                    self.kill(why)
        except Exception as exc:
            self.errors.append(f"poll: {exc!r}")

    def wait(self) -> Killed:
        try:
            self.proc.wait(timeout=KILL_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self._done.set()
            self._events.close()
            for thread in self._threads:
                thread.join(timeout=10)
            self._engine.close()
        return Killed(self.proc.returncode, self.why, self.at, self.log, self._docker_at_kill, "".join(self._out),
                      self.errors)


def kill_at(c: Cluster, *args: str, **triggers: Any) -> Killed:
    return Watched(c.name, list(args), **triggers).wait()


def sql_poll(port: int, password: str, query: str) -> Callable[[], tuple[Any, ...] | None]:
    """A persistent connection that runs `query` (a literal % is written %%) on each call: its
    first row, or None when the server does not answer (it reconnects on the next call)."""
    conn = Conn(password, "kill-steps-trigger")

    def ask() -> tuple[Any, ...] | None:
        try:
            rows = conn.execute(port, query)[1]
        except psycopg.OperationalError:
            return None
        return rows[0] if rows else None

    return ask


# --- a cluster under watch: writers sampled, rows committed ----------------------------------------


@dataclass
class Scene:
    """A cluster of the test and its file, a monitor sweeping its nodes for writers, and a client
    committing rows on the file's primary (with follow_writer: on the one node that accepts writes)."""

    c: Cluster
    engine: docker.DockerClient
    upstreams: dict[str, str | None]  # node -> the upstream the file names (None: the primary)
    primary: str
    follow_writer: bool = False
    password: str = PASSWORD
    healed: bool = True  # assert_healed passed since the last kill
    watching: bool = False  # the monitor and the client run
    monitor: Monitor = field(init=False)
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.monitor = Monitor(lambda: chaos_engine.node_ports(self.engine, self.c.name), PASSWORD, time.monotonic)
        self.client = Client(self._target, PASSWORD, time.monotonic)

    def write(self) -> None:
        nodes = "".join(f"  {n}: {{upstream: {up}}}\n" if up and n != self.primary else f"  {n}: {{}}\n"
                        for n, up in self.upstreams.items())
        self.c.write(f"auth: {{superuser_password: {{file: {SECRET}}}}}\nprimary: {self.primary}\nnodes:\n{nodes}")

    def upstream_of(self, node: str) -> str | None:
        return None if node == self.primary else self.upstreams[node] or self.primary

    def container(self, node: str) -> str:
        return self.c.container(node)

    def port(self, node: str) -> int:
        return chaos_engine.node_ports(self.engine, self.c.name)[node]

    def sql(self, node: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        conn = Conn(self.password, "kill-steps-check")
        try:
            return conn.execute(self.port(node), query, params)[1]
        finally:
            conn.close()

    def stop(self) -> None:
        if self.watching:
            self.client.stop()
            self.monitor.stop()
            self.watching = False

    def use_password(self, password: str) -> None:
        """The superuser's password changed on the servers: the test, monitor and client use it."""
        self.password = self.monitor.password = self.client.conn.password = password
        for prober in list(self.monitor.probers.values()):
            prober.conn.password = password

    def _target(self) -> tuple[str, int | None]:
        node = self.primary
        if self.follow_writer:
            last = self.monitor.since(max(0, self.monitor.count() - 1))
            writers = [p.node for p in (last[-1].probes if last else ()) if p.first_in_recovery is False]
            if len(writers) == 1:
                node = writers[0]
        return node, self.monitor.ports.get(node)


@pytest.fixture
def scene(make_cluster, engine: docker.DockerClient) -> Iterator[Callable[..., Scene]]:
    """Makes a Scene on a cluster of its own (see watch); its monitor and client are stopped
    before the cluster is removed."""
    made: list[Scene] = []

    def make(upstreams: dict[str, str | None], apply: bool = True, follow_writer: bool = False) -> Scene:
        s = Scene(make_cluster(IMAGE), engine, upstreams, next(iter(upstreams)), follow_writer)
        made.append(s)
        return watch(s, apply)

    yield make
    for s in made:
        s.stop()


@pytest.fixture(scope="module")
def switching_pair(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One primary and one replica under watch for the switchover steps, which switch it back
    and forth: each is killed and recovered on the pair the step before left (two setups less on
    a two-core machine).  Removed afterwards like make_cluster's clusters, even when a step fails;
    the switchover test is the file's last, so the pair goes as soon as it is done."""
    name = "t" + secrets.token_hex(4)
    s = Scene(Cluster(name, IMAGE, tmp_path_factory.mktemp(name) / f"{name}.yaml"), engine,
              {"primary": None, "replica": None}, "primary", follow_writer=True)
    try:
        yield watch(s, apply=True)
    finally:
        s.stop()
        cleanup(engine, name)
        assert not remove_strays(engine, name), "unlabelled objects named after the cluster were left"


def watch(s: Scene, apply: bool) -> Scene:
    """Write the Scene's file and, unless told not to, apply it and create the client's table;
    then start the monitor and the client."""
    (s.c.path.parent / SECRET).write_text(PASSWORD + "\n")
    s.write()
    if apply:
        first = pgtopo("apply", str(s.c.path), "--yes")
        assert first.code == 0, first
        create_table(s)
    s.monitor.start()
    s.client.start()
    s.watching = True
    return s


def create_table(s: Scene) -> None:
    s.sql(s.primary, "CREATE TABLE chaos_ack (id bigint PRIMARY KEY, node text NOT NULL, "
                     "at timestamptz NOT NULL DEFAULT clock_timestamp())")


def acknowledged(s: Scene, more: int = 5) -> None:
    """Wait until the client has had `more` rows acknowledged (it writes one every 20 ms)."""
    before = len(s.client.snapshot())
    assert wait_for(lambda: len(s.client.snapshot()) >= before + more, timeout=30), "the client could not write"


# --- what a user does and checks after the kill ---------------------------------------------------


def apply_again(s: Scene, *extra: str, tries: int = 1) -> list[Result]:
    """`pgtopo apply FILE --yes` again, as a user retries, until it exits 0: at most `tries`
    times, and each one that fails must have made progress (carried out actions, or changed the
    cluster's containers: one that fails removes the container it made)."""
    runs: list[Result] = []
    for _ in range(tries):
        before = containers(s)
        runs.append(pgtopo("apply", str(s.c.path), "--yes", *extra))
        if runs[-1].code == 0:
            return runs
        assert actions(runs[-1].out) or containers(s) != before, f"apply {len(runs)} failed, changed nothing:\n{runs[-1]}"
    raise AssertionError(f"not converged after {tries} apply(s):\n" + "\n".join(map(str, runs)))


def containers(s: Scene, *label: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(name, id, state, labels) of the cluster's containers (with `label`s too): one listing call,
    so a container removed meanwhile (a lock, a job) is just not there."""
    found = s.engine.api.containers(all=True, filters={"label": [f"{labels.CLUSTER}={s.c.name}", *label]})
    return sorted((c["Names"][0].lstrip("/"), c["Id"], c["State"], c["Labels"] or {}) for c in found)


def orphans(s: Scene) -> list[checker.Violation]:
    return checker.orphans(labelled(s), set(s.upstreams), set(), s.c.name, f"{s.c.name}-net")


def labelled(s: Scene) -> checker.Objects:
    flt = {"label": f"{labels.CLUSTER}={s.c.name}"}
    return checker.Objects(containers=frozenset(name for name, *_ in containers(s)),
                           volumes=frozenset(v["Name"] for v in s.engine.api.volumes(filters=flt)["Volumes"] or ()),
                           networks=frozenset(n["Name"] for n in s.engine.api.networks(filters=flt)))


def assert_killed(run: Killed, kind: str, node: str) -> None:
    """The kill landed inside the step: pgtopo died of SIGKILL after it logged the step started
    and before it logged it done."""
    assert run.code == -signal.SIGKILL, run
    assert run.began(kind, node) and not run.finished(kind, node), run


def assert_healed(s: Scene, since: float = 0.0, excused: tuple[float, float] | None = None) -> None:
    """What a user checks once apply has exited 0.  The monitor's sweeps count from `since`, but
    for `excused`: a span in which the test itself made a second writer (a replica promoted by
    hand).  Every row the client ever had acknowledged must be on the primary."""
    s.primary = read_primary(s.c.path)
    diff = pgtopo("diff", str(s.c.path))
    assert diff.code == 0, diff
    sweeps = [w for w in s.monitor.since(0) if w.barrier >= since
              and (excused is None or not excused[0] <= w.barrier <= excused[1])]
    assert sweeps and checker.two_writers(sweeps) == [], checker.two_writers(sweeps)
    running = {tags[labels.NODE] for _, _, state, tags in containers(s, f"{labels.ROLE}=node") if state == "running"}
    assert running == set(s.upstreams), running
    writers = [n for n in sorted(running) if s.sql(n, "SELECT pg_is_in_recovery()") == [(False,)]]
    assert writers == [s.primary], writers
    for node in sorted(running - {s.primary}):
        wanted = [("streaming", s.container(s.upstream_of(node) or ""))]
        assert wait_for(lambda node=node, wanted=wanted: s.sql(node, "SELECT status, sender_host FROM "
                                                             "pg_stat_wal_receiver") == wanted), (node, wanted)
    acks = s.client.snapshot()  # before the primary is read: a row acknowledged after it is not on it
    present = {row[0] for row in s.sql(s.primary, "SELECT id FROM chaos_ack")}
    assert acks and checker.lost_writes(acks, present) == [], checker.lost_writes(acks, present)
    [(lsn,)] = s.sql(s.primary, "SELECT pg_current_wal_lsn()::text")  # past every row just read
    for node in sorted(running - {s.primary}):  # and each replica holds them once it has replayed that far
        assert wait_for(lambda node=node: s.sql(node, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)) == [(True,)])
        assert present <= {row[0] for row in s.sql(node, "SELECT id FROM chaos_ack")}, node
    # the lock of the apply that just ended goes a moment later: the engine removes it once pgtopo has exited
    assert wait_for(lambda: orphans(s) == [], timeout=15), orphans(s)
    s.healed = True


def in_state(s: Scene, name: str) -> str:
    """A file of the state volume, read through the primary's container (it mounts it)."""
    return subprocess.run(["docker", "exec", s.container(s.primary), "cat", f"/run/pgtopo/{name}"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def answers(container: str) -> bool:
    return subprocess.run(["docker", "exec", container, "pg_isready", "-q"], capture_output=True,
                          timeout=60).returncode == 0


def can_log_in(port: int, password: str) -> bool:
    conn = Conn(password, "kill-steps-check")
    try:
        conn.execute(port, "SELECT 1")
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc), exc
        return False
    finally:
        conn.close()
    return True


# --- the kill points ---------------------------------------------------------------------------


@pytest.mark.parametrize("retry, nodes", [
    pytest.param("at once", {"primary": None}, id="retried-at-once"),
    pytest.param("while its server starts", {"primary": None}, id="retried-while-its-server-starts"),
    pytest.param("after initdb", {"primary": None, "replica": None}, id="retried-after-initdb"),
])
def test_kill_during_initdb_then_apply_finishes(scene, engine: docker.DockerClient, retry: str,
                                                nodes: dict[str, str | None]) -> None:
    """Killed while the primary's new container runs initdb, which goes on without pgtopo.

    * Retried at once: the next apply replaces that container and starts afresh, or finds one of
      the states below.  At most two applies: the old container may finish initdb just before the
      next apply replaces it; the new one then refuses data it did not make, and is removed.
    * Retried while the server starts on the data the container made (held with SIGSTOP until
      8 s later, so the moment is sure, as on a loaded machine): the next apply waits for it.
      Before reconcile.not_answering, it saw nothing to do and exited 0, in sync by its own word,
      with no replication role and no system identifier recorded.
    * Retried once that server answers: the next apply keeps its data, creates the replication
      role, clones the replica and records the system identifier in the state volume (every
      later clone and rewind checks its source against it; before create-role and record-identity
      recorded a missing one, no apply ever did).
    """
    s = scene(nodes, apply=False)
    primary = s.container("primary")
    run = kill_at(s.c, "apply", str(s.c.path), "--yes",
                  on_docker=lambda e: "the primary's container started (initdb)" if is_event(e, "start", primary)
                  else None)
    assert_killed(run, "init", "primary")
    assert not answers(primary), "killed after the server came up"
    held = None
    if retry == "while its server starts":
        assert wait_for(lambda: has_pgdata(primary), timeout=120), "the container did not finish initdb by itself"
        pid = engine.containers.get(primary).attrs["State"]["Pid"]  # the node script, then the postmaster
        os.kill(pid, signal.SIGSTOP)
        held = threading.Timer(8.0, lambda: os.kill(pid, signal.SIGCONT))
        held.start()
    elif retry == "after initdb":
        assert wait_for(lambda: answers(primary), timeout=120), "the container did not finish initdb by itself"

    try:
        again = apply_again(s, tries=2 if retry == "at once" else 1)
    finally:
        if held is not None:
            held.join()
    if retry != "at once":
        assert ("init", "primary") not in actions(again[-1].out), again[-1]  # never initdb twice
        assert ("create-role", "primary") in actions(again[-1].out), again[-1]
    if "replica" in nodes:
        assert ("clone", "replica") in actions(again[-1].out), again[-1]
    create_table(s)
    acknowledged(s)
    assert_healed(s)
    assert in_state(s, "system_identifier") == str(s.sql("primary", "SELECT system_identifier FROM "
                                                                    "pg_control_system()")[0][0])


def has_pgdata(container: str) -> bool:
    return subprocess.run(["docker", "exec", container, "test", "-d", labels.PGDATA], capture_output=True,
                          timeout=60).returncode == 0


def test_kill_during_rewind_then_apply_finishes(scene) -> None:
    """A replica promoted by hand holds WAL the primary lacks: apply refuses it without
    --allow-data-loss, so the user gives it.  Killed while the rewind job runs (it goes on without
    pgtopo until the next apply removes it): the next apply, the same command retried, re-clones
    the replica (an interrupted pg_rewind leaves data that cannot be trusted) and it streams."""
    s = scene({"primary": None, "replica": None})
    acknowledged(s)
    promoted = time.monotonic()
    s.sql("replica", "SELECT pg_promote()")
    assert wait_for(lambda: s.sql("replica", "SELECT pg_is_in_recovery()") == [(False,)])
    refused = pgtopo("apply", str(s.c.path), "--yes")
    assert refused.code == 1 and "--allow-data-loss" in refused.err and "nothing was changed" in refused.err, refused

    rewind = s.container("replica-rewind")
    run = kill_at(s.c, "apply", str(s.c.path), "--yes", "--allow-data-loss",
                  on_docker=lambda e: "the rewind job started" if is_event(e, "start", rewind) else None)
    assert_killed(run, "rewind", "replica")
    assert run.saw("die", s.container("replica")), run  # stopped before its rewind: one writer from here on

    again = apply_again(s, "--allow-data-loss")
    # The job's work is either done (its marker gone: the replica just starts) or distrusted (the
    # next apply removes the job mid-way and re-clones).  A rewind again would mean the replica was
    # started on the data a pg_rewind cut short, and then found diverged.
    assert ("rewind", "replica") not in actions(again[-1].out), again[-1]
    acknowledged(s)
    assert_healed(s, excused=(promoted, run.at))


def test_kill_during_repoint_then_apply_finishes(scene) -> None:
    """cascade -> flat: replica2 is repointed from replica to the primary, a SQL-only step (its
    slot on the primary, then primary_conninfo and primary_slot_name, reload).  Killed once the slot
    exists on the primary: the next apply repoints replica2 and drops its old slot on replica, so
    no slot holds WAL for nobody."""
    s = scene({"primary": None, "replica": None, "replica2": "replica"})
    acknowledged(s)
    s.upstreams["replica2"] = None
    s.write()
    slot = sql_poll(s.port("primary"), PASSWORD,
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtopo_replica2'")
    run = kill_at(s.c, "apply", str(s.c.path), "--yes",
                  poll=lambda: "replica2's new slot made on the primary" if (slot() or (0,))[0] else None)
    assert_killed(run, "repoint", "replica2")

    apply_again(s)
    acknowledged(s)
    assert_healed(s)
    assert s.sql("primary", "SELECT slot_name FROM pg_replication_slots ORDER BY 1") == \
        [("pgtopo_replica",), ("pgtopo_replica2",)]
    assert s.sql("replica", "SELECT count(*) FROM pg_replication_slots") == [(0,)]


def test_kill_during_set_password_then_apply_finishes(scene) -> None:
    """The file's superuser password changes.  set-password runs ALTER ROLE on the primary, then
    writes the state volume through a helper container: killed when that helper is created, the
    servers have the new password and the state the old one.  The next apply gets in with the
    file's password and finishes: the new one works on every node, the old one on none, and the
    state volume holds the new one."""
    s = scene({"primary": None, "replica": None})
    acknowledged(s)
    (s.c.path.parent / SECRET).write_text(NEW_PASSWORD + "\n")

    def helper(e: Event) -> str | None:  # this apply makes no other helper (assert_killed checks)
        made = e.get("Action") == "create" and e.get("Actor", {}).get("Attributes", {}).get(labels.ROLE) == "helper"
        return "the helper that writes the state volume created" if made else None

    run = kill_at(s.c, "apply", str(s.c.path), "--yes", on_docker=helper)
    assert_killed(run, "set-password", "primary")
    assert can_log_in(s.port("primary"), NEW_PASSWORD), "killed before ALTER ROLE"
    assert in_state(s, "superuser_password") == PASSWORD, "killed after the state volume was written"
    s.use_password(NEW_PASSWORD)

    apply_again(s)
    acknowledged(s)
    assert_healed(s)
    for node in s.upstreams:
        assert wait_for(lambda node=node: can_log_in(s.port(node), NEW_PASSWORD)), node
        assert not can_log_in(s.port(node), PASSWORD), node
    assert in_state(s, "superuser_password") == NEW_PASSWORD


def fence(s: Scene, old: str, new: str) -> dict[str, DockerTrigger]:
    container = s.container(old)
    return {"on_docker": lambda e: "the fence: touch standby.signal in the old primary"
            if is_event(e, "exec_create", container) and "standby.signal" in e.get("Action", "") else None}


def promotion(s: Scene, old: str, new: str) -> dict[str, Callable[[], str | None]]:
    ask = sql_poll(s.port(new), s.password, "SELECT pg_is_in_recovery(), EXISTS (SELECT FROM pg_stat_activity "
                                            r"WHERE application_name = 'pgtopo' AND query LIKE 'SELECT pg\_promote%%')")

    def fired() -> str | None:
        row = ask()
        if row is not None and (row[1] or not row[0]):
            return "the promotion: " + ("pg_promote() called" if row[0] else "the candidate accepts writes")
        return None

    return {"poll": fired}


def demotion(s: Scene, old: str, new: str) -> dict[str, DockerTrigger]:
    job = s.container(f"{old}-demote")
    return {"on_docker": lambda e: "the demote job of the old primary created" if is_event(e, "create", job)
            else None}


TRIGGERS: dict[str, Callable[[Scene, str, str], dict[str, Any]]] = {
    "fence": fence, "promote": promotion, "demote": demotion}


@pytest.mark.parametrize("step", TRIGGERS)
def test_kill_during_a_switchover_step_then_apply_finishes(switching_pair: Scene, step: str) -> None:
    """`pgtopo switchover FILE --to NODE` killed in the fence of the old primary (standby.signal
    written while it still runs and takes writes), in the promotion of the candidate (the old
    primary stopped and fenced, pg_promote called or done), or in the demotion of the old primary
    (its demote job created: the job may have run, the old primary is not started again).  The
    client writes on whichever node accepts writes.  After a kill in the promotion or the
    demotion the user starts the stopped old primary by hand before retrying: fenced, it must come
    up read-only.  Then apply (the file names the new primary already) finishes the switchover.
    Killed at the fence, the lock may not have started yet: the next apply then waits for it to
    go stale (30 s)."""
    s = switching_pair
    if not s.healed:  # a step before this one failed half-way
        assert pgtopo("apply", str(s.c.path), "--yes").code == 0, "the pair could not be converged for this step"
    s.healed = False
    since, old = time.monotonic(), read_primary(s.c.path)
    new = next(n for n in s.upstreams if n != old)
    acknowledged(s)
    run = kill_at(s.c, "switchover", str(s.c.path), "--to", new, "--yes", **TRIGGERS[step](s, old, new))
    assert_killed(run, "switchover", new)
    assert read_primary(s.c.path) == new  # the switchover rewrote the file before it applied it
    match step:
        case "fence":  # and the old primary was not stopped yet
            assert not run.saw("die", s.container(old)), run
        case "promote":  # the old primary was stopped; its demotion had not begun
            assert run.saw("die", s.container(old)) and not run.saw("create", s.container(f"{old}-demote")), run
        case "demote":  # the candidate was promoted; the old primary was not started again
            assert s.sql(new, "SELECT pg_is_in_recovery()") == [(False,)], run
            assert not run.saw("start", s.container(old)), run
    if step != "fence":
        subprocess.run(["docker", "start", s.container(old)], check=True, capture_output=True, timeout=60)
        assert wait_for(lambda: answers(s.container(old)), timeout=60), f"{old} did not come up"
        assert s.sql(old, "SELECT pg_is_in_recovery()") == [(True,)], "the old primary came back a writer"
    acknowledged(s)

    apply_again(s)
    acknowledged(s)
    assert_healed(s, since=since)
