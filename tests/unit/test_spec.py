"""The derived views of a Topology: pure functions of the model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from pgtopo.spec import Topology
from tests.properties import examples


def topology(nodes: dict[str, dict[str, Any]], **fields: Any) -> Topology:
    doc: dict[str, Any] = {"version": 1, "cluster": "pg", "image": "postgres:17", "primary": "primary", "nodes": nodes}
    return Topology.model_validate({**doc, **fields})


CASCADE = topology(
    {
        "primary": {},
        "east": {},
        "west": {"upstream": "primary"},
        "east-cascade": {"upstream": "east"},
        "deep": {"upstream": "east-cascade"},
    }
)


@pytest.mark.parametrize(
    "node, upstream, depth, downstreams",
    [
        ("primary", None, 0, ["east", "west"]),
        ("east", "primary", 1, ["east-cascade"]),
        ("west", "primary", 1, []),
        ("east-cascade", "east", 2, ["deep"]),
        ("deep", "east-cascade", 3, []),
    ],
)
def test_upstream_depth_downstreams(node: str, upstream: str | None, depth: int, downstreams: list[str]) -> None:
    assert CASCADE.upstream_of(node) == upstream
    assert CASCADE.depth(node) == depth
    assert CASCADE.downstreams(node) == downstreams


def test_replicas_keep_file_order() -> None:
    assert CASCADE.replicas() == ["east", "west", "east-cascade", "deep"]


@pytest.mark.parametrize(
    "cluster_params, node_params, expected",
    [
        ({}, {}, {}),
        ({"work_mem": "8MB"}, {}, {"work_mem": "8MB"}),
        ({}, {"work_mem": "64MB"}, {"work_mem": "64MB"}),
        (
            {"work_mem": "8MB", "max_connections": 120},
            {"work_mem": "64MB"},
            {"work_mem": "64MB", "max_connections": 120},
        ),
        ({"fsync": True}, {"fsync": False, "jit": "off"}, {"fsync": False, "jit": "off"}),
    ],
)
def test_parameters_of_merges_node_over_cluster(
    cluster_params: dict[str, Any], node_params: dict[str, Any], expected: dict[str, Any]
) -> None:
    topo = topology({"primary": {}, "replica": {"parameters": node_params}}, parameters=cluster_params)
    assert topo.parameters_of("replica") == expected
    assert topo.parameters_of("primary") == cluster_params


def test_parameters_of_does_not_mutate_the_model() -> None:
    topo = topology({"primary": {"parameters": {"work_mem": "64MB"}}}, parameters={"work_mem": "8MB"})
    topo.parameters_of("primary")["work_mem"] = "1GB"
    assert topo.parameters == {"work_mem": "8MB"}
    assert topo.nodes["primary"].parameters == {"work_mem": "64MB"}


@pytest.mark.parametrize("network, expected", [(None, "pg-net"), ("pg_stream", "pg_stream")])
def test_network_name(network: str | None, expected: str) -> None:
    fields = {} if network is None else {"network": network}
    assert topology({"primary": {}}, **fields).network_name == expected


def test_defaults() -> None:
    topo = topology({"primary": {}})
    assert topo.auth.replication_user == "repuser"
    assert topo.auth.superuser_password is None
    assert topo.parameters == {}
    assert topo.nodes["primary"].port is None


def test_frozen() -> None:
    with pytest.raises(ValidationError):
        CASCADE.cluster = "other"  # type: ignore[misc]


# A random tree: node i (i >= 1) streams from a node before it, so every chain ends at the primary.
TREES = st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.tuples(*[st.integers(min_value=0, max_value=max(i - 1, 0)) for i in range(n)])
)


@settings(max_examples=examples(100))
@given(TREES)
def test_views_agree_on_random_trees(parents: tuple[int, ...]) -> None:
    names = ["primary"] + [f"n{i}" for i in range(1, len(parents))]
    nodes: dict[str, dict[str, Any]] = {"primary": {}}
    for i in range(1, len(parents)):
        nodes[names[i]] = {"upstream": names[parents[i]]} if parents[i] else {}
    topo = topology(nodes)
    for i, name in enumerate(names):
        up = topo.upstream_of(name)
        assert (up is None) == (i == 0)
        if up is not None:
            assert up == names[parents[i]]
            assert topo.depth(name) == topo.depth(up) + 1
            assert name in topo.downstreams(up)
    assert sum(len(topo.downstreams(n)) for n in names) == len(names) - 1
