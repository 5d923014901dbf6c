"""Replicas reach their upstream by a name only this cluster's container answers to, offer a
password only to such names (pgpass), accept only scram-sha-256 on PostgreSQL 16+, and the
planner compares exactly what the scripts write."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pgtopo import desired, labels as L
from pgtopo.observed import NodeFacts
from pgtopo.plan import plan
from pgtopo.state import ClusterState, decode, encode

from .test_plan import T, container, converged, pg_replica, volume

STATE = ClusterState("su-pw", "repl-pw", 1, hosts=desired.pgpass_hosts(T))


def test_upstreams_are_named_by_their_container_s_name() -> None:
    assert desired.conninfo(T, "replica2").startswith("host=pg-replica port=5432 ")
    assert desired.clone_source(T, "replica2").startswith("host=pg-replica port=5432 ")
    rewind = desired.rewind_job(T, "replica").command
    assert any(arg.startswith("host=pg-primary port=5432 user=postgres ") for arg in rewind), rewind
    assert desired.node_container(T, "replica").aliases == ("replica",)  # for replicas of an older pgtopo


@pytest.mark.parametrize("host, cluster, node", [("pg-replica", "pg", "replica"), ("replica", "pg", "replica"),
                                                 ("my-cluster-my-node", "my-cluster", "my-node"),
                                                 ("pg-replica", "", "pg-replica"), (None, "pg", None)])
def test_node_of_host(host: str | None, cluster: str, node: str | None) -> None:
    assert L.node_of_host(host, cluster) == node


def test_observed_upstreams_are_node_names() -> None:
    from pgtopo.labels import node_of_host

    host = next(f.split("=", 1)[1] for f in desired.conninfo(T, "replica2").split() if f.startswith("host="))
    assert node_of_host(host, "pg") == "replica"
    assert node_of_host("replica", "pg") == "replica"


@pytest.mark.parametrize("version, required", [(None, True), (170002, True), (160000, True), (150010, False),
                                               (130000, False)])
def test_require_auth_only_where_libpq_knows_it(version: int | None, required: bool) -> None:
    assert desired.conninfo(T, "replica", version).endswith(" require_auth=scram-sha-256") is required


@pytest.mark.parametrize("version", [150010, 170002])
def test_a_converged_cluster_of_either_version_plans_nothing(version: int) -> None:
    nodes = {n: NodeFacts(n, container=container(T, n), volume=volume(T, n),
                          pg=pg_replica(T, n, server_version=version,
                                        auto_conf={**desired.settings(T, n),
                                                   **desired.replication_settings(T, n, version)}))
             for n in T.replicas()}
    assert plan(T, converged(T, **nodes)).actions == ()


def test_a_replica_on_a_bare_alias_is_repointed_once() -> None:
    old = {**desired.replication_settings(T, "replica"),
           "primary_conninfo": "host=primary port=5432 user=repuser passfile=/run/pgtopo/pgpass "
                               "application_name=replica"}
    obs = converged(T, replica=NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                                         pg=pg_replica(T, "replica", auto_conf=old)))
    assert [(a.node, a.kind.value) for a in plan(T, obs).actions] == [("replica", "repoint")]


def test_pgpass_names_each_host_and_no_wildcard() -> None:
    lines = encode(STATE, "repuser")["pgpass"].decode().splitlines()
    assert lines[:2] == ["pg-primary:5432:*:postgres:su-pw", "pg-primary:5432:*:repuser:repl-pw"]
    assert len(lines) == 6 and not any(line.startswith("*") for line in lines)
    assert decode(encode(STATE, "repuser")).hosts == STATE.hosts


def test_a_state_written_by_an_older_pgtopo_keeps_working_until_rewritten() -> None:
    legacy = {"superuser_password": b"su", "replication_password": b"re",
              "pgpass": b"*:*:*:postgres:su\n*:*:*:repuser:re\n"}
    state = decode(legacy)
    assert state is not None and state.hosts == ()
    assert encode(state, "repuser")["pgpass"].decode().startswith("*:5432:*:postgres:su\n")


def test_the_container_recipe_changed() -> None:
    assert desired.CONTAINER_LAYOUT == "3"
    hba = desired.hba_conf(T)
    assert "samenet" not in hba
    assert "host    replication  repuser   @gateway@/32   reject" in hba
    assert hba.index("@gateway@") < hba.index("@subnet@")


def with_server(tmp_path: Path, version: str) -> dict[str, str]:
    """An environment whose `postgres -V` says `version`."""
    fake = tmp_path / "postgres"
    fake.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version} (Debian {version}-1)'\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


@pytest.mark.parametrize("version, kept", [("15.10", False), ("16.1", True), ("17.12", True)])
def test_the_scripts_write_what_the_planner_expects(tmp_path: Path, version: str, kept: bool) -> None:
    auto = desired.auto_conf(T, "replica2")
    out = subprocess.run(["sh", "-c", desired.AUTO_CONF + 'auto_conf "$1"', "sh", auto], capture_output=True,
                         text=True, check=True, env=with_server(tmp_path, version)).stdout
    expected = desired.replication_settings(T, "replica2", int(version.split(".")[0]) * 10000)["primary_conninfo"]
    assert f"primary_conninfo = '{expected}'" in out.splitlines(), out
    assert ("require_auth" in out) is kept


@pytest.mark.parametrize("hexa, quad, bits", [("0160A8C0", "192.168.96.1", "0"), ("00F0FFFF", "255.255.240.0", "20"),
                                              ("000012AC", "172.18.0.0", "0"), ("0000FFFF", "255.255.0.0", "16")])
def test_route_addresses_are_read_as_the_kernel_writes_them(hexa: str, quad: str, bits: str) -> None:
    out = subprocess.run(["sh", "-c", desired.HBA + 'quad "$1"; echo; bits "$1"', "sh", hexa], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == quad
    if bits != "0":
        assert out[1] == bits


def test_only_jobs_that_connect_mount_the_passwords() -> None:
    """A job that reads or edits a data volume alone (pg_waldump, fence) never mounts the state
    volume: docker would create it, empty and unlabelled, where it is missing."""
    state = f"{T.cluster}-pgtopo-state"
    local = [desired.waldump_job(T, "replica", 1, "0/3000000"), desired.fence_job(T, "primary"),
             desired.unfence_job(T, "primary"), desired.demote_job(T, "primary")]
    for job in local:
        assert job.network is None and [m.volume for m in job.mounts] == [f"{T.cluster}-{job.labels[L.NODE]}-data"]
    for job in (desired.clone_job(T, "replica"), desired.rewind_job(T, "replica")):
        assert state in [m.volume for m in job.mounts]
