"""The topology model's cross-field checks and value validators, on plain files: each problem at
its key (FILE:LINE:COL), in the words a user reads; and the values that are just inside a limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtopo.spec import duration_text, valid_until_text

from .test_loader import HEAD, problems

POOLER = "pooler: {image: pgtopo-local/pgbouncer:1, port: 6432, read_only: {port: 6433}}\n"
ONE_NODE = HEAD + "  primary: {}\n"


# --- the pooler's names and ports ---------------------------------------------------------------

def test_a_node_named_pooler_ro_is_refused_when_the_pooler_has_a_read_only_endpoint(tmp_path: Path) -> None:
    text = HEAD + "  primary: {}\n  pooler-ro: {}\n"
    assert problems(tmp_path, text + POOLER) == [
        "7:3: nodes.pooler-ro: node name 'pooler-ro' is taken by the pooler's read-only container (pg-pooler-ro): "
        "rename the node"]


def test_a_node_port_taken_by_the_read_only_endpoint_is_refused_at_that_port(tmp_path: Path) -> None:
    text = HEAD + "  primary: {}\n  replica: {port: 6433}\n"
    assert problems(tmp_path, text + POOLER) == [
        "8:67: pooler.read_only.port: host port 6433 is also used by node 'replica'"]


def test_a_read_only_endpoint_on_the_read_write_port_is_refused(tmp_path: Path) -> None:
    text = ONE_NODE + "pooler: {image: pgtopo-local/pgbouncer:1, port: 6432, read_only: {port: 6432}}\n"
    assert problems(tmp_path, text) == [
        "7:67: pooler.read_only.port: host port 6432 is also the read-write endpoint's (pooler.port)"]


# --- reserved role names --------------------------------------------------------------------------

def test_a_replication_user_named_pgtopo_something_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, ONE_NODE + "auth: {replication_user: pgtopo_stream}\n")
    assert problem.startswith("7:26: auth.replication_user: ")
    assert problem.endswith("'pgtopo_stream' cannot be the replication user (reserved: postgres, public, none, all, "
                            "pg_*, pgtopo*)")


def test_a_role_of_the_file_named_pgtopo_something_is_no_group_either(tmp_path: Path) -> None:
    text = ONE_NODE + "roles:\n  pgtopo_admin: {}\n  app: {in_roles: [pgtopo_admin]}\n"
    assert problems(tmp_path, text) == [
        "8:3: roles.pgtopo_admin: role name 'pgtopo_admin' is reserved (postgres, public, none, all, current_role, "
        "current_user, session_user, the replication user repuser, pg_*, pgtopo*)",
        "9:20: roles.app.in_roles.0: 'pgtopo_admin' is neither a predefined pg_* role nor a role of the file"]


def test_two_roles_members_of_each_other_are_a_cycle(tmp_path: Path) -> None:
    text = ONE_NODE + "roles:\n  b: {in_roles: [a]}\n  a: {in_roles: [b]}\n"
    assert problems(tmp_path, text) == ["9:7: roles.a.in_roles: membership cycle: a -> b -> a"]


# --- synchronous: ----------------------------------------------------------------------------------

def test_a_primary_that_is_not_a_node_is_the_only_problem_synchronous_reports(tmp_path: Path) -> None:
    text = HEAD.replace("primary: primary", "primary: ghost") + "  a: {}\n  b: {}\nsynchronous: {number: 3}\n"
    assert problems(tmp_path, text) == ["4:1: primary: primary 'ghost' is not one of the nodes (a, b)"]


def test_a_number_above_no_eligible_standby_says_none(tmp_path: Path) -> None:
    assert problems(tmp_path, ONE_NODE + "synchronous: {}\n") == [
        "7:1: synchronous.number: number is 1 but only 0 standbys may be synchronous (none: replicas of the primary "
        "without sync: false or a delay); lower it or add replicas"]


def test_a_number_above_two_eligible_standbys_names_both(tmp_path: Path) -> None:
    text = ONE_NODE + "  replica: {}\n  replica2: {}\nsynchronous: {number: 3}\n"
    assert problems(tmp_path, text) == [
        "9:15: synchronous.number: number is 3 but only 2 standbys may be synchronous (replica, replica2: replicas "
        "of the primary without sync: false or a delay); lower it or add replicas"]


# --- values just inside a limit ---------------------------------------------------------------------

def test_the_largest_delay_postgresql_holds_is_accepted() -> None:
    assert duration_text("2147483647ms") == "2147483647ms"
    with pytest.raises(ValueError, match="must be at most 2147483647 ms, about 24 days"):
        duration_text("2147483648ms")


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is not UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(("value", "stored"), [
    ("2030-01-01T00:00:00", "2030-01-01T00:00:00+00:00"),
    ("2030-01-01T05:00:00+05:00", "2030-01-01T00:00:00+00:00"),
])
def test_valid_until_is_utc_whatever_the_machine_s_time_zone(value: str, stored: str) -> None:
    assert valid_until_text(value) == stored
