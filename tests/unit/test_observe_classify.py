"""Observation's pure parts (pgtopo/observe.py): which listed Docker objects are this cluster's
nodes, jobs, left-over helpers, its state volume, or foreign objects squatting on its names; what
a listed container publishes; whom apply can connect to; and what a volume's files say about its
data (read through a fake docker_ops.read_file).  Ownership is read from labels, never names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from pgtopo import docker_ops, labels as L, observe, pg_ops, probe
from pgtopo.errors import PostgresError
from pgtopo.observed import ContainerFacts, VolumeFacts
from pgtopo.state import ClusterState

from .flow_fakes import SYSID, client, control
from .test_plan import T

NAMES = L.Names("pg")


def raw_container(name: str, labels: dict[str, str] | None = None, state: str = "running",
                  ports: list[dict] | None = None, networks: tuple[str, ...] = ()) -> dict:
    return {"Id": f"id-{name}", "Names": [f"/{name}"], "State": state, "Image": "img", "Labels": labels,
            "Ports": ports, "NetworkSettings": {"Networks": {n: {} for n in networks}}}


def ours(role: str, node: str | None = None, cluster: str = "pg") -> dict[str, str]:
    return L.labels(cluster, role, node)


def classify(containers: list[dict], volumes: list[dict] | None = None) -> observe._Parts:
    return observe._classify(T, NAMES, [observe._container(c) for c in containers], volumes or [])


def test_node_containers_and_jobs_are_found_by_label_not_name() -> None:
    parts = classify([
        raw_container("pg-primary", ours("node", "primary")),
        raw_container("renamed-by-hand", ours("node", "replica")),
        raw_container("pg-replica-clone", ours("job", "replica"), state="exited"),
        raw_container("pg-replica-rewind", ours("job", "replica"), state="exited"),
        raw_container("pg-gone", ours("node", "gone")),  # no longer in the file: still ours, found
    ])
    assert {n: c.name for n, c in parts.containers.items()} == {
        "primary": "pg-primary", "replica": "renamed-by-hand", "gone": "pg-gone"}
    assert [c.name for c in parts.jobs["replica"]] == ["pg-replica-clone", "pg-replica-rewind"]
    assert parts.foreign == [] and parts.helpers == []


@pytest.mark.parametrize("name, labels, foreign", [
    ("pg-primary", None, True),                           # a stranger on a node's name
    ("pg-replica2", ours("node", "replica2", "other"), True),  # another cluster's container on our name
    ("pg-pgtopo-lock", {}, True),                         # a stranger on the lock's name
    ("pg-pgtopo-lock", ours("lock"), False),              # our own lock: neither node nor foreign
    ("pg-somethingelse", None, False),                    # our prefix, no name of ours: not our business
    ("other-primary", ours("node", "primary", "other"), False),  # another cluster's node
])
def test_foreign_containers_are_those_on_our_names_without_our_label(name: str, labels, foreign: bool) -> None:
    parts = classify([raw_container(name, labels)])
    assert parts.foreign == ([f"container {name}"] if foreign else [])
    assert parts.containers == {} and parts.jobs == {}


def test_only_stopped_helpers_are_left_overs() -> None:
    """A helper a killed pgtopo left behind is never started; a running one is another apply's."""
    parts = classify([raw_container("pg-pgtopo-helper-1", ours("helper"), state="created"),
                      raw_container("pg-pgtopo-helper-2", ours("helper"), state="running")])
    assert parts.helpers == ["pg-pgtopo-helper-1"]


def test_volumes_by_label_the_state_volume_by_name_and_label() -> None:
    parts = classify([], [
        {"Name": "pg-primary-data", "Labels": ours("node", "primary")},
        {"Name": "pg-pgtopo-state", "Labels": ours("state")},
        {"Name": "pg-replica-data", "Labels": None},            # a stranger on a node volume's name
        {"Name": "pg-unrelated", "Labels": None},               # not a name of ours
        {"Name": "pg-old-data", "Labels": ours("node", "old")},  # a node gone from the file
    ])
    assert {n: v.name for n, v in parts.volumes.items()} == {"primary": "pg-primary-data", "old": "pg-old-data"}
    assert parts.state_volume == VolumeFacts("pg-pgtopo-state", ours("state"))
    assert parts.foreign == ["volume pg-replica-data"]


def test_a_state_volume_without_our_label_is_foreign_and_not_read() -> None:
    parts = classify([], [{"Name": "pg-pgtopo-state", "Labels": ours("state", cluster="other")}])
    assert parts.state_volume is None and parts.foreign == ["volume pg-pgtopo-state"]


@pytest.mark.parametrize("ports, expected", [
    ([{"PrivatePort": 5432, "PublicPort": 40001, "IP": "127.0.0.1", "Type": "tcp"}], 40001),
    ([{"PrivatePort": 5432, "PublicPort": 40002, "IP": "0.0.0.0"}], 40002),
    ([{"PrivatePort": 5432, "PublicPort": 40003}], 40003),
    ([{"PrivatePort": 5432, "PublicPort": 40004, "IP": "::"}], None),  # reached on 127.0.0.1 only
    ([{"PrivatePort": 8008, "PublicPort": 40005, "IP": "127.0.0.1"}], None),
    ([{"PrivatePort": 5432, "IP": "127.0.0.1"}], None),  # not published
    (None, None),
])
def test_the_published_postgres_port(ports, expected) -> None:
    assert observe._container(raw_container("pg-primary", ours("node", "primary"), ports=ports)).host_port == expected


def test_a_listed_container_as_facts() -> None:
    facts = observe._container(raw_container("pg-primary", None, state="exited", networks=("z", "a")))
    assert (facts.name, facts.running, facts.labels, facts.networks) == ("pg-primary", False, {}, ("a", "z"))


def test_the_network_s_subnet_and_ownership() -> None:
    assert observe._network(None) is None
    net = observe._network({"Name": "n", "Id": "i", "Labels": ours("network"),
                            "IPAM": {"Config": [{"Gateway": "g"}, {"Subnet": "10.0.0.0/24"}]}})
    assert (net.subnet, net.owned) == ("10.0.0.0/24", True)
    assert observe._network({"Name": "n", "Id": "i", "Labels": None, "IPAM": None}).owned is False


def facts(node: str, state: str = "running", port: int | None = 40000) -> ContainerFacts:
    return ContainerFacts(id=f"id-{node}", name=f"pg-{node}", state=state, image="img",
                          labels=ours("node", node), host_port=port)


def test_endpoints_only_for_running_containers_with_a_port_and_known_passwords() -> None:
    containers = {"primary": facts("primary"), "replica": facts("replica", state="exited"),
                  "replica2": facts("replica2", port=None)}
    state = ClusterState("su", "rep")
    assert observe._endpoints(containers, None, None, "pg") == {}
    assert observe._endpoints(containers, state, "new", "pg") == {
        "primary": pg_ops.Endpoint("primary", 40000, "su", "new", "pg")}


# -- what a volume's files say ----------------------------------------------------------------------

def files_in(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> None:
    """The volume holds `files`, readable only through a helper (the node's container is never read)."""
    @contextlib.contextmanager
    def helper(*_args: object, **_kwargs: object) -> Iterator[str]:
        yield "helper"

    def read(client: object, container: str, path: str) -> bytes | None:
        assert container == "helper", f"read through {container}, not a helper"
        return files.get(path)

    monkeypatch.setattr(docker_ops, "helper", helper)
    monkeypatch.setattr(docker_ops, "read_file", read)


@pytest.mark.parametrize("extra, fenced, interrupted", [
    ({}, False, False),
    ({f"{L.PGDATA}/standby.signal": b""}, True, False),
    ({f"{L.PGDATA}/recovery.signal": b""}, True, False),
    ({L.REWIND_MARKER: b""}, False, True),
])
def test_data_facts_from_pg_control_and_signal_files(monkeypatch, extra, fenced: bool, interrupted: bool) -> None:
    files_in(monkeypatch, {f"{L.PGDATA}/global/pg_control": control(checkpoint=0x3000060), **extra})
    data = observe._data_facts(client(), docker_ops.HelperId("helper"))
    assert (data.has_pgdata, data.system_identifier, data.checkpoint, data.timeline) == (True, SYSID, 0x3000060, 1)
    assert data.was_primary  # shut down as a primary
    assert (data.fenced, data.interrupted) == (fenced, interrupted)


@pytest.mark.parametrize("conf, expected", [
    (None, None),
    (b"# Do not edit this file manually!\nshared_buffers = '900GB'\nprimary_slot_name = 'pgtopo_replica'\n",
     {"shared_buffers": "900GB", "primary_slot_name": "pgtopo_replica"}),
    (b"shared_buffers = '900GB\n", None),  # unreadable: nobody can tell what the server starts with
])
def test_data_facts_carry_what_the_server_would_start_with(monkeypatch, conf: bytes | None, expected) -> None:
    files_in(monkeypatch, {f"{L.PGDATA}/global/pg_control": control(),
                           **({f"{L.PGDATA}/postgresql.auto.conf": conf} if conf is not None else {})})
    assert observe._data_facts(client(), docker_ops.HelperId("helper")).auto_conf == expected


@pytest.mark.parametrize("raw", [None, b"", b"\0" * 20])
def test_no_readable_pg_control_is_no_data(monkeypatch, raw) -> None:
    files_in(monkeypatch, {f"{L.PGDATA}/global/pg_control": raw} if raw is not None else {})
    assert observe._data_facts(client(), docker_ops.HelperId("helper")).has_pgdata is False


def test_a_running_node_that_does_not_answer_has_its_data_read(monkeypatch) -> None:
    files_in(monkeypatch, {f"{L.PGDATA}/global/pg_control": control()})

    def refused(ep: pg_ops.Endpoint) -> None:
        raise PostgresError(f"{ep.node}: cannot connect on 127.0.0.1:{ep.port}: refused")

    monkeypatch.setattr(probe, "probe", refused)
    monkeypatch.setattr(docker_ops, "inspect_container", lambda client, cid: {"RestartCount": 3})
    parts = observe._Parts(containers={"replica": facts("replica")},
                           volumes={"replica": VolumeFacts("pg-replica-data", ours("node", "replica"))})
    node = observe._probe_node(client(), "img", "replica", parts, pg_ops.Endpoint("replica", 40000, "su"), None)
    assert node.pg is None and node.pg_error == "replica: cannot connect on 127.0.0.1:40000: refused"
    assert node.data is not None and node.data.has_pgdata and node.has_data
    # caught running between two crashes: Docker's restart count says it is looping
    assert node.container is not None and node.container.restarts == 3 and node.container.crash_looping


def test_a_running_node_without_an_endpoint_says_why(monkeypatch) -> None:
    monkeypatch.setattr(docker_ops, "inspect_container", lambda client, cid: {"RestartCount": 0})
    parts = observe._Parts(containers={"replica": facts("replica", port=None)})
    node = observe._probe_node(client(), "img", "replica", parts, None, None)
    assert node.pg is None and node.pg_error == "no published port or no password known" and node.data is None


def test_a_running_server_short_of_a_consistent_state_has_its_receivers_complaint_read(monkeypatch) -> None:
    files_in(monkeypatch, {f"{L.PGDATA}/global/pg_control": control()})
    said = {"error": "the database system is starting up"}

    def refused(ep: pg_ops.Endpoint) -> None:
        raise PostgresError(f"{ep.node}: cannot connect on 127.0.0.1:{ep.port}: FATAL:  {said['error']}")

    log = ("LOG:  started streaming WAL from primary at 0/2000000 on timeline 2\n"
           "FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment "
           "000000020000000000000002 has already been removed\n"
           "FATAL:  the database system is starting up")
    monkeypatch.setattr(probe, "probe", refused)
    monkeypatch.setattr(docker_ops, "inspect_container", lambda client, cid: {"RestartCount": 0})
    monkeypatch.setattr(docker_ops, "last_lines", lambda client, cid, lines=8: log)
    parts = observe._Parts(containers={"replica": facts("replica")},
                           volumes={"replica": VolumeFacts("pg-replica-data", ours("node", "replica"))})
    node = observe._probe_node(client(), "img", "replica", parts, pg_ops.Endpoint("replica", 40000, "su"), None)
    assert node.stream_error == ("could not receive data from WAL stream: requested WAL segment "
                                 "000000020000000000000002 has already been removed")
    said["error"] = "the database system is not yet accepting connections"  # its words from PostgreSQL 14 on
    node = observe._probe_node(client(), "img", "replica", parts, pg_ops.Endpoint("replica", 40000, "su"), None)
    assert node.stream_error is not None
    said["error"] = "password authentication failed"  # not a server still recovering: nothing read
    node = observe._probe_node(client(), "img", "replica", parts, pg_ops.Endpoint("replica", 40000, "su"), None)
    assert node.stream_error is None


@pytest.mark.parametrize(("state", "read"), [({"Running": True, "Paused": False}, True),
                                             ({"Running": True, "Paused": True}, False)])
def test_the_state_is_never_read_by_a_process_in_a_paused_container(monkeypatch, state, read: bool) -> None:
    """A process started in a container as it is paused never starts, and Docker 20.10 then
    answers nothing about that container until it is thawed by hand (chaos seed 32): a paused
    node is skipped and the state read another way."""
    from pgtopo import state as cluster_state

    ran: list[str] = []
    info = {"Config": {"Labels": {L.CLUSTER: "pg"}}, "State": state}
    monkeypatch.setattr(docker_ops, "inspect_container", lambda client, container: info)
    monkeypatch.setattr(cluster_state, "read_in", lambda client, container: ran.append(container) or "state")
    assert observe._state_in(None, "pg-primary", "pg") == ("state" if read else None)
    assert ran == (["pg-primary"] if read else [])
