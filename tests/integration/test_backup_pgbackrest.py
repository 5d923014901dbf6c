"""`backup.method: pgbackrest` on a real engine with Debian's pgBackRest in the image: a backup of
a pair comes from its standby (through pgBackRest's TLS servers in the nodes), an incremental one
after it, both listed and seen by pgBackRest itself; nothing of the backup's certificates is left in
the nodes, nor in what Docker shows of them; retention `full: 2` leaves two full backups and
expires the WAL before the oldest; a backup killed mid-way (pgtopo, kill -9) stops its copy and its
servers, and the next one succeeds; an image without pgBackRest is refused before anything is made.
(Restores from pgBackRest backups: test_backup_restore.py; a full repository:
test_backup_archiving.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import docker
import pytest

from .conftest import IMAGE, OLDEST, PAIR, Cluster, pgtopo, psql, wait_for


def with_backup(c: Cluster, retention: str = "{full: 2}") -> None:
    c.write(PAIR + f"backup:\n  method: pgbackrest\n  repository: {{volume: {c.name}-backup}}\n"
                   f"  retention: {retention}\n")


def pgbackrest_info(c: Cluster) -> dict:
    """What pgBackRest itself says of the repository (read-only), the cluster's stanza."""
    proc = subprocess.run(["docker", "run", "--rm", "--pull", "never", "--label", f"io.pgtopo.cluster={c.name}",
                           "--entrypoint", "pgbackrest", "-v", f"{c.name}-backup:/r:ro", c.image, "--no-config",
                           f"--stanza={c.name}", f"--repo1-path=/r/{c.name}/pgbackrest", "--log-level-file=off",
                           "--output=json", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [stanza] = json.loads(proc.stdout)
    return stanza


def listed(c: Cluster) -> list[dict]:
    result = pgtopo("backups", str(c.path), "--output", "json")
    assert result.code == 0, result
    return json.loads(result.out)["backups"]


def backup(c: Cluster, *args: str) -> str:
    result = pgtopo("backup", str(c.path), *args)
    assert result.code == 0, result
    return result.out


def switch_wal(c: Cluster) -> str:
    primary = c.container("primary")
    psql(primary, "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t SELECT generate_series(1, 1000)")
    segment = psql(primary, "SELECT pg_walfile_name(pg_switch_wal())")
    assert wait_for(lambda: psql(primary, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment,
                    60), segment
    return segment


def in_node(c: Cluster, node: str, script: str) -> str:
    return subprocess.run(["docker", "exec", c.container(node), "sh", "-c", script], capture_output=True, text=True,
                          timeout=60).stdout


SERVERS = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | grep -c '^pgbackrest.* server' || true"


def test_a_backup_comes_from_the_standby_and_leaves_no_credentials_behind(make_cluster,
                                                                         engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    assert "pgbackrest" in psql(c.container("primary"), "SHOW archive_command")
    assert listed(c) == []

    out = backup(c)
    assert "from replica: a standby of the primary, streaming" in out, out
    [full] = listed(c)
    assert (full["source"], full["backup_from"], full["type"], full["method"]) == (
        "replica", "standby", "full", "pgbackrest")
    assert full["system_identifier"] == psql(c.container("primary"), "SELECT system_identifier FROM pg_control_system()")
    switch_wal(c)
    out = backup(c, "--type", "incr")
    full_again, incr = listed(c)
    assert full_again == full and incr["type"] == "incr" and incr["label"].startswith(full["label"] + "_"), incr
    assert f"backup {incr['label']} taken from replica (standby)" in out
    seen = pgbackrest_info(c)
    assert [b["label"] for b in seen["backup"]] == [full["label"], incr["label"]]
    status = pgtopo("status", str(c.path), "--output", "json")
    assert json.loads(status.out)["backup"]["archiving"]["newest_backup"] == incr["label"]
    assert f"newest backup {incr['label']}, ended " in pgtopo("status", str(c.path)).out
    assert seen["status"]["message"] == "ok", seen["status"]

    # the certificates and the servers lived as long as the backup, in the nodes only
    for node in ("primary", "replica"):
        assert in_node(c, node, "ls -d /tmp/pgtopo-backup-tls 2>/dev/null || true").strip() == "", node
        assert in_node(c, node, SERVERS).strip() == "0", node
        shown = json.dumps(engine.api.inspect_container(c.container(node)))
        assert "PRIVATE KEY" not in shown and "pgtopo-backup-tls" not in shown
        assert "PRIVATE KEY" not in engine.api.logs(c.container(node)).decode(errors="replace")
    assert not engine.containers.list(all=True, filters={"label": [f"io.pgtopo.cluster={c.name}",
                                                                   "io.pgtopo.role=helper"]})


def test_full_2_after_three_backups_leaves_two_and_expires_the_wal_before_the_oldest_kept(make_cluster) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    labels, oldest_archived = [], []
    for _ in range(3):
        switch_wal(c)
        switch_wal(c)
        out = backup(c)
        labels.append(re.search(r"backup (\S+) taken", out).group(1))  # type: ignore[union-attr]
        oldest_archived.append(pgbackrest_info(c)["archive"][-1]["min"])
    assert [b["label"] for b in listed(c)] == labels[1:]
    assert f"expired {labels[0]}" in out
    kept = listed(c)[0]
    assert oldest_archived[1] < kept["start_wal"] <= oldest_archived[2], (oldest_archived, kept)


def test_a_backup_killed_mid_way_stops_its_copy_and_servers_and_the_next_one_succeeds(
        make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    with_backup(c)
    assert pgtopo("apply", str(c.path)).code == 0
    subprocess.run(["docker", "exec", c.container("primary"), "pgbench", "-U", "postgres", "-i", "-s", "30", "-q",
                    "postgres"], check=True, capture_output=True, timeout=300)
    jobs = {"label": [f"io.pgtopo.cluster={c.name}", "io.pgtopo.job=backup"]}
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", "backup", str(c.path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        copying = f"ls /var/lib/pgtopo-backup/{c.name}/pgbackrest/backup/{c.name}/*/pg_data 2>/dev/null | head -1"
        assert wait_for(lambda: in_node(c, "primary", copying).strip() != "" or proc.poll() is not None, 120)
        assert proc.poll() is None, "the backup ended before it could be killed"
        assert in_node(c, "replica", SERVERS).strip() != "0"  # the server and the processes it forked
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the job and the servers are tethered to pgtopo: stopped, not finished
    assert wait_for(lambda: not engine.containers.list(filters=jobs), 30), "the backup job went on after pgtopo died"
    [job] = engine.containers.list(all=True, filters=jobs)
    assert job.attrs["State"]["ExitCode"] != 0
    assert wait_for(lambda: all(in_node(c, n, SERVERS).strip() == "0" for n in ("primary", "replica")), 30)
    assert listed(c) == []

    backup(c)
    [entry] = listed(c)
    assert [b["label"] for b in pgbackrest_info(c)["backup"]] == [entry["label"]]
    assert not engine.containers.list(all=True, filters={"label": [f"io.pgtopo.cluster={c.name}",
                                                                   "io.pgtopo.role=helper"]})


@pytest.mark.skipif(bool(os.environ.get("PGTOPO_TEST_IMAGE")), reason="needs the local 13 image, which has none")
def test_an_image_without_pgbackrest_is_refused_before_anything_is_made(make_cluster,
                                                                        engine: docker.DockerClient) -> None:
    c = make_cluster(OLDEST)
    with_backup(c)
    for command in ("diff", "apply", "backup"):
        result = pgtopo(command, str(c.path))
        assert result.code == 2, result
        assert f"image {OLDEST} has no pgbackrest command" in result.err and "method: native" in result.err, result
    label = {"label": f"io.pgtopo.cluster={c.name}"}
    assert engine.containers.list(all=True, filters=label) == [] and engine.volumes.list(filters=label) == []
    assert engine.networks.list(filters=label) == []


def test_an_earlier_cluster_of_the_same_name_keeps_its_backups_and_wal(make_cluster) -> None:
    """Destroyed with its volumes (the repository is kept) and made again: a new system
    identifier.  Its WAL is not pushed into the earlier cluster's stanza (archiving fails, and
    `status --check` says so), and its backup is refused before pgBackRest runs, so retention
    never expires the earlier cluster's backup."""
    c = make_cluster(IMAGE)
    with_backup(c, retention="{full: 1}")
    assert pgtopo("apply", str(c.path)).code == 0
    backup(c)
    [earlier] = [b["label"] for b in pgbackrest_info(c)["backup"]]
    assert pgtopo("destroy", str(c.path), "--volumes", "--yes").code == 0
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t (x int); SELECT pg_switch_wal()")
    assert wait_for(lambda: "WAL archiving fails" in pgtopo("status", str(c.path), "--check").out, 30)
    assert pgtopo("status", str(c.path), "--check").code == 1
    refused = pgtopo("backup", str(c.path))
    assert refused.code == 1 and "with another system identifier" in refused.err, refused
    assert [b["label"] for b in pgbackrest_info(c)["backup"]] == [earlier]
