"""URLs and the psql command line pgtopo prints or runs to connect to a node."""

from __future__ import annotations

import pytest

from pgtopo import connect
from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology

TOPO = parse_topology("version: 1\ncluster: shop\nimage: postgres:17\nprimary: main\n"
                      "nodes:\n  main: {}\n  r1: {}\n  a2: {}\n", "t.yaml", {})


def test_a_node_s_url_names_no_password() -> None:
    assert connect.url("main", 15432) == "postgresql://postgres@127.0.0.1:15432/postgres"


def test_the_read_write_url_lists_the_primary_first() -> None:
    assert connect.read_write_url({"r1": 2, "a2": 3, "main": 1}, "main") == (
        "postgresql://postgres@127.0.0.1:1,127.0.0.1:3,127.0.0.1:2/postgres?target_session_attrs=read-write")


def test_the_default_node_is_the_primary_and_an_unknown_one_is_named() -> None:
    assert connect.node_of("t.yaml", TOPO, None) == "main"
    assert connect.node_of("t.yaml", TOPO, "r1") == "r1"
    with pytest.raises(SpecError, match=r"t.yaml: nope is not a node of the file \(nodes: a2, main, r1\)"):
        connect.node_of("t.yaml", TOPO, "nope")


@pytest.mark.parametrize("tty, flags", [(True, ["-i", "-t"]), (False, ["-i"])])
def test_psql_runs_in_the_container_as_the_superuser(tty: bool, flags: list[str]) -> None:
    assert connect.psql_argv("shop-main", ("-c", "SELECT 1"), tty) == [
        "docker", "exec", *flags, "shop-main", "psql", "-U", "postgres", "-c", "SELECT 1"]
