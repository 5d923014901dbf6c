"""A cluster made from another's backup (`bootstrap.restore`): the plan (restore instead of initdb,
refused over data, quiet once restored), the choice of the backup, the restore's job and the
state volume's record of it.  Plain values; no Docker, no Postgres."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pgtopo import state
from pgtopo.actions import Kind
from pgtopo.backup import layout, restore, restore_plan
from pgtopo.backup.restore_plan import BackupInfo, NoBackup, choose
from pgtopo.backup.spec import Restore
from pgtopo.observed import DataFacts, NodeFacts, Observed
from pgtopo.plan import plan
from pgtopo.spec import Topology
from pgtopo.state import ClusterState
from tests.unit.test_job_scripts import shellcheck
from tests.unit.test_plan import SYSID, converged, kinds, topo, volume

RESTORE = {"restore": {"from": {"cluster": "pg", "repository": {"volume": "pg-backup"}},
                       "target": {"time": "2026-11-26T10:00:00Z"}, "backup": "20261201T030000Z"}}


def restored(**bootstrap: object) -> Topology:
    return topo(cluster="pg-restored", network="pg-restored_stream", bootstrap={**RESTORE, **bootstrap})


T = restored()


def test_an_empty_cluster_is_restored_instead_of_initdb_and_its_replicas_cloned_after() -> None:
    p = plan(T, Observed(cluster="pg-restored"))
    assert not p.refusals
    assert kinds(p) == [("", "create-network"), ("", "create-state"),
                        ("primary", "create-volume"), ("primary", "restore"), ("primary", "create-role"),
                        ("replica", "create-volume"), ("replica", "clone"),
                        ("replica2", "create-volume"), ("replica2", "clone")]
    action = next(a for a in p.actions if a.kind is Kind.RESTORE)
    assert "restore from pg's backup 20261201T030000Z (volume pg-backup, read-only) to 2026-11-26 10:00:00+00, " \
           "then promote" in action.reason
    assert "pg itself is not touched" in action.reason
    assert not action.destructive and action.kind.symbol == "+"
    waves = {a.node: a.wave for a in p.actions if a.kind in (Kind.RESTORE, Kind.CLONE)}
    assert waves["primary"] < waves["replica"] < waves["replica2"]
    state_wave = next(a.wave for a in p.actions if a.kind is Kind.CREATE_STATE)
    assert state_wave < waves["primary"]  # the passwords the restore sets exist before it


def test_without_bootstrap_the_empty_cluster_is_initdb_as_always() -> None:
    p = plan(topo(), Observed(cluster="pg"))
    assert ("primary", "init") in kinds(p) and not any(a.kind is Kind.RESTORE for a in p.actions)


@pytest.mark.parametrize("target, words", [
    ({"lsn": "0/3000060"}, "to LSN 0/3000060"),
    ({"name": "before-migration"}, "to restore point 'before-migration'"),
    ({"immediate": True}, "to the end of the backup"),
    (None, "to the end of its archived WAL"),
])
def test_the_reason_names_the_target(target: dict[str, object] | None, words: str) -> None:
    inner = {k: v for k, v in RESTORE["restore"].items() if k != "target"} | ({"target": target} if target else {})
    inner["backup"] = "latest"
    t = topo(cluster="pg-restored", network="pg-restored_stream", bootstrap={"restore": inner})
    action = next(a for a in plan(t, Observed(cluster="pg-restored")).actions if a.kind is Kind.RESTORE)
    assert "pg's latest backup" in action.reason and words in action.reason


def with_data(t: Topology, **kw: object) -> Observed:
    return replace(converged(t), **kw)


@pytest.mark.parametrize("obs", [
    pytest.param(with_data(T), id="a running cluster"),
    pytest.param(Observed(cluster="pg-restored", credentials=True, nodes={"primary": NodeFacts(
        "primary", volume=volume(T, "primary"), data=DataFacts(True, SYSID))}), id="a volume with data, no container"),
    pytest.param(Observed(cluster="pg-restored", credentials=True, system_identifier=SYSID),
                 id="only the state volume's identity"),
])
def test_a_restore_over_data_is_refused_before_anything_changes(obs: Observed) -> None:
    p = plan(T, obs)
    assert not p.actions
    [refusal] = [r for r in p.refusals if r.startswith("bootstrap.restore")]
    assert "already exists" in refusal and "Remove bootstrap:" in refusal and "new cluster name" in refusal


def test_a_cluster_the_state_records_as_restored_keeps_its_block_quietly() -> None:
    p = plan(T, with_data(T, restored_from=restore_plan.restored_marker("pg", "20261201T030000Z")))
    assert not p.refusals and not p.actions
    assert any("restored from pg's backup 20261201T030000Z" in n for n in p.notes)


def test_a_restore_that_left_no_data_is_planned_again() -> None:
    """Killed before its rename (the marker written, no data): the next apply restores again."""
    obs = Observed(cluster="pg-restored", credentials=True, restored_from="pg 20261201T030000Z",
                   nodes={"primary": NodeFacts("primary", volume=volume(T, "primary"), data=DataFacts(False))})
    assert ("primary", "restore") in kinds(plan(T, obs))


def info(label: str, stop: str | None) -> BackupInfo:
    return BackupInfo(label, datetime.fromisoformat(stop) if stop else None)


BACKUPS = [info("20261124T030000Z", "2026-11-24T03:05:00+00:00"), info("20261126T030000Z", "2026-11-26T03:05:00+00:00"),
           info("20261127T030000Z", "2026-11-27T03:05:00+00:00")]


def spec(backup: str = "latest", target: dict[str, object] | None = None) -> Restore:
    doc: dict[str, object] = {"from": {"cluster": "pg", "repository": {"volume": "pg-backup"}}, "backup": backup}
    if target is not None:
        doc["target"] = target
    return Restore.model_validate(doc)


def test_latest_is_the_newest_backup_that_ended_before_a_time_target() -> None:
    assert choose(BACKUPS, spec(target={"time": "2026-11-26T10:00:00Z"})).label == "20261126T030000Z"
    assert choose(BACKUPS, spec(target={"time": "2026-11-26T03:04:00Z"})).label == "20261124T030000Z"


def test_latest_is_simply_the_newest_for_other_targets() -> None:
    assert choose(list(reversed(BACKUPS)), spec()).label == "20261127T030000Z"
    assert choose(BACKUPS, spec(target={"lsn": "0/3000000"})).label == "20261127T030000Z"


def test_a_label_is_that_backup() -> None:
    assert choose(BACKUPS, spec("20261124T030000Z", {"time": "2026-11-26T10:00:00Z"})).label == "20261124T030000Z"


@pytest.mark.parametrize("backups, restore_, words", [
    ([], spec(), "holds no complete backup of cluster pg"),
    (BACKUPS, spec("20261201T030000Z"), "no complete backup 20261201T030000Z"),
    (BACKUPS, spec(target={"time": "2026-11-20T00:00:00Z"}), "ended before 2026-11-20 00:00:00+00"),
])
def test_no_fitting_backup_is_a_clear_error(backups: list[BackupInfo], restore_: Restore, words: str) -> None:
    with pytest.raises(NoBackup, match=re.escape(words)):
        choose(backups, restore_)


def test_the_listing_job_output_is_read_back() -> None:
    output = ("pgtopo-manifest 20261124T030000Z\n{\"label\": \"20261124T030000Z\",\n \"stop_time\": "
              "\"2026-11-24T03:05:00Z\", \"timeline\": 1, \"system_identifier\": \"7000000000000000001\"}\n"
              "pgtopo-manifest 20261126T030000Z\nnot json\n")
    [only] = restore.parse_listing(output)
    assert only == BackupInfo("20261124T030000Z", datetime(2026, 11, 24, 3, 5, tzinfo=UTC), 1, SYSID)


def test_the_restore_job_mounts_the_source_read_only_and_has_no_network() -> None:
    r = T.bootstrap.restore if T.bootstrap else None
    assert r is not None
    job = restore.restore_job(T, "primary", r, "20261201T030000Z")
    assert job.network is None
    [source] = [m for m in job.mounts if m.target == layout.SOURCE_MOUNT]
    assert source.read_only and source.volume == "pg-backup"
    assert f"{layout.SOURCE_MOUNT}/pg/base/20261201T030000Z" in job.command
    conf = restore.recovery_conf(r)
    for line in ("recovery_target_action = 'promote'", "recovery_target_timeline = 'latest'", "archive_mode = 'off'",
                 f"restore_command = 'cp {layout.SOURCE_MOUNT}/pg/wal/%f %p'", "recovery_target_time = '2026-11-26"):
        assert line in conf
    assert all(m.read_only for m in restore.list_job(T, r).mounts)


@pytest.mark.parametrize("name", ["LIST_SCRIPT", "RESTORE_SCRIPT"])
def test_the_restore_scripts_are_posix_sh(name: str) -> None:
    found = shellcheck(getattr(restore, name))
    assert found.returncode == 0, f"{name}:\n{found.stdout}"


def test_the_state_volume_records_a_restore() -> None:
    value = ClusterState("su", "rep", SYSID, restored_from="pg 20261201T030000Z")
    assert state.decode(state.encode(value, "r")) == value
    assert state.RESTORED_FILE not in state.encode(ClusterState("su", "rep"), "r")
