"""WAL archiving from the file's backup: block on a real engine: every segment the primary fills
reaches the repository, across a switchover too; a failing archive shows in `status` and makes
`status --check` exit 1 until it resumes; destroy --volumes keeps the repository; a file without
the block turns archiving off again."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pgtopo.backup import layout

from .conftest import IMAGE, PAIR, SOLO, actions, pgtopo, psql, wait_for


def backup_block(c) -> str:
    return f"backup:\n  repository: {{volume: {c.name}-backup}}\n"


@pytest.fixture
def repository(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Names of repository volumes the test made: removed at the end, whatever happened (pgtopo
    never removes one, and the cluster's clean-up would miss one a label did not name)."""
    made: list[str] = []
    yield made
    for name in made:
        for user in engine.containers.list(all=True, filters={"volume": name}):  # a test that failed half-way
            user.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(name).remove(force=True)


def archived(c, node: str) -> list[str]:
    """The files in the cluster's wal directory of the repository, as a node that mounts it sees them."""
    proc = subprocess.run(["docker", "exec", c.container(node), "ls", layout.wal_dir(c.name)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def switch_wal(c, node: str) -> str:
    """A write, then pg_switch_wal(): the name of the segment it closed (which the archiver takes next)."""
    psql(c.container(node), "INSERT INTO ledger DEFAULT VALUES")
    return psql(c.container(node), "SELECT pg_walfile_name(pg_switch_wal())")


def apply_ok(c, body: str):
    c.write(body)
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 0, result
    return result


def test_every_primary_archives_and_destroy_keeps_the_repository(make_cluster, engine, repository) -> None:
    c = make_cluster(IMAGE)
    repository.append(f"{c.name}-backup")
    result = apply_ok(c, PAIR + backup_block(c))
    assert ("prepare-repository", "cluster") in actions(result.out), result.out
    volume = engine.volumes.get(f"{c.name}-backup")
    assert volume.attrs["Labels"]["io.pgtopo.role"] == "repository"
    for node in ("primary", "replica"):
        assert psql(c.container(node), "SHOW archive_mode") == "on"
    psql(c.container("primary"), "CREATE TABLE ledger (id bigserial PRIMARY KEY)")
    segment = switch_wal(c, "primary")
    assert wait_for(lambda: segment in archived(c, "replica"), timeout=10), archived(c, "replica")
    assert pgtopo("diff", str(c.path)).code == 0

    # a switchover by the file: the new primary archives on its new timeline, with its history file
    apply_ok(c, PAIR.replace("primary: primary", "primary: replica") + backup_block(c))
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "f"
    segment = switch_wal(c, "replica")
    assert segment.startswith("00000002"), segment
    assert wait_for(lambda: {segment, "00000002.history"} <= set(archived(c, "primary")), timeout=10), \
        archived(c, "primary")

    pruned = pgtopo("apply", str(c.path), "--yes", "--prune-volumes")  # the repository is no node's volume
    assert pruned.code == 0 and "remove-volume" not in pruned.out, pruned
    gone = pgtopo("destroy", str(c.path), "--yes", "--volumes")
    assert gone.code == 0, gone
    assert f"volume {c.name}-primary-data" in gone.out and f"{c.name}-backup" not in gone.out
    engine.volumes.get(f"{c.name}-backup")  # still there
    assert [v.name for v in engine.volumes.list(filters={"label": f"io.pgtopo.cluster={c.name}"})] == \
        [f"{c.name}-backup"]


def status_check(c) -> tuple[int, dict]:
    result = pgtopo("status", str(c.path), "--check", "--output", "json")
    assert result.code in (0, 1), result
    return result.code, json.loads(result.out)


def test_a_failing_archive_shows_in_status_until_it_resumes(make_cluster, engine, repository) -> None:
    c = make_cluster(IMAGE)
    repository.append(f"{c.name}-backup")
    apply_ok(c, SOLO)
    engine.volumes.create(f"{c.name}-backup")  # the user's own volume, unlabelled: used as it is
    result = apply_ok(c, SOLO + backup_block(c))  # archiving added to a running cluster
    assert {("prepare-repository", "cluster"), ("recreate", "primary")} <= set(actions(result.out)), result.out
    assert not engine.volumes.get(f"{c.name}-backup").attrs["Labels"]
    assert psql(c.container("primary"), "SHOW archive_mode") == "on"
    psql(c.container("primary"), "CREATE TABLE ledger (id bigserial PRIMARY KEY)")
    segment = switch_wal(c, "primary")
    assert wait_for(lambda: segment in archived(c, "primary"), timeout=10)
    code, doc = status_check(c)
    assert code == 0 and doc["problems"] == [] and doc["backup"]["archiving"]["failing"] is False, doc
    assert doc["backup"]["archiving"]["last_archived_wal"] == segment

    wal = layout.wal_dir(c.name)
    subprocess.run(["docker", "exec", "-u", "root", c.container("primary"), "chmod", "0500", wal], check=True)
    failed = switch_wal(c, "primary")
    assert wait_for(lambda: status_check(c)[0] == 1, timeout=15)
    code, doc = status_check(c)
    assert doc["in_sync"] is True and doc["backup"]["archiving"]["failing"] is True, doc
    assert doc["backup"]["archiving"]["last_failed_wal"] == failed
    assert doc["problems"] and doc["problems"][0].startswith("primary: WAL archiving fails: " + failed), doc
    shown = pgtopo("status", str(c.path))
    assert shown.code == 0 and "archiving FAILS on primary" in shown.out and "problem: primary: WAL archiving fails" \
        in shown.out, shown

    subprocess.run(["docker", "exec", "-u", "root", c.container("primary"), "chmod", "0700", wal], check=True)
    after = switch_wal(c, "primary")  # a new segment wakes the archiver, which retries the failed one first
    assert wait_for(lambda: {failed, after} <= set(archived(c, "primary")), timeout=15), archived(c, "primary")
    code, doc = status_check(c)
    assert code == 0 and doc["problems"] == [] and doc["backup"]["archiving"]["failing"] is False, doc

    # the block removed: archiving off again, the repository unmounted (and kept)
    result = apply_ok(c, SOLO)
    assert psql(c.container("primary"), "SHOW archive_mode") == "off", result
    mounts = [m["Destination"] for m in docker.from_env().containers.get(c.container("primary")).attrs["Mounts"]]
    assert layout.REPO_MOUNT not in mounts
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_missing_host_directory_is_said_plainly(make_cluster, tmp_path) -> None:
    c = make_cluster(IMAGE)
    missing = tmp_path / "no-such-repository"
    c.write(SOLO + f"backup:\n  repository: {{path: {missing}}}\n")
    result = pgtopo("apply", str(c.path), "--yes")
    assert result.code == 2, result
    assert f"backup repository {missing} does not exist on the Docker host" in result.err, result
    assert f"create the directory {missing}" in result.err, result


@pytest.fixture
def small_directory(tmp_path) -> Iterator[Path]:
    """A host directory on its own 160 MB tmpfs: a repository that can fill up. Unmounted at the end."""
    where = tmp_path / "small-repository"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m,mode=0755", "pgtopo-test", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def archived_by_server(c, node: str) -> str:
    """The last segment the node's archive command took (either method)."""
    return psql(c.container(node), "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")


@pytest.mark.parametrize("method", ["native", "pgbackrest"])
def test_a_full_repository_shows_in_status_and_the_next_backup_after_space_is_freed_succeeds(
        make_cluster, small_directory: Path, method: str) -> None:
    c = make_cluster(IMAGE)
    apply_ok(c, SOLO + f"backup:\n  method: {method}\n  repository: {{path: {small_directory}}}\n")
    psql(c.container("primary"), "CREATE TABLE ledger (id bigserial PRIMARY KEY)")
    first = switch_wal(c, "primary")
    assert wait_for(lambda: archived_by_server(c, "primary") >= first, timeout=10)

    filler = small_directory / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)  # until no space is left
    failed = switch_wal(c, "primary")
    assert wait_for(lambda: status_check(c)[0] == 1, timeout=15)
    code, doc = status_check(c)
    assert doc["backup"]["archiving"]["failing"] is True and doc["backup"]["archiving"]["last_failed_wal"] == failed
    assert doc["problems"][0].startswith("primary: WAL archiving fails: " + failed), doc
    result = pgtopo("backup", str(c.path))
    if method == "native":  # pg_basebackup streams its WAL itself: its copy is what fails
        assert result.code == 2 and "the backup job failed" in result.err and "No space left" in result.err, result
    else:  # pgBackRest waits for its WAL to be archived: refused before it starts
        assert result.code == 2 and "WAL archiving fails" in result.err and "none was started" in result.err, result
    assert "Traceback" not in result.err
    assert pgtopo("backups", str(c.path), "--output", "json").code == 0

    filler.unlink()
    after = switch_wal(c, "primary")  # the archiver retries the failed segment first
    assert wait_for(lambda: archived_by_server(c, "primary") >= after, timeout=30)
    if method == "native":
        assert {failed, after} <= set(archived(c, "primary"))
    leftovers = [p.name for p in (small_directory / c.name).rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    assert not leftovers, leftovers  # failed copies left nothing behind
    assert status_check(c)[0] == 0
    result = pgtopo("backup", str(c.path))
    assert result.code == 0, result
    listing = json.loads(pgtopo("backups", str(c.path), "--output", "json").out)
    assert len(listing["backups"]) == 1 and listing["backups"][0]["method"] == method
    if method == "native":
        assert sorted(p.name for p in (small_directory / c.name / "base").iterdir()) == \
            [listing["backups"][0]["label"]]
