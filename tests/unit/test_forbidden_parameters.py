"""Settings the file may not set: they break pgtopo's guarantees or run commands beside the
credentials.  Each is a `FILE:LINE:COL` problem that says why, and `pgtopo validate` exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import load_topology
from pgtopo.spec import parameter_problem

HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n  primary: {}\n"

FORBIDDEN = [
    "recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid",
    "recovery_target_name", "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action",
    "promote_trigger_file", "hot_standby", "archive_command", "archive_library", "restore_command",
    "ssl_passphrase_command", "archive_cleanup_command", "recovery_end_command",
]


@pytest.mark.parametrize("name", FORBIDDEN)
def test_forbidden_parameter_is_a_positioned_problem(tmp_path: Path, name: str) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD + f"parameters:\n  work_mem: 4MB\n  {name}: 'x'\n")
    with pytest.raises(SpecError) as info:
        load_topology(path, {})
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:9:3: parameters.{name}: parameter {name!r} cannot be set: it "), problem
    assert "remove it" in problem


def test_forbidden_in_a_node_s_parameters(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD + "  replica: {parameters: {hot_standby: false}}\n")
    with pytest.raises(SpecError) as info:
        load_topology(path, {})
    assert info.value.problems == [
        f"{path}:7:26: nodes.replica.parameters.hot_standby: parameter 'hot_standby' cannot be set: it must stay "
        "on: pgtopo reads every standby's state through SQL before it decides anything; remove it"]


@pytest.mark.parametrize("name", ["work_mem", "archive_timeout", "wal_level", "hot_standby_feedback",
                                  "restore_point"])
def test_neighbours_are_allowed(name: str) -> None:
    assert parameter_problem(name) is None


@pytest.mark.parametrize(
    "name, tail",
    [
        ("archive_mode", "pgtopo sets it from the file's backup: block (docs/backup.md): use that"),
        ("archive_command", "pgtopo archives WAL and restores from the file's backup: and bootstrap: blocks "
                            "(docs/backup.md): remove it"),
        ("restore_command", "pgtopo archives WAL and restores from the file's backup: and bootstrap: blocks "
                            "(docs/backup.md): remove it"),
        ("archive_library", "pgtopo archives WAL from the file's backup: block (docs/backup.md): remove it"),
        ("recovery_target_time", "remove it (to restore a new cluster to a point in time: the file's bootstrap: "
                                 "block, docs/backup.md)"),
    ],
)
def test_archiving_and_recovery_settings_name_the_blocks_that_say_them(name: str, tail: str) -> None:
    problem = parameter_problem(name)
    assert problem is not None and problem.endswith(" " + tail), problem


def test_validate_exits_2_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD + "parameters:\n  archive_command: 'cp %p /tmp/%f'\n")
    proc = subprocess.run([sys.executable, "-m", "pgtopo", "validate", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc
    assert f"{path}:8:3: parameters.archive_command: parameter 'archive_command' cannot be set" in proc.stderr
    assert "Traceback" not in proc.stderr
