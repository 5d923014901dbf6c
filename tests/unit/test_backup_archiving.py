"""WAL archiving from the file's backup: block, on plain values: the settings and mounts every node
gets, the config hash of a cluster without one (unchanged), the repository in the plan, the
repository volume that destroy and --prune-volumes pass by, and the archiver's verdict in status."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from pgtopo import desired, destroy, docker_ops, documents, labels as L, observe, render
from pgtopo.actions import Kind, Wave
from pgtopo.backup import layout
from pgtopo.backup.archiving import ArchiverFacts, problem
from pgtopo.containers import Mount
from pgtopo.observed import NodeFacts, VolumeFacts
from pgtopo.plan import plan
from tests.unit.test_plan import container, converged, kinds, pg_primary, pg_replica, topo

REPO = {"repository": {"volume": "pg-backup"}}
B = topo(backup=REPO)
PLAIN = topo()
REPO_VOLUME = VolumeFacts("pg-backup", L.labels("pg", "repository"))


def with_repository(t=B, **kw):
    return replace(converged(t, **kw), repository=REPO_VOLUME)


# -- settings and containers -------------------------------------------------------------------

def test_every_node_archives_with_a_backup_block() -> None:
    for node in B.nodes:
        got = desired.settings(B, node)
        assert got["archive_mode"] == "on" and got["archive_timeout"] == "60s"
        assert got["archive_command"] == layout.archive_command("pg")
        assert "/var/lib/pgtopo-backup/pg/wal" in got["archive_command"]


def test_no_archive_settings_without_a_backup_block() -> None:
    assert not {k for k in desired.settings(PLAIN, "primary") if k.startswith("archive")}


def test_the_user_s_archive_timeout_wins() -> None:
    t = topo(backup=REPO, parameters={"archive_timeout": "5min"})
    assert desired.settings(t, "replica")["archive_timeout"] == "5min"
    assert desired.settings(t, "replica")["archive_mode"] == "on"


def test_every_node_container_mounts_the_repository() -> None:
    for node in B.nodes:
        assert Mount("pg-backup", layout.REPO_MOUNT) in desired.node_container(B, node).mounts
    path = topo(backup={"repository": {"path": "/srv/pg-backup"}})
    assert Mount("/srv/pg-backup", layout.REPO_MOUNT, bind=True) in desired.node_container(path, "primary").mounts
    assert all(m.target != layout.REPO_MOUNT for m in desired.node_container(PLAIN, "primary").mounts)


def test_the_hash_of_a_cluster_without_backup_is_what_it_was() -> None:
    """The recipe hashed before backups existed, written out: a cluster without a backup: block is
    never recreated by the pgtopo that brings them."""
    before = {"layout": desired.CONTAINER_LAYOUT, "image": PLAIN.image, "command": desired.server_command("replica"),
              "network": "pg_stream", "alias": "replica", "hba": desired.hba_conf(PLAIN), "host_port": None,
              "data": "pg-replica-data", "state": "pg-pgtopo-state"}
    assert desired.node_hash(PLAIN, "replica") == L.config_hash(before)
    assert desired.node_hash(B, "replica") != desired.node_hash(PLAIN, "replica")
    other = topo(backup={"repository": {"volume": "elsewhere"}})
    assert desired.node_hash(other, "replica") != desired.node_hash(B, "replica")


# -- the plan ----------------------------------------------------------------------------------

def test_a_new_cluster_prepares_its_repository_volume_before_any_node() -> None:
    empty = replace(converged(B), network=None, state_volume=None, credentials=False, system_identifier=None,
                    nodes={})
    p = plan(B, empty)
    assert kinds(p)[:3] == [("", "create-network"), ("", "create-state"), ("", "prepare-repository")]
    action = p.actions[2]
    assert action.wave == Wave() and action.target == "pg-backup" and not action.destructive
    assert action.reason == ("repository volume pg-backup does not exist: create it (labelled; pgtopo never removes "
                             "it) with pg/wal and pg/base owned by the image's postgres user")
    assert Kind.PREPARE_REPOSITORY.symbol == "+"


def test_adding_a_backup_block_prepares_the_repository_then_rolls_the_nodes_and_configures_archiving() -> None:
    # the containers were made from the file without backup: (their hash says so)
    obs = with_repository(B, **{n: NodeFacts(name=n, container=container(B, n, hash_=desired.node_hash(PLAIN, n)),
                                             volume=converged(B).nodes[n].volume,
                                             pg=(pg_primary(PLAIN) if n == "primary" else pg_replica(PLAIN, n)))
                                for n in B.nodes})
    p = plan(B, obs)
    first = p.actions[0]
    assert (first.node, first.kind) == ("", Kind.PREPARE_REPOSITORY) and first.wave == Wave()
    assert first.reason == ("primary, replica, replica2 are to mount volume pg-backup: make sure pg/wal and pg/base "
                            "exist there, owned by the image's postgres user")
    for node in B.nodes:
        assert (node, "recreate") in kinds(p) and (node, "configure") in kinds(p)
    configure = next(a for a in p.actions if a.kind is Kind.CONFIGURE and a.node == "primary")
    assert dict(configure.settings)["archive_mode"] == "on"


def test_one_new_node_is_reason_enough() -> None:
    obs = with_repository(B)
    obs = replace(obs, nodes={**obs.nodes, "replica2": replace(obs.nodes["replica2"], container=None)})
    first = plan(B, obs).actions[0]
    assert first.kind is Kind.PREPARE_REPOSITORY and first.reason.startswith("replica2 is to mount volume pg-backup")


def test_a_host_directory_is_prepared_too() -> None:
    t = topo(backup={"repository": {"path": "/srv/pg-backup"}})
    obs = converged(t)
    obs = replace(obs, nodes={**obs.nodes, "primary": replace(obs.nodes["primary"], container=None)})
    first = plan(t, obs).actions[0]
    assert first.kind is Kind.PREPARE_REPOSITORY and first.target == "/srv/pg-backup"
    assert "path /srv/pg-backup" in first.reason


def test_nothing_to_prepare_once_every_node_mounts_it() -> None:
    assert plan(B, with_repository(B)).empty
    assert plan(PLAIN, converged(PLAIN)).empty


def test_removing_the_backup_block_turns_archiving_off_and_unmounts() -> None:
    obs = with_repository(B)
    obs = replace(obs, nodes={n: replace(f, container=container(PLAIN, n, hash_=desired.node_hash(B, n)))
                              for n, f in obs.nodes.items()})
    p = plan(PLAIN, obs)
    assert ("", "prepare-repository") not in kinds(p)
    configure = next(a for a in p.actions if a.kind is Kind.CONFIGURE and a.node == "primary")
    assert dict(configure.settings) == {"archive_command": None, "archive_mode": None, "archive_timeout": None}
    assert ("primary", "recreate") in kinds(p)


@pytest.mark.parametrize("labels, refused", [
    (L.labels("other", "node", "primary"), "backup.repository: volume pg-backup is pgtopo's node volume of cluster "
                                           "other, not a repository; pgtopo never mounts it as one. Name a volume of "
                                           "its own in backup.repository, and run the command again"),
    (L.labels("other", "state"), "backup.repository: volume pg-backup is pgtopo's state volume of cluster other"),
    (L.labels("other", "repository"), None),  # one repository holds several clusters
    ({}, None),  # the user's own volume
])
def test_a_volume_pgtopo_made_for_something_else_is_never_a_repository(labels: dict[str, str],
                                                                         refused: str | None) -> None:
    p = plan(B, replace(with_repository(B), repository=VolumeFacts("pg-backup", labels)))
    if refused is None:
        assert not p.refusals
    else:
        assert len(p.refusals) == 1 and p.refusals[0].startswith(refused) and not p.actions, p.refusals


def test_a_repository_volume_named_after_the_cluster_is_no_node_s_and_never_pruned() -> None:
    raw = [{"Name": "pg-backup", "Labels": L.labels("pg", "repository")},
           {"Name": "pg-primary-data", "Labels": L.labels("pg", "node", "primary")}]
    parts = observe._classify(B, L.Names("pg"), [], raw)
    assert set(parts.volumes) == {"primary"} and not parts.foreign
    p = plan(B, with_repository(B), prune_volumes=True)
    assert not [a for a in p.actions if a.kind is Kind.REMOVE_VOLUME]


def test_destroy_with_volumes_keeps_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    removed: list[str] = []
    volumes = [{"Name": "pg-backup", "Labels": L.labels("pg", "repository")},
               {"Name": "pg-primary-data", "Labels": L.labels("pg", "node", "primary")},
               {"Name": "pg-pgtopo-state", "Labels": L.labels("pg", "state")}]

    @contextlib.contextmanager
    def lock(*args: object):
        yield type("Held", (), {"confirm": lambda self: None})()

    monkeypatch.setattr(destroy, "cluster_lock", lock)
    monkeypatch.setattr(docker_ops, "list_containers", lambda client, prefix: [])
    monkeypatch.setattr(docker_ops, "inspect_network", lambda client, name: None)
    monkeypatch.setattr(docker_ops, "list_volumes", lambda client, prefix: volumes)
    monkeypatch.setattr(docker_ops, "remove_volume", lambda client, name: removed.append(name))
    assert destroy.destroy(None, B, volumes=True) == ["volume pg-primary-data", "volume pg-pgtopo-state"]  # type: ignore[arg-type]
    assert removed == ["pg-primary-data", "pg-pgtopo-state"]


# -- the archiver in status --------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OK = ArchiverFacts(node="primary", archive_mode="on", archived_count=3, last_archived_wal="000000010000000000000003",
                   last_archived_time=NOW)
FAILING = replace(OK, failed_count=2, last_failed_wal="000000010000000000000004",
                  last_failed_time=NOW + timedelta(seconds=5))


@pytest.mark.parametrize(("facts", "failing"), [
    (OK, False),
    (FAILING, True),
    (replace(FAILING, last_archived_time=NOW + timedelta(seconds=6)), False),  # resumed since
    (replace(FAILING, last_archived_time=None, last_archived_wal=None), True),  # never succeeded
    (replace(FAILING, last_archived_time=FAILING.last_failed_time), False),
])
def test_archiving_fails_while_the_last_failure_is_newer_than_the_last_success(facts, failing: bool) -> None:
    assert facts.failing is failing
    assert (problem(facts) is not None) is failing


def test_status_shows_archiving_and_its_failure_as_a_problem() -> None:
    doc = documents.status_document(B, replace(with_repository(B), archiver=OK))
    assert doc.backup is not None and doc.backup.repository == "volume pg-backup" and doc.problems == ()
    assert doc.backup.archiving is not None and doc.backup.archiving.last_archived_wal == "000000010000000000000003"
    failing = documents.status_document(B, replace(with_repository(B), archiver=FAILING), plan(B, with_repository(B)))
    assert failing.in_sync is True and failing.backup is not None and failing.backup.archiving.failing  # type: ignore[union-attr]
    assert failing.problems == (
        "primary: WAL archiving fails: 000000010000000000000004 could not be archived (last attempt "
        "2026-12-01T12:00:05+00:00; 2 failures, last success 2026-12-01T12:00:00+00:00); WAL piles up in pg_wal "
        "until it succeeds: see the server's log for the archive command's error",)
    as_json = failing.to_json()
    assert '"last_failed_time": "2026-12-01T12:00:05Z"' in as_json
    buffer = io.StringIO()
    render.print_status(Console(file=buffer, width=300, color_system=None, highlight=False, soft_wrap=True), failing)
    text = buffer.getvalue()
    assert "backup native → volume pg-backup · archiving FAILS on primary: 000000010000000000000004" in text
    assert "problem: primary: WAL archiving fails" in text


def test_no_backup_in_status_without_a_backup_block() -> None:
    doc = documents.status_document(PLAIN, replace(converged(PLAIN), archiver=FAILING))
    assert doc.backup is None and doc.problems == ()


def test_a_primary_that_does_not_answer_or_does_not_archive_yet() -> None:
    assert render.backup_line(documents.backup_status(B, with_repository(B))) == (  # type: ignore[arg-type]
        "backup native → volume pg-backup · archiving: the primary does not answer")
    off = documents.backup_status(B, replace(with_repository(B), archiver=replace(OK, archive_mode="off")))
    assert render.backup_line(off).endswith("archiving off on primary (archive_mode off): apply turns it on")  # type: ignore[arg-type]


def test_a_saved_plan_made_before_the_repository_existed_is_stale_after() -> None:
    missing = converged(B)
    assert documents.fingerprint(missing) == documents.fingerprint(converged(B))
    assert documents.fingerprint(with_repository(B)) != documents.fingerprint(missing)
    assert "repository" not in documents.fingerprint(converged(PLAIN))[1]  # older saved plans keep their digest


def test_a_user_s_unlabelled_repository_volume_is_used_as_it_is() -> None:
    obs = replace(converged(B), repository=VolumeFacts("pg-backup", {}))
    p = plan(B, obs)
    assert p.empty and not obs.foreign


def test_the_repository_is_prepared_by_a_root_helper_of_the_file_s_image() -> None:
    from pgtopo.backup import repository

    job = repository.prepare_job(B, B.backup.repository)  # type: ignore[union-attr]
    assert job.user == "root" and job.image == B.image and job.network is None
    assert job.mounts == (Mount("pg-backup", layout.REPO_MOUNT),)
    assert job.labels[L.ROLE] == "helper" and job.labels[L.CLUSTER] == "pg" and job.name.startswith("pg-pgtopo-helper-")
    assert job.command[-1] == "/var/lib/pgtopo-backup/pg"  # a positional argument, never parsed by the shell


# -- the archive command, run by sh ----------------------------------------------------------------

def _archive(tmp_path, segment: bytes, path_dirs: str | None = None) -> tuple[int, list[str]]:
    """archive_command with its repository moved under tmp_path, run by sh as PostgreSQL runs it
    (%p and %f replaced); its exit status and what the wal directory then holds."""
    import os
    import subprocess

    src = tmp_path / "000000010000000000000001"
    src.write_bytes(segment)
    command = (layout.archive_command("pg").replace(layout.REPO_MOUNT, str(tmp_path / "repo"))
               .replace("%p", str(src)).replace("%f", src.name))
    env = dict(os.environ, PATH=path_dirs or os.environ["PATH"])
    code = subprocess.run(["/bin/sh", "-c", command], env=env, timeout=30).returncode
    wal = tmp_path / "repo" / "pg" / "wal"
    return code, sorted(p.name for p in wal.iterdir()) if wal.exists() else []


def test_the_archive_command_puts_a_segment_in_place_and_accepts_only_the_same_again(tmp_path) -> None:
    assert _archive(tmp_path, b"one") == (0, ["000000010000000000000001"])
    assert (tmp_path / "repo/pg/wal/000000010000000000000001").read_bytes() == b"one"
    assert _archive(tmp_path, b"one")[0] == 0  # a retry of what is there
    assert _archive(tmp_path, b"two")[0] != 0  # another cluster's (or an old primary's) segment
    assert (tmp_path / "repo/pg/wal/000000010000000000000001").read_bytes() == b"one"


def test_a_copy_that_fails_leaves_no_temporary_file(tmp_path) -> None:
    """What a full repository does to the copy (cp or sync fails), imitated by a sync that fails:
    the command fails and its temporary file is gone, so retries do not fill the repository."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cp", "mv", "mkdir", "rm", "cmp"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "sync").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sync").chmod(0o755)
    assert _archive(tmp_path, b"one", str(bin_dir)) == (1, [])


def test_backup_refuses_a_volume_pgtopo_made_for_something_else_before_writing_to_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pgtopo backup` prepares the repository itself (repository.ensure): it refuses another
    cluster's data volume before it creates, runs or writes anything."""
    from pgtopo.backup import repository
    from pgtopo.errors import SafetyRefusal

    touched: list[str] = []
    monkeypatch.setattr(docker_ops, "list_volumes", lambda client, name: [
        {"Name": "pg-backup", "Labels": L.labels("other", "node", "primary")}])
    monkeypatch.setattr(docker_ops, "create_volume", lambda *a, **k: touched.append("create"))
    monkeypatch.setattr(docker_ops, "run_job", lambda *a, **k: touched.append("job"))
    with pytest.raises(SafetyRefusal, match="volume pg-backup is pgtopo's node volume of cluster other"):
        repository.ensure(object(), B)  # type: ignore[arg-type]
    assert touched == []
    monkeypatch.setattr(docker_ops, "list_volumes", lambda client, name: [])
    repository.ensure(object(), B)  # type: ignore[arg-type]
    assert touched == ["create", "job"]


def test_the_archive_command_never_overwrites_a_segment_archived_already(tmp_path) -> None:
    """Run as PostgreSQL runs it (sh -c, %p and %f replaced), against a directory standing in for
    the repository: a segment is archived; the same again is accepted; other contents under that
    name (an old primary that went on writing) fail and leave the archived one as it was."""
    import subprocess

    command = layout.archive_command("pg").replace(layout.REPO_MOUNT, str(tmp_path))
    segment, archived = tmp_path / "000000010000000000000003", tmp_path / "pg" / "wal" / "000000010000000000000003"

    def archive(content: bytes) -> int:
        segment.write_bytes(content)
        line = command.replace("%p", str(segment)).replace("%f", segment.name)
        return subprocess.run(["sh", "-c", line], capture_output=True).returncode

    assert archive(b"ours") == 0 and archived.read_bytes() == b"ours"
    assert archive(b"ours") == 0
    assert archive(b"theirs") != 0 and archived.read_bytes() == b"ours"
    assert sorted(p.name for p in archived.parent.iterdir()) == [segment.name]  # no temporary file left
