"""A new cluster restored from another's backup, on a real engine (docs/backup.md): `pgtopo backup`
of a source cluster (from its replica), then apply on a file with `bootstrap.restore` and a new
cluster name recovers it to a moment, promotes it and clones its replica from it; the source is
never touched.  Also to a moment after a switchover of the source (its timeline 2), and a target
the archive does not reach, which makes nothing.  The first two for both methods (native and
pgbackrest)."""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
from collections.abc import Iterator

import docker
import pytest

from pgtopo.backup import layout

from .conftest import IMAGE, PAIR, actions, pgtopo, psql, wait_for


@pytest.fixture
def repository(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Repository volumes the test made: removed at the end whatever happened (pgtopo never
    removes one; the source cluster's clean-up removes it by its label, this covers the rest)."""
    made: list[str] = []
    yield made
    for name in made:
        for user in engine.containers.list(all=True, filters={"volume": name}):
            user.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(name).remove(force=True)


def source_file(c, primary: str = "primary", method: str = "native") -> str:
    return PAIR.replace("primary: primary", f"primary: {primary}") + \
        f"backup:\n  method: {method}\n  repository: {{volume: {c.name}-backup}}\n"


METHODS = pytest.mark.parametrize("method", ["native", "pgbackrest"])


def restore_file(source, target: str | None) -> str:
    aimed = f"\n    target: {{time: \"{target}\"}}" if target else ""
    return PAIR + textwrap.dedent(f"""\
        bootstrap:
          restore:
            from: {{cluster: {source.name}, repository: {{volume: {source.name}-backup}}}}""") + aimed + "\n"


def apply_ok(c, body: str):
    c.write(body)
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result
    return result


def archived_up_to_now(c, node: str) -> None:
    """Close the current WAL segment on `node` and wait until its archive command took it (the
    repository holds it: the native method's WAL directory is looked at too)."""
    segment = psql(c.container(node), "SELECT pg_walfile_name(pg_switch_wal())")
    assert wait_for(lambda: psql(c.container(node), "SELECT last_archived_wal FROM pg_stat_archiver") >= segment,
                    timeout=30), segment
    if "method: native" in c.path.read_text():
        assert segment in listing(c, node, layout.wal_dir(c.name))


def listing(c, node: str, path: str) -> list[str]:
    proc = subprocess.run(["docker", "exec", c.container(node), "ls", path], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def now(c, node: str) -> str:
    """The server's clock, as a time target reads it (ISO 8601 with its zone)."""
    return psql(c.container(node), "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")


def runs(engine: docker.DockerClient, c) -> dict[str, tuple[str, str, int]]:
    """Each container of the cluster: its id, when it started, how often Docker restarted it."""
    found = {}
    for ctr in engine.containers.list(all=True, filters={"label": f"io.pgtopo.cluster={c.name}"}):
        found[ctr.name] = (ctr.id, ctr.attrs["State"]["StartedAt"], ctr.attrs["RestartCount"])
    return found


def rows(c, node: str, table: str) -> str:
    return psql(c.container(node), f"SELECT coalesce(string_agg(v, ',' ORDER BY v), '') FROM {table}")


def timeline(c, node: str) -> int:
    """The timeline a primary writes on (its WAL file's name; a checkpoint may not have said it yet)."""
    return int(psql(c.container(node), "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16)


def backup(c) -> str:
    result = pgtopo("backup", str(c.path))
    assert result.code == 0, result
    return result.out


@METHODS
def test_a_new_cluster_restored_to_a_moment_has_exactly_the_rows_of_then(make_cluster, engine, repository,
                                                                         method: str) -> None:
    src = make_cluster(IMAGE)
    repository.append(f"{src.name}-backup")
    apply_ok(src, source_file(src, method=method))
    assert "taken from replica (standby)" in backup(src)  # from: prefer-standby
    p = src.container("primary")
    psql(p, "CREATE TABLE a (v text); INSERT INTO a VALUES ('a1'), ('a2'), ('a3')")
    moment = now(src, "primary")
    psql(p, "DROP TABLE a")
    psql(p, "CREATE TABLE b (v text); INSERT INTO b VALUES ('b1'), ('b2')")
    archived_up_to_now(src, "primary")
    before = runs(engine, src)

    dst = make_cluster(IMAGE)
    dst.write(restore_file(src, moment))
    diff = pgtopo("diff", str(dst.path))
    assert diff.code == 1 and f"restore from {src.name}'s latest backup" in diff.out, diff
    result = apply_ok(dst, restore_file(src, moment))
    assert ("restore", "primary") in actions(result.out) and ("init", "primary") not in actions(result.out), result.out

    for node in ("primary", "replica"):
        assert rows(dst, node, "a") == "a1,a2,a3"
        assert psql(dst.container(node), "SELECT to_regclass('b') IS NULL") == "t"
    assert psql(dst.container("primary"), "SELECT pg_is_in_recovery()") == "f"
    assert psql(dst.container("primary"), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"
    psql(dst.container("primary"), "INSERT INTO a VALUES ('new')")  # a primary that takes writes, replicated
    assert wait_for(lambda: rows(dst, "replica", "a") == "a1,a2,a3,new", timeout=10)

    # the source: not restarted, not changed
    assert runs(engine, src) == before
    assert rows(src, "primary", "b") == "b1,b2" and psql(p, "SELECT to_regclass('a') IS NULL") == "t"

    # the file keeps its bootstrap: block: nothing more to do, said quietly
    again = pgtopo("diff", str(dst.path))
    assert again.code == 0 and "nothing to restore" in again.out, again
    assert pgtopo("apply", str(dst.path), "--yes").code == 0
    assert rows(dst, "primary", "a") == "a1,a2,a3,new"


def test_a_restore_over_an_existing_cluster_is_refused(make_cluster, repository) -> None:
    src = make_cluster(IMAGE)
    repository.append(f"{src.name}-backup")
    apply_ok(src, source_file(src))
    backup(src)
    other = make_cluster(IMAGE)
    apply_ok(other, PAIR)
    psql(other.container("primary"), "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('kept')")
    other.write(restore_file(src, None))
    result = pgtopo("apply", str(other.path), "--yes")
    assert result.code != 0 and "bootstrap.restore" in result.err + result.out, result
    assert "new cluster name" in result.err + result.out, result
    assert rows(other, "primary", "mine") == "kept"


@METHODS
def test_a_restore_to_a_moment_after_a_switchover_follows_timeline_2(make_cluster, repository, method: str) -> None:
    src = make_cluster(IMAGE)
    repository.append(f"{src.name}-backup")
    apply_ok(src, source_file(src, method=method))
    backup(src)  # on timeline 1
    psql(src.container("primary"), "CREATE TABLE a (v text); INSERT INTO a VALUES ('tl1')")
    apply_ok(src, source_file(src, primary="replica", method=method))  # switchover: replica takes writes on timeline 2
    assert timeline(src, "replica") == 2
    psql(src.container("replica"), "INSERT INTO a VALUES ('tl2')")
    moment = now(src, "replica")
    psql(src.container("replica"), "INSERT INTO a VALUES ('too-late')")
    archived_up_to_now(src, "replica")

    dst = make_cluster(IMAGE)
    apply_ok(dst, restore_file(src, moment))
    assert rows(dst, "primary", "a") == "tl1,tl2"
    assert rows(dst, "replica", "a") == "tl1,tl2"
    assert timeline(dst, "primary") == 3  # timeline 2's history, then its own promotion


def test_a_target_the_archive_does_not_reach_makes_nothing(make_cluster, repository) -> None:
    src = make_cluster(IMAGE)
    repository.append(f"{src.name}-backup")
    apply_ok(src, source_file(src))
    backup(src)
    psql(src.container("primary"), "CREATE TABLE a (v text); INSERT INTO a VALUES ('a1')")
    archived_up_to_now(src, "primary")
    moment = now(src, "primary")  # no commit after it reaches the archive

    dst = make_cluster(IMAGE)
    dst.write(restore_file(src, moment))
    result = pgtopo("apply", str(dst.path), "--yes")
    assert result.code != 0 and "recovery ended before the target" in result.err, result
    # then to the end of the archive instead
    apply_ok(dst, restore_file(src, None))
    assert rows(dst, "primary", "a") == "a1"
