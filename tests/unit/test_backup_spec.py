"""The file's `backup:` and `bootstrap:` blocks as the loader reads them: one exact
`FILE:LINE:COL: message` per problem, keys named as the file writes them (`from`, never `from_`),
and the recovery settings each restore target becomes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pgtopo import spec
from pgtopo.backup import spec as backup_spec
from pgtopo.backup.spec import (
    ImmediateTarget,
    LsnTarget,
    NameTarget,
    PathRepository,
    TimeTarget,
    VolumeRepository,
    WindowRetention,
    target_settings,
)
from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology

# Six lines; a case's block starts on line 7.
HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n  primary: {}\n"
REPO = "  repository: {volume: pg-backup}\n"
SOURCE = "    from: {cluster: pg-old, repository: {volume: pg-backup}}\n"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case reads the same moment: 2026-12-01T12:00:00Z."""
    monkeypatch.setattr(backup_spec, "utc_now", lambda: NOW)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(HEAD + text, "t.yaml", {})
    return info.value.problems


def restore_with(line: str) -> str:
    """A `bootstrap.restore` whose fourth line (line 10) is `line`."""
    return "bootstrap:\n  restore:\n" + SOURCE + line


# --- backup: ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block, expected",
    [
        pytest.param("backup:\n" + REPO + "  shedule: '0 3 * * *'\n",
                     "9:3: backup.shedule: unknown key 'shedule' (did you mean 'schedule'?)", id="unknown-key"),
        pytest.param("backup:\n" + REPO + "  frm: primary\n",
                     "9:3: backup.frm: unknown key 'frm' (did you mean 'from'?)", id="unknown-key-near-from"),
        pytest.param("backup:\n" + REPO + "  from_: primary\n",
                     "9:3: backup.from_: unknown key 'from_' (did you mean 'from'?)", id="from_-is-not-a-key"),
        pytest.param("backup:\n" + REPO + "  from: standby\n",
                     "9:9: backup.from: must be 'prefer-standby' or 'primary' (got 'standby')", id="from"),
        pytest.param("backup:\n" + REPO + "  schedule: '61 * * * *'\n",
                     "9:13: backup.schedule: must be a cron expression of five fields, e.g. \"0 3 * * *\" "
                     "(Bad minute)", id="cron-minute"),
        pytest.param("backup:\n" + REPO + "  schedule: '0 0 3 * * *'\n",
                     "9:13: backup.schedule: must be a cron expression of five fields, e.g. \"0 3 * * *\" "
                     "(Wrong number of fields)", id="cron-six-fields"),
        pytest.param("backup:\n" + REPO + "  schedule: 3\n",
                     "9:13: backup.schedule: must be a string (got 3)", id="cron-not-a-string"),
        pytest.param("backup:\n" + REPO + "  retention: {window: 2w}\n",
                     "9:23: backup.retention.window: must be a number of hours or days, e.g. 36h or 14d "
                     "(got '2w')", id="window"),
        pytest.param("backup:\n" + REPO + "  retention: {full: 0}\n",
                     "9:21: backup.retention.full: must be >= 1 (got 0)", id="full-zero"),
        pytest.param("backup:\n" + REPO + "  retention: {full: 2, window: 3d}\n",
                     "9:14: backup.retention: must be {full: ...} or {window: ...} (got a mapping with keys full, "
                     "window)", id="retention-both"),
        pytest.param("backup:\n  method: barman\n" + REPO,
                     "8:11: backup.method: must be 'native' or 'pgbackrest' (got 'barman')", id="method"),
        pytest.param("backup:\n  repository: {bucket: pg-backup}\n",
                     "8:15: backup.repository: must be {volume: ...} or {path: ...} (got a mapping with keys "
                     "bucket)", id="repository-neither"),
        pytest.param("backup:\n  repository: pg-backup\n",
                     "8:15: backup.repository: must be {volume: ...} or {path: ...} (got 'pg-backup')",
                     id="repository-a-string"),
        pytest.param("backup:\n  repository: {volume: pg-backup, path: /srv/pg-backup}\n",
                     "8:15: backup.repository: must be {volume: ...} or {path: ...} (got a mapping with keys "
                     "volume, path)", id="repository-both"),
        pytest.param("backup:\n  repository: {path: srv/pg-backup}\n",
                     "8:22: backup.repository.path: must be an absolute path (starting with /) without control "
                     "characters (got 'srv/pg-backup')", id="relative-path"),
        pytest.param("backup:\n  repository: {volume: -pg}\n",
                     "8:24: backup.repository.volume: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ (got '-pg')",
                     id="volume-name"),
        pytest.param("backup:\n  repository: {volume: pg-primary-data}\n",
                     "8:16: backup.repository.volume: volume 'pg-primary-data' is node primary's data volume: a "
                     "repository needs a volume of its own (e.g. pg-backup)", id="a-node-s-data-volume"),
        pytest.param("backup:\n  repository: {volume: pg-pgtopo-state}\n",
                     "8:16: backup.repository.volume: volume 'pg-pgtopo-state' is the state volume: a repository "
                     "needs a volume of its own (e.g. pg-backup)", id="the-state-volume"),
        pytest.param("backup:\n  schedule: '0 3 * * *'\n",
                     "7:1: backup.repository: missing required key", id="no-repository"),
    ],
)
def test_a_wrong_backup_block_is_named_and_pointed_at(block: str, expected: str) -> None:
    assert problems(block) == [f"t.yaml:{expected}"]


def test_a_backup_block_reads_its_keys_by_their_file_names() -> None:
    topo = parse_topology(HEAD + "backup:\n  repository: {path: /srv/pg-backup}\n  from: primary\n"
                          "  retention: {window: 36h}\n  schedule: '0 3 * * *'\n", "t.yaml", {})
    assert topo.backup is not None
    assert (topo.backup.method, topo.backup.repository, topo.backup.from_) == (
        "native", PathRepository(path="/srv/pg-backup"), "primary")
    assert topo.backup.retention == WindowRetention(window="36h")
    assert backup_spec.window_delta("36h") == timedelta(hours=36)
    assert backup_spec.window_delta("14d") == timedelta(days=14)


def test_a_backup_block_has_defaults() -> None:
    topo = parse_topology(HEAD + "backup:\n" + REPO, "t.yaml", {})
    assert topo.backup is not None
    assert (topo.backup.method, topo.backup.from_, topo.backup.retention, topo.backup.schedule) == (
        "native", "prefer-standby", backup_spec.FullRetention(full=2), None)
    assert topo.bootstrap is None


# --- bootstrap.restore: ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block, expected",
    [
        pytest.param(restore_with("    target: {time: '2026-12-01T12:00:01Z'}\n"),
                     "10:20: bootstrap.restore.target.time: is in the future (2026-12-01T12:00:01+00:00): a restore "
                     "can only reach WAL written already", id="time-in-the-future"),
        pytest.param(restore_with("    target: {time: '2026-11-26T10:00:00'}\n"),
                     "10:20: bootstrap.restore.target.time: must name its time zone, e.g. 2026-11-26T10:00:00Z or "
                     "2026-11-26T12:00:00+02:00 (got '2026-11-26T10:00:00')", id="time-without-zone"),
        pytest.param(restore_with("    target: {time: 2026-11-26 10:00:00}\n"),
                     "10:20: bootstrap.restore.target.time: must name its time zone, e.g. 2026-11-26T10:00:00Z or "
                     "2026-11-26T12:00:00+02:00 (got '2026-11-26T10:00:00')", id="yaml-timestamp-without-zone"),
        pytest.param(restore_with("    target: {time: yesterday}\n"),
                     "10:20: bootstrap.restore.target.time: must be a date and time, e.g. 2026-11-26T10:00:00Z "
                     "(got 'yesterday')", id="time-not-a-time"),
        pytest.param(restore_with("    target: {lsn: 0/XYZ}\n"),
                     "10:19: bootstrap.restore.target.lsn: must be an LSN as PostgreSQL writes it, e.g. 0/3000028 "
                     "(got '0/XYZ')", id="lsn"),
        pytest.param(restore_with("    target: {immediate: false}\n"),
                     "10:25: bootstrap.restore.target.immediate: must be true (got false)", id="immediate-false"),
        pytest.param(restore_with("    target: {lsn: 0/3000028, name: before-drop}\n"),
                     "10:13: bootstrap.restore.target: must be {time: ...}, {lsn: ...}, {name: ...} or "
                     "{immediate: ...} (got a mapping with keys lsn, name)", id="two-targets"),
        pytest.param(restore_with("    backup: foo\n"),
                     "10:13: bootstrap.restore.backup: must be latest or a label as `pgtopo backups` lists it: "
                     "20261201T030000Z (native) or 20261201-030000F (pgBackRest; an incremental's "
                     "20261201-030000F_20261202-030000I) (got 'foo')",
                     id="backup-label"),
        pytest.param("bootstrap:\n  restore:\n    from: {cluster: Pg-old, repository: {volume: pg-backup}}\n",
                     "9:21: bootstrap.restore.from.cluster: must match ^[a-z][a-z0-9-]{0,29}$ (got 'Pg-old')",
                     id="from-cluster"),
        pytest.param("bootstrap:\n  restore:\n    target: {immediate: true}\n",
                     "8:3: bootstrap.restore.from: missing required key", id="from-missing"),
        pytest.param("bootstrap:\n  restore: {}\n",
                     "8:3: bootstrap.restore.from: missing required key", id="restore-empty"),
    ],
)
def test_a_wrong_restore_is_named_and_pointed_at(block: str, expected: str) -> None:
    assert problems(block) == [f"t.yaml:{expected}"]


def test_bootstrap_knows_only_restore() -> None:
    assert problems("bootstrap: {clone: {}}\n") == [
        "t.yaml:7:1: bootstrap.restore: missing required key",
        "t.yaml:7:13: bootstrap.clone: unknown key 'clone' (expected one of: restore)",
    ]


def test_a_misspelt_key_of_the_restore_source_is_told_the_keys_by_their_file_names() -> None:
    assert problems("bootstrap:\n  restore:\n    from: {cluster: pg-old, repo: {volume: pg-backup}}\n") == [
        "t.yaml:9:5: bootstrap.restore.from.repository: missing required key",
        "t.yaml:9:29: bootstrap.restore.from.repo: unknown key 'repo' (expected one of: cluster, repository)",
    ]


def test_from_under_its_python_name_is_refused_and_the_real_key_suggested() -> None:
    assert problems("bootstrap:\n  restore:\n    from_: {cluster: pg-old, repository: {volume: pg-backup}}\n") == [
        "t.yaml:8:3: bootstrap.restore.from: missing required key",
        "t.yaml:9:5: bootstrap.restore.from_: unknown key 'from_' (did you mean 'from'?)",
    ]


def test_a_target_up_to_now_is_accepted_and_one_a_microsecond_later_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    text = HEAD + restore_with("    target: {time: '2026-12-01T14:00:00+02:00'}\n")  # 12:00 UTC: now
    topo = parse_topology(text, "t.yaml", {})
    assert topo.bootstrap is not None and topo.bootstrap.restore.target == TimeTarget(time=NOW)
    monkeypatch.setattr(backup_spec, "utc_now", lambda: NOW - timedelta(microseconds=1))
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    assert info.value.problems == [
        "t.yaml:10:20: bootstrap.restore.target.time: is in the future (2026-12-01T14:00:00+02:00): a restore can "
        "only reach WAL written already"]


def test_a_restore_reads_its_keys_by_their_file_names() -> None:
    text = HEAD + "bootstrap:\n  restore:\n    from: {cluster: pg-old, repository: {path: /srv/b}}\n"
    topo = parse_topology(text, "t.yaml", {})
    assert topo.bootstrap is not None
    restore = topo.bootstrap.restore
    assert (restore.from_.cluster, restore.from_.repository, restore.target, restore.backup) == (
        "pg-old", PathRepository(path="/srv/b"), None, "latest")


def test_validate_says_each_problem_once_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD + "backup:\n  repository: {path: relative}\n  schedule: '61 * * * *'\n")
    proc = subprocess.run([sys.executable, "-m", "pgtopo", "validate", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"{path}:8:22: backup.repository.path: must be an absolute path (starting with /) without control "
        "characters (got 'relative')",
        f"{path}:9:13: backup.schedule: must be a cron expression of five fields, e.g. \"0 3 * * *\" (Bad minute)",
    ]


# --- the model's own facts ------------------------------------------------------------------------


def test_a_restore_source_is_named_as_clusters_are() -> None:
    assert backup_spec.CLUSTER_PATTERN == spec.NAME_PATTERN


@pytest.mark.parametrize(
    "target, settings",
    [
        pytest.param(None, {}, id="none: the end of the archive"),
        pytest.param(TimeTarget(time=datetime(2026, 11, 26, 12, 0, 0, 250, tzinfo=UTC)),
                     {"recovery_target_time": "2026-11-26 12:00:00.000250+00"}, id="time"),
        pytest.param(TimeTarget(time=datetime.fromisoformat("2026-11-26T12:00:00+02:00")),
                     {"recovery_target_time": "2026-11-26 10:00:00.000000+00"}, id="time-in-utc"),
        pytest.param(LsnTarget(lsn="0/3000a28"), {"recovery_target_lsn": "0/3000A28"}, id="lsn"),
        pytest.param(NameTarget(name="before drop"), {"recovery_target_name": "before drop"}, id="name"),
        pytest.param(ImmediateTarget(immediate=True), {"recovery_target": "immediate"}, id="immediate"),
    ],
)
def test_each_target_becomes_its_recovery_setting(target: backup_spec.Target | None,
                                                  settings: dict[str, str]) -> None:
    assert target_settings(target) == settings


def test_a_repository_reads_as_its_kind_and_name() -> None:
    assert backup_spec.repository_text(VolumeRepository(volume="pg-backup")) == "volume pg-backup"
    assert backup_spec.repository_text(PathRepository(path="/srv/b")) == "path /srv/b"
