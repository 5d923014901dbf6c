"""`pgtopo backup` and `pgtopo backups` on a real engine: a backup of a pair comes from its
standby and is listed; retention `full: 2` leaves two backups and expires the archived WAL older
than the oldest kept; a backup killed mid-way (pgtopo and its job, kill -9) leaves nothing listed,
and the next one succeeds; the JSON listing validates against its schema.

The repository is a volume named after the test's cluster: pgtopo labels it with the cluster, so
the fixtures remove it with everything else, even when a test fails."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import docker
from jsonschema import Draft202012Validator

from .conftest import IMAGE, PAIR, Cluster, pgtopo, psql, wait_for

ROOT = Path(__file__).resolve().parents[2]
SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def with_backup(c: Cluster, topology: str = PAIR, retention: str = "{full: 2}") -> None:
    c.write(topology + f"backup:\n  repository: {{volume: {c.name}-backup}}\n  retention: {retention}\n")


def repository(c: Cluster, command: str) -> str:
    """`command` (sh) run in the cluster's image with the repository mounted read-only at /r;
    labelled with the cluster, so a container that outlives a failure is removed too."""
    proc = subprocess.run(["docker", "run", "--rm", "--label", f"io.pgtopo.cluster={c.name}", "--entrypoint", "sh",
                           "-v", f"{c.name}-backup:/r:ro", c.image, "-c", command],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def listed(c: Cluster) -> dict:
    result = pgtopo("backups", str(c.path), "--output", "json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    Draft202012Validator(json.loads((ROOT / "schemas/backups.schema.json").read_text()),
                         format_checker=Draft202012Validator.FORMAT_CHECKER).validate(doc)
    return doc


def backup(c: Cluster) -> str:
    result = pgtopo("backup", str(c.path))
    assert result.code == 0, result
    return result.out


def archived(c: Cluster) -> list[str]:
    return sorted(n for n in repository(c, f"ls /r/{c.name}/wal").split() if SEGMENT.match(n))


def switch_wal(c: Cluster) -> None:
    """Write, switch to a new WAL segment and wait until the finished one is archived."""
    primary = c.container("primary")
    before = int(psql(primary, "SELECT archived_count FROM pg_stat_archiver"))
    psql(primary, "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t SELECT generate_series(1, 1000)")
    psql(primary, "SELECT pg_switch_wal()")
    assert wait_for(lambda: int(psql(primary, "SELECT archived_count FROM pg_stat_archiver")) > before, 60)


def test_a_backup_of_a_pair_is_taken_from_its_standby_and_listed(make_cluster) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    assert listed(c)["backups"] == []  # nothing yet, and the listing made nothing

    out = backup(c)
    assert "from replica: a standby of the primary, streaming" in out, out
    doc = listed(c)
    [entry] = doc["backups"]
    assert (entry["source"], entry["backup_from"], entry["type"], entry["method"]) == (
        "replica", "standby", "full", "native")
    assert f"backup {entry['label']} taken from replica (standby)" in out
    assert entry["system_identifier"] == psql(c.container("primary"), "SELECT system_identifier FROM "
                                                                       "pg_control_system()")
    assert repository(c, f"grep '^BACKUP FROM' /r/{c.name}/base/{entry['label']}/backup_label").strip() == \
        "BACKUP FROM: standby"
    assert doc["window"]["start"] == entry["stop_time"]
    text = pgtopo("backups", str(c.path))
    assert text.code == 0 and entry["label"] in text.out and "replica (standby)" in text.out, text
    status = json.loads(pgtopo("status", str(c.path), "--output", "json").out)
    assert status["backup"]["archiving"]["newest_backup"] == entry["label"]


def test_full_2_after_three_backups_leaves_two_and_expires_the_wal_before_the_oldest_kept(make_cluster) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    labels = []
    for _ in range(3):
        switch_wal(c)
        switch_wal(c)
        before = archived(c)
        out = backup(c)
        labels.append(re.search(r"backup (\S+) taken", out).group(1))  # type: ignore[union-attr]
    doc = listed(c)
    assert [b["label"] for b in doc["backups"]] == labels[1:]
    assert f"expired {labels[0]}" in out
    cutoff = doc["backups"][0]["start_wal"]
    assert any(n < cutoff for n in before), (before, cutoff)  # there was WAL to expire
    left = archived(c)
    assert left and all(n[8:] >= cutoff[8:] for n in left), (left, cutoff)
    assert sorted(repository(c, f"ls /r/{c.name}/base").split()) == labels[1:]


def test_a_backup_killed_mid_way_leaves_nothing_listed_and_the_next_one_succeeds(
        make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    subprocess.run(["docker", "exec", c.container("primary"), "pgbench", "-U", "postgres", "-i", "-s", "20", "-q",
                    "postgres"], check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "backup", str(c.path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        copying = "SELECT count(*) FROM pg_stat_progress_basebackup WHERE phase = 'streaming database files'"
        assert wait_for(lambda: psql(c.container("replica"), copying) == "1" or proc.poll() is not None, 120)
        assert proc.poll() is None, "the backup ended before it could be killed"
        # meanwhile (its job paused, so it cannot end first) neither an apply nor a backup runs
        jobs = {"label": [f"io.pgtopo.cluster={c.name}", "io.pgtopo.job=backup"]}
        [job] = engine.containers.list(filters=jobs)
        job.pause()
        try:
            for command in ("apply", "backup"):
                other = pgtopo(command, str(c.path), "--lock-timeout", "1")
                assert other.code == 1 and "another pgtopo holds the lock" in other.err, other
        finally:
            job.unpause()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the job is tethered to pgtopo: its copy is stopped, not finished (the kill after is in case)
    stopped = wait_for(lambda: not engine.containers.list(filters=jobs), 30)
    for job in engine.containers.list(filters=jobs):
        job.kill()
    [job] = engine.containers.list(all=True, filters=jobs)
    assert stopped and job.attrs["State"]["ExitCode"] != 0, "the backup job went on after pgtopo was killed"
    assert listed(c)["backups"] == []
    partial = repository(c, f"ls /r/{c.name}/base").split()
    assert len(partial) == 1 and partial[0].endswith(".partial"), partial

    out = backup(c)
    assert f"removed {partial[0]}: left by an interrupted backup" in out
    [entry] = listed(c)["backups"]
    assert repository(c, f"ls /r/{c.name}/base").split() == [entry["label"]]
    assert not engine.containers.list(all=True, filters={"label": [f"io.pgtopo.cluster={c.name}",
                                                                   "io.pgtopo.role=helper"]})
    # a run killed after writing its record, before the rename: still not a backup
    base = f"/var/lib/pgtopo-backup/{c.name}/base"
    subprocess.run(["docker", "exec", c.container("primary"), "sh", "-c",
                    f'mkdir {base}/20260101T000000Z.partial && cp {base}/{entry["label"]}/pgtopo-backup.json '
                    f'{base}/20260101T000000Z.partial/'], check=True, timeout=60)
    assert [b["label"] for b in listed(c)["backups"]] == [entry["label"]]


def test_backup_needs_a_backup_block_and_refuses_incremental(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    for command in (["backup"], ["backups"]):
        result = pgtopo(*command, str(c.path))
        assert result.code == 2 and "has no backup: block" in result.err, result
    with_backup(c)
    result = pgtopo("backup", str(c.path), "--type", "incr")
    assert result.code == 2 and "method native takes full backups only" in result.err, result


def test_if_due_takes_a_backup_only_when_the_schedule_says_so(make_cluster) -> None:
    c = make_cluster(IMAGE)
    with_backup(c, topology="primary: primary\nnodes:\n  primary: {}\n")
    assert pgtopo("apply", str(c.path)).code == 0
    first = pgtopo("backup", str(c.path), "--if-due")  # without a schedule: always due
    assert first.code == 0 and "taken from primary" in first.out, first
    c.path.write_text(c.path.read_text() + '  schedule: "0 0 1 1 *"\n')  # next: on January 1st
    second = pgtopo("backup", str(c.path), "--if-due")
    assert second.code == 0 and second.out.startswith("not due: the newest backup started"), second
    assert len(listed(c)["backups"]) == 1


def test_backups_of_an_earlier_cluster_of_the_same_name_are_never_expired(make_cluster) -> None:
    """The cluster is destroyed with its volumes (the repository is kept) and made again: a new
    system identifier.  Its backup is refused before anything is written or expired: the earlier
    cluster's backup is still there."""
    c = make_cluster(IMAGE)
    with_backup(c, retention="{full: 1}")
    assert pgtopo("apply", str(c.path)).code == 0
    backup(c)
    [earlier] = [b["label"] for b in listed(c)["backups"]]
    assert pgtopo("destroy", str(c.path), "--volumes", "--yes").code == 0
    assert pgtopo("apply", str(c.path)).code == 0
    refused = pgtopo("backup", str(c.path))
    assert refused.code == 1, refused
    assert "holds backups of " + c.name + " with another system identifier" in refused.err, refused
    assert repository(c, f"ls /r/{c.name}/base").split() == [earlier]
