"""Connecting is one command: `pgtopo url` prints URLs a client can use (the password comes from
elsewhere), `pgtopo psql` opens psql on a node."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from .conftest import IMAGE, PAIR, pgtopo


def superuser_password(c) -> str:
    return subprocess.run(["docker", "exec", c.container("primary"), "cat", "/run/pgtopo/superuser_password"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_url_and_psql_reach_the_nodes(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    password = superuser_password(c)

    primary = pgtopo("url", str(c.path))
    assert primary.code == 0, primary
    assert password not in primary.out
    with psycopg.connect(primary.out.strip(), password=password, connect_timeout=10) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    replica = pgtopo("url", str(c.path), "replica")
    with psycopg.connect(replica.out.strip(), password=password, connect_timeout=10) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    every = pgtopo("url", str(c.path), "--all")
    assert every.code == 0 and "target_session_attrs=read-write" in every.out, every
    assert pgtopo("switchover", str(c.path), "--to", "replica", "--yes").code == 0
    with psycopg.connect(every.out.strip(), password=password, connect_timeout=10) as conn:  # the old URL
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)  # finds the new writer

    done = subprocess.run([sys.executable, "-m", "pgtopo", "psql", str(c.path), "--", "-Atc",
                           "SELECT pg_is_in_recovery()"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "f"), done  # the file's primary: replica now
    done = subprocess.run([sys.executable, "-m", "pgtopo", "psql", str(c.path), "primary", "--", "-Atc",
                           "SELECT pg_is_in_recovery()"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "t"), done


def test_a_node_that_is_not_running_or_not_in_the_file_is_said_plainly(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    subprocess.run(["docker", "stop", c.container("replica")], check=True, capture_output=True)
    stopped = pgtopo("url", str(c.path), "replica")
    assert stopped.code == 1 and "replica: its container" in stopped.err and "is not running" in stopped.err, stopped
    assert "run `pgtopo apply` first" in stopped.err
    unknown = pgtopo("psql", str(c.path), "nope")
    assert unknown.code == 2 and "nope is not a node of the file (nodes: primary, replica)" in unknown.err, unknown
    for result in (stopped, unknown):
        assert "Traceback" not in result.err
