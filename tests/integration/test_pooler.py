"""The pooler on real clusters: a real PgBouncer in front of real PostgreSQL.  An application
keeps one DSN (the pooler's port) through switchovers, a restart of the primary and a failover."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psycopg

from .conftest import IMAGE, actions, pgtopo, psql, wait_for

POOLER_IMAGE = os.environ.get("PGTOPO_POOLER_IMAGE", "pgtopo-local/pgbouncer:1")
APP_PASSWORD = "app-secret-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pair(port: int, extra: str = "", pooler_extra: str = "") -> str:
    return (f"primary: primary\n{extra}nodes:\n  primary: {{}}\n  replica: {{}}\n"
            f"pooler:\n  image: {POOLER_IMAGE}\n  port: {port}\n{pooler_extra}")


def app_dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} dbname=postgres user=app password={APP_PASSWORD} connect_timeout=5"


def make_app(c) -> None:
    """An application role and its table, made by hand (a role the file does not name is left alone)."""
    psql(c.container("primary"), f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'; "
                                 "CREATE TABLE ledger (id bigint PRIMARY KEY); GRANT ALL ON ledger TO app")


@dataclass
class Writer:
    """A client that inserts every 10 ms through one DSN, reconnecting after an error (as a web
    application's pool does); each acknowledged id is recorded."""

    dsn: str
    acked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    longest: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, n, last = None, 0, time.monotonic()
        while not self._stop.is_set():
            n += 1
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                conn.execute("INSERT INTO ledger VALUES (%s)", (n,))
                self.acked.append(n)
                now = time.monotonic()
                self.longest, last = max(self.longest, now - last), now
            except psycopg.Error as exc:
                self.errors.append(str(exc).strip().splitlines()[0])
                conn = None
            time.sleep(0.01)

    def stall_during(self, step):
        """Run `step`; returns what it returned and the longest wait for an acknowledgement
        meanwhile (measured until writes flow again after it)."""
        self.longest = 0.0
        result = step()
        done = len(self.acked)
        assert wait_for(lambda: len(self.acked) > done + 20), self.errors[-3:]
        return result, self.longest

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_one_dsn_through_switchover_restart_and_switch_back_sees_no_error(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    c.write(pair(port))
    first = pgtopo("apply", str(c.path), "--yes")
    assert first.code == 0, first
    assert ("create-pooler", "pooler") in actions(first.out)
    make_app(c)
    writer = Writer(app_dsn(port))
    assert wait_for(lambda: len(writer.acked) > 50)

    switched, stall_switch = writer.stall_during(lambda: pgtopo("switchover", str(c.path), "--to", "replica"))
    assert switched.code == 0, switched
    assert ("switchover", "replica") in actions(switched.out)
    c.write(pair(port, extra="parameters: {max_connections: 120}\n").replace("primary: primary\n", "primary: replica\n", 1))
    assert "pause around the restart" in pgtopo("diff", str(c.path)).out
    restarted, stall_restart = writer.stall_during(lambda: pgtopo("apply", str(c.path), "--yes"))
    assert restarted.code == 0, restarted
    assert ("restart", "replica") in actions(restarted.out), restarted.out
    roll = f"{IMAGE.rsplit(':', 1)[0]}:roll-{c.name}"  # the same image by another name: every node is made again
    subprocess.run(["docker", "tag", IMAGE, roll], check=True)
    try:
        body = c.path.read_text().split("\n", 3)[3]  # what follows the version, cluster and image lines
        c.path.write_text(f"version: 1\ncluster: {c.name}\nimage: {roll}\n{body}")
        rolled, stall_roll = writer.stall_during(lambda: pgtopo("apply", str(c.path), "--yes"))
        assert rolled.code == 0, rolled
        assert ("recreate", "replica") in actions(rolled.out), rolled.out
        back, stall_back = writer.stall_during(lambda: pgtopo("switchover", str(c.path), "--to", "primary"))
        assert back.code == 0, back
        writer.stop()
        assert pgtopo("diff", str(c.path)).code == 0
    finally:
        writer.stop()
        subprocess.run(["docker", "rmi", roll], check=False, capture_output=True)

    print(f"through the pooler: {len(writer.acked)} inserts; longest stall: switchover {stall_switch:.3f} s, "
          f"restart of the primary {stall_restart:.3f} s, image roll {stall_roll:.3f} s, "
          f"switch back {stall_back:.3f} s")
    assert writer.errors == []
    # Without the pause, PgBouncer retries the stopped primary until the next round repoints it
    # (seconds, server_login_retry); the pause makes it one switchover's write downtime.
    assert max(stall_switch, stall_back) < 2.0 and max(stall_restart, stall_roll) < 3.0
    stored = {int(x) for x in psql(c.container("primary"), "SELECT id FROM ledger").split()}
    assert set(writer.acked) <= stored, "an acknowledged insert was lost"
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"


def test_a_pause_that_times_out_refuses_the_switchover_and_resumes_the_pool(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    c.write(pair(port, pooler_extra="  pause_timeout_seconds: 1\n"))
    assert pgtopo("apply", str(c.path), "--yes").code == 0
    make_app(c)
    long = psycopg.connect(app_dsn(port))
    long.execute("INSERT INTO ledger VALUES (1)")  # a transaction held open: PAUSE waits for it

    result = pgtopo("switchover", str(c.path), "--to", "replica")
    assert result.code == 1, result
    assert "could not pause within 1 s" in result.err, result.err
    assert "primary: primary" in c.path.read_text()  # the file is put back
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"
    # the old primary was fenced before the pause was asked for: unfenced again, a restart keeps it the primary
    assert psql(c.container("primary"), "SELECT pg_stat_file('standby.signal', true) IS NULL") == "t"
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "t"
    with psycopg.connect(app_dsn(port), autocommit=True) as other:  # the pool was resumed
        other.execute("INSERT INTO ledger VALUES (2)")
    long.commit()
    assert psql(c.container("primary"), "SELECT count(*) FROM ledger") == "2"


def test_the_pooler_follows_a_failover_and_heals_its_drift(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    c.write(pair(port))
    assert pgtopo("apply", str(c.path), "--yes").code == 0
    make_app(c)
    pooler = f"{c.name}-pooler"

    subprocess.run(["docker", "rm", "-f", c.container("primary")], check=True, capture_output=True)
    c.write(pair(port).replace("primary: primary\n", "primary: replica\n", 1).replace("  primary: {}\n", ""))
    failed_over = pgtopo("apply", str(c.path), "--yes")
    assert failed_over.code == 0, failed_over
    assert ("repoint-pooler", "pooler") in actions(failed_over.out), failed_over.out
    with psycopg.connect(app_dsn(port), autocommit=True) as conn:  # the same DSN, no client change
        conn.execute("INSERT INTO ledger VALUES (1)")
    assert psql(c.container("replica"), "SELECT count(*) FROM ledger") == "1"

    subprocess.run(["docker", "stop", pooler], check=True, capture_output=True)
    healed = pgtopo("apply", str(c.path), "--yes")
    assert ("start-pooler", "pooler") in actions(healed.out), healed
    subprocess.run(["docker", "rm", "-f", pooler], check=True, capture_output=True)
    healed = pgtopo("apply", str(c.path), "--yes")
    assert ("create-pooler", "pooler") in actions(healed.out), healed
    with psycopg.connect(f"host=127.0.0.1 port={port} dbname=pgbouncer user=pgtopo_pooler", autocommit=True,
                         cursor_factory=psycopg.ClientCursor, password=_pooler_password(c)) as admin:
        admin.execute("PAUSE")
    resumed = pgtopo("apply", str(c.path), "--yes")
    assert ("resume-pooler", "pooler") in actions(resumed.out), resumed
    with psycopg.connect(app_dsn(port), autocommit=True) as conn:
        conn.execute("INSERT INTO ledger VALUES (2)")
    assert pgtopo("diff", str(c.path)).code == 0
    status = pgtopo("status", str(c.path))
    assert re.search(rf"^pooler 127\.0\.0\.1:{port} → replica · running · \d+ clients", status.out, re.M), status.out
    doc = json.loads(pgtopo("status", str(c.path), "--output", "json").out)
    assert doc["pooler"]["points_at"] == "replica" and doc["pooler"]["paused"] is False
    inspect = subprocess.run(["docker", "inspect", pooler], capture_output=True, text=True, check=True).stdout
    assert _pooler_password(c) not in inspect
    assert not re.search(APP_PASSWORD, inspect)


def _paused(port: int, password: str) -> bool:
    with psycopg.connect(f"host=127.0.0.1 port={port} dbname=pgbouncer user=pgtopo_pooler", autocommit=True,
                         cursor_factory=psycopg.ClientCursor, password=password) as admin:
        return dict(admin.execute("SHOW STATE").fetchall())["paused"] == "yes"


def test_a_pgtopo_killed_while_the_pool_is_paused_leaves_it_paused_for_no_time(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    c.write(pair(port, pooler_extra="  pause_timeout_seconds: 60\n"))
    assert pgtopo("apply", str(c.path), "--yes").code == 0
    make_app(c)
    password = _pooler_password(c, "primary")
    held = psycopg.connect(app_dsn(port))
    held.execute("INSERT INTO ledger VALUES (1)")  # an open transaction: the PAUSE waits for it, paused meanwhile
    c.write(pair(port, pooler_extra="  pause_timeout_seconds: 60\n").replace("primary: primary\n", "primary: replica\n", 1))
    env = {**os.environ, "NO_COLOR": "1", "PGTOPO_PULL": "never"}
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "apply", str(c.path), "--yes"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _paused(port, password), timeout=60), "the switchover never paused the pool"
    proc.kill()  # SIGKILL: no code of pgtopo's runs after it
    proc.wait(10)
    killed = time.monotonic()
    assert wait_for(lambda: not _paused(port, password), timeout=10), "the pool stayed paused"
    print(f"the pool resumed {time.monotonic() - killed:.2f} s after pgtopo was killed")
    held.commit()
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"  # the step never started

    finished = pgtopo("apply", str(c.path), "--yes")
    assert finished.code == 0, finished
    with psycopg.connect(app_dsn(port), autocommit=True) as conn:  # the same DSN, on the new primary
        conn.execute("INSERT INTO ledger VALUES (2)")
    assert psql(c.container("replica"), "SELECT count(*) FROM ledger") == "2"
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_switchover_rolled_back_leaves_the_pool_on_the_old_primary(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    c.write(pair(port, extra="switchover: {timeout_seconds: 2}\n"))
    assert pgtopo("apply", str(c.path), "--yes").code == 0
    make_app(c)
    writer = Writer(app_dsn(port))
    assert wait_for(lambda: len(writer.acked) > 20)
    password = _pooler_password(c, "primary")
    frozen = threading.Event()

    def freeze_once_paused() -> None:
        """Freeze the candidate as soon as the switchover has paused the pool (before it fences
        and stops the old primary): it never replays the old primary's last WAL."""
        if wait_for(lambda: _paused(port, password), timeout=60):
            subprocess.run(["docker", "pause", c.container("replica")], check=True)
            frozen.set()

    watcher = threading.Thread(target=freeze_once_paused, daemon=True)
    watcher.start()
    try:
        result = pgtopo("switchover", str(c.path), "--to", "replica")
    finally:
        watcher.join(60)
        if frozen.is_set():
            subprocess.run(["docker", "unpause", c.container("replica")], check=True)
    assert frozen.is_set(), result
    assert result.code == 1 and "was not promoted" in result.err, result
    done = len(writer.acked)
    assert wait_for(lambda: len(writer.acked) > done + 20), writer.errors[-3:]  # writes go on, on the old primary
    writer.stop()
    assert writer.errors == []  # neither "read-only transaction" (pointed at the standby) nor any other
    assert psql(c.container("primary"), "SELECT pg_is_in_recovery()") == "f"


def _pooler_password(c, node: str = "replica") -> str:
    from pgtopo.pooler import config

    superuser = subprocess.run(["docker", "exec", c.container(node), "cat", "/run/pgtopo/superuser_password"],
                               capture_output=True, text=True, check=True).stdout
    return config.password(superuser)


def test_the_read_only_endpoint_spreads_reads_over_the_replicas_that_stream(make_cluster) -> None:
    c = make_cluster(IMAGE)
    port, ro = free_port(), free_port()
    trio = (f"primary: primary\nnodes:\n  primary: {{}}\n  replica: {{}}\n  replica2: {{}}\n"
            f"pooler:\n  image: {POOLER_IMAGE}\n  port: {port}\n  read_only: {{port: {ro}}}\n")
    c.write(trio)
    first = pgtopo("apply", str(c.path), "--yes")
    assert first.code == 0, first
    assert ("create-pooler", "pooler-ro") in actions(first.out), first.out
    make_app(c)
    ro_dsn = app_dsn(ro)

    def served_by(n: int = 8) -> set[str]:
        """The nodes that serve `n` clients whose transactions run at once (each needs a server
        connection of its own: PgBouncer opens them over the replicas in turn)."""
        clients = [psycopg.connect(ro_dsn) for _ in range(n)]
        try:
            seen = set()
            for conn in clients:
                node, standby = conn.execute("SELECT current_setting('cluster_name'), pg_is_in_recovery()").fetchone()
                assert standby, f"a read-only connection reached {node}, which is not in recovery"
                seen.add(node)
            return seen
        finally:
            for conn in clients:
                conn.close()

    assert served_by() == {"replica", "replica2"}
    status = pgtopo("status", str(c.path)).out
    assert re.search(rf"^pooler \(read-only\) 127\.0\.0\.1:{ro} → replica, replica2 · running", status, re.M), status

    subprocess.run(["docker", "stop", c.container("replica2")], check=True, capture_output=True)
    stopped = pgtopo("diff", str(c.path))  # (apply would start it again: the file wants it)
    assert re.search(r"repoint-pooler\s+it points at replica, replica2, the replicas that stream are replica:",
                     stopped.out), stopped.out
    c.write(trio.replace("  replica2: {}\n", ""))
    shrunk = pgtopo("apply", str(c.path), "--yes")
    assert shrunk.code == 0, shrunk
    assert ("repoint-pooler", "pooler-ro") in actions(shrunk.out), shrunk.out
    assert served_by() == {"replica"}

    subprocess.run(["docker", "stop", c.container("replica")], check=True, capture_output=True)
    alone = pgtopo("diff", str(c.path))
    assert "no replica streams: the primary, read-only, is primary" in alone.out, alone.out
