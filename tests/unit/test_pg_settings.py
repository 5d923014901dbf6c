"""Bad settings stop at the door: names and values checked against the pg_settings catalog of the
image's major, before anything runs (validate, diff and apply all load the file the same way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgtopo import pg_settings
from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology

HEAD = "version: 1\ncluster: pg\nimage: {image}\nprimary: main\nnodes:\n  main: {{}}\n  r1: {{}}\n"


@pytest.mark.parametrize("major", [15, 17])
def test_each_supported_major_has_a_catalog(major: int) -> None:
    known = pg_settings.catalog(major)
    assert known is not None and {"max_connections", "shared_buffers", "wal_level"} <= set(known)
    assert known["max_connections"].context == "postmaster"


@pytest.mark.parametrize("image, major", [
    ("postgres:17", 17), ("postgres:17.2-bookworm", 17), ("pgtopo-local/postgres:15", 15),
    ("registry.example:5000/team/postgres:16", 16), ("postgres", None), ("postgres:latest", None),
    ("localhost:5000/postgres", None), ("postgres@sha256:" + "a" * 64, None), ("postgres:9.6", None),
])
def test_the_major_is_read_from_the_tag(image: str, major: int | None) -> None:
    assert pg_settings.major_of_image(image) == major


@pytest.mark.parametrize("name, value", [
    ("max_connections", 50), ("shared_buffers", "900GB"), ("shared_buffers", "128kB"), ("work_mem", "4MB"),
    ("wal_level", "replica"), ("wal_level", "hot_standby"), ("synchronous_commit", True),
    ("synchronous_commit", "yes"), ("hot_standby", "on"), ("hot_standby", "tr"), ("fsync", False),
    ("checkpoint_completion_target", 0.9), ("log_min_duration_statement", -1),
    ("log_min_duration_statement", "250ms"), ("statement_timeout", "1h"), ("wal_keep_size", "1GB"),
    ("vacuum_cost_delay", "2ms"), ("max_connections", 1.6), ("shared_preload_libraries", "pg_stat_statements"),
    ("pg_stat_statements.max", 10000), ("myapp.tenant", "x"),
])
def test_what_the_server_accepts_is_accepted(name: str, value: bool | int | float | str) -> None:
    assert pg_settings.problem(name, value, 17) is None


@pytest.mark.parametrize("name, value, says", [
    ("max_conections", 50, "'max_conections' is not a setting of PostgreSQL 17: did you mean 'max_connections'?"),
    ("sharde_buffers", "1GB", "did you mean 'shared_buffers'?"),
    ("xyzzy", 1, "'xyzzy' is not a setting of PostgreSQL 17 (a custom setting needs a dot, ext.name)"),
    ("shared_buffers", "8kB", "'shared_buffers' = '8kB' is out of range: 16 to 1073741823 (in units of 8kB)"),
    ("shared_buffers", "9000TB", "out of range"),
    ("work_mem", "4mb", "invalid unit 'mb' in '4mb' with a unit of B, kB, MB, GB, TB"),
    ("max_connections", "lots", "'max_connections' takes a number, not 'lots'"),
    ("max_connections", 0, "out of range: 1 to 262143"),
    ("max_connections", True, "takes a number"),
    ("checkpoint_completion_target", 2, "out of range: 0 to 1"),
    ("statement_timeout", "5 parsecs", "invalid unit 'parsecs'"),
    ("wal_level", "archiv", "takes one of minimal, replica, logical, not 'archiv'"),
    ("hot_standby", "o", "takes on or off, not 'o'"),
])
def test_what_the_server_refuses_is_refused(name: str, value: bool | int | float | str, says: str) -> None:
    why = pg_settings.problem(name, value, 17)
    assert why is not None and says in why


def test_a_setting_of_another_major_is_refused_for_this_one() -> None:
    # summarize_wal appeared in PostgreSQL 17
    assert pg_settings.problem("summarize_wal", True, 17) is None
    assert "not a setting of PostgreSQL 15" in (pg_settings.problem("summarize_wal", True, 15) or "")


@pytest.mark.parametrize("major", [None, 19, 99])
def test_no_catalog_no_check(major: int | None) -> None:
    """A major pgtopo has no catalog for is not checked: refusing a setting the server knows would
    be worse than no check."""
    assert pg_settings.problem("max_conections", "lots", major) is None


def test_the_file_says_where() -> None:
    text = ("version: 1\ncluster: pg\nimage: postgres:17\nprimary: main\nparameters:\n  max_conections: 50\n"
            "nodes:\n  main: {}\n  r1:\n    parameters: {work_mem: 4mb}\n")
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    assert info.value.problems == [
        "t.yaml:6:3: parameters.max_conections: parameter 'max_conections' is not a setting of PostgreSQL 17: "
        "did you mean 'max_connections'?",
        "t.yaml:10:18: nodes.r1.parameters.work_mem: parameter 'work_mem': invalid unit 'mb' in '4mb' "
        "with a unit of B, kB, MB, GB, TB",
    ]


def test_an_image_without_a_major_in_its_tag_is_not_checked() -> None:
    topo = parse_topology(HEAD.format(image="example.com/pg:custom") + "parameters: {max_conections: 50}\n", "t.yaml", {})
    assert topo.parameters == {"max_conections": 50}


def test_validate_refuses_a_typo_with_exit_2_and_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD.format(image="postgres:17") + "parameters:\n  max_conections: 50\n")
    done = subprocess.run([sys.executable, "-m", "pgtopo", "validate", str(path)], capture_output=True, text=True,
                          env={"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 2, done
    assert f"{path}:" in done.stderr and "did you mean 'max_connections'?" in done.stderr
    assert "Traceback" not in done.stderr
