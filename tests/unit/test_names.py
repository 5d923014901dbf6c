"""Names and values that Docker or PostgreSQL would reject, or that could inject, are refused.

Every name in a topology ends up somewhere else: the cluster and node names in Docker object
names and DNS aliases, the replication user in SQL, pg_hba.conf, the pgpass file and
primary_conninfo, parameter names and values in ALTER SYSTEM and postgresql.auto.conf, the
network and the image in Docker API calls.  The model refuses what does not belong there, and
accepts the ordinary names people use (table-driven both ways).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology
from pgtopo.spec import Topology

# Refused wherever a name is expected: quoting, shell and SQL metacharacters, whitespace and
# control characters, path pieces, uppercase, a leading digit or hyphen, non-ASCII.
HOSTILE = [
    "pg'x", 'pg"x', "pg x", " pg", "pg ", "pg;x", "pg;drop role postgres", "$(id)", "pg$(id)", "${HOME}", "pg`id`",
    "`id`", "pg\nx", "pg\n", "\npg", "pg\r", "pg\t", "pg\x00", "pg\x1b[2J", "..", "../pg", "pg/..", "a/b", "/pg",
    "Pg", "PG", "pG", "1pg", "0", "-pg", "-", "", "pg|x", "pg&x", "pg>x", "pg<x", "pg\\x", "pg=x", "pg,x", "pg#x",
    "pg*", "pg?", "pg%x", "pg!", "pg~", "pg:x", "pg@x", "pgé", "p\u0261", "pg\u202e", "pg\u200b", "pg\U0001f418",
]
# ... and for names limited to 30 characters:
TOO_LONG_30 = "a" * 31


def topology(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "cluster": "pg", "image": "postgres:17", "primary": "primary",
            "nodes": {"primary": {}, "replica": {}}, **fields}


def accepted(data: dict[str, Any]) -> Topology:
    return Topology.model_validate(data)


def refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Topology.model_validate(data)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", env or {})
    return info.value.problems


# --- cluster and node names: ^[a-z][a-z0-9-]{0,29}$ ------------------------------------------

NAME_REFUSED = [*HOSTILE, TOO_LONG_30, "pg.x", "pg_x"]
NAME_ACCEPTED = ["pg", "a", "a1", "pg-1", "east-cascade", "x" * 30, "a--b", "n0"]


@pytest.mark.parametrize("name", NAME_REFUSED)
def test_cluster_name_refused(name: str) -> None:
    refused(topology(cluster=name))


@pytest.mark.parametrize("name", NAME_ACCEPTED)
def test_cluster_name_accepted(name: str) -> None:
    assert accepted(topology(cluster=name)).cluster == name


@pytest.mark.parametrize("name", NAME_REFUSED)
def test_node_name_refused_as_a_node(name: str) -> None:
    refused(topology(nodes={"primary": {}, name: {}}))


@pytest.mark.parametrize("name", NAME_REFUSED)
def test_node_name_refused_as_primary_and_upstream(name: str) -> None:
    refused(topology(primary=name, nodes={name: {}}))
    refused(topology(nodes={"primary": {}, "replica": {"upstream": name}}))


@pytest.mark.parametrize("name", ["pgtopo", "pgtopo-lock", "pgtopo-state", "pgtopox"])
def test_node_names_pgtopo_uses_are_reserved(name: str) -> None:
    refused(topology(nodes={"primary": {}, name: {}}))


@pytest.mark.parametrize("name", NAME_ACCEPTED)
def test_node_name_accepted(name: str) -> None:
    topo = accepted(topology(primary=name, nodes={name: {}, "replica": {"upstream": name}}))
    assert topo.upstream_of("replica") == name


# --- the replication user: ^[a-z_][a-z0-9_]{0,62}$, not a reserved role -----------------------

ROLE_REFUSED = [
    *HOSTILE, "a" * 64, "rep-user", "rep.user",
    # the superuser (its password would be replaced), roles PostgreSQL reserves, pg_hba.conf's `all`
    "postgres", "public", "none", "all", "pg_monitor", "pg_", "pg_repl",
]
ROLE_ACCEPTED = ["repuser", "replicator", "_repl", "r", "rep_2", "a" * 63, "pgrepl", "postgres2", "allusers"]


@pytest.mark.parametrize("role", ROLE_REFUSED)
def test_replication_user_refused(role: str) -> None:
    refused(topology(auth={"replication_user": role}))


@pytest.mark.parametrize("role", ROLE_ACCEPTED)
def test_replication_user_accepted(role: str) -> None:
    assert accepted(topology(auth={"replication_user": role})).auth.replication_user == role


# --- parameter names and values ---------------------------------------------------------------

PARAM_REFUSED = [
    *HOSTILE, "a" * 64, "work-mem", "Work_mem", "a.b.c", "a..b", ".a", "a.",
    "1a.b", "a.1b", "a b.c",
]
PARAM_ACCEPTED = ["work_mem", "shared_buffers", "_x", "a" * 63, "auto_explain.log_min_duration", "pg_stat.x", "x1"]


@pytest.mark.parametrize("name", PARAM_REFUSED)
def test_parameter_name_refused(name: str) -> None:
    refused(topology(parameters={name: "1"}))
    refused(topology(nodes={"primary": {"parameters": {name: "1"}}}))


@pytest.mark.parametrize("name", PARAM_ACCEPTED)
def test_parameter_name_accepted(name: str) -> None:
    """The name's syntax (an image whose tag names no major: no catalog check, see test_pg_settings)."""
    assert accepted(topology(image="example.com/postgres:custom", parameters={name: "1"})).parameters == {name: "1"}


VALUE_REFUSED = [
    "\n", "a\nb", "8MB\nlisten_addresses = '*'", "a\r", "a\r\nb", "\x00", "a\x00b", "\x1b[2J", "\t", "a\tb", "\x7f",
    "\x01", "\x1f", "x" * 1025,
]
VALUE_ACCEPTED = [
    "128MB", "", "it's", "'", '"', "\\", "a;b", "$(id)", "`id`", "a b", "é", "\U0001f418", "x" * 1024,
    "host=a user=b", "'; DROP TABLE x; --",
]


@pytest.mark.parametrize("value", VALUE_REFUSED)
def test_parameter_value_with_control_characters_refused(value: str) -> None:
    refused(topology(parameters={"application_name": value}))
    refused(topology(nodes={"primary": {"parameters": {"application_name": value}}}))


@pytest.mark.parametrize("value", VALUE_ACCEPTED)
def test_parameter_value_accepted(value: str) -> None:
    assert accepted(topology(parameters={"application_name": value})).parameters["application_name"] == value


@pytest.mark.parametrize("name", ["primary_conninfo", "primary_slot_name", "port", "listen_addresses", "data_directory",
                                  "hba_file", "ident_file", "config_file", "unix_socket_directories", "cluster_name"])
def test_parameters_pgtopo_manages_refused(name: str) -> None:
    refused(topology(parameters={name: "x"}))


# --- the network: Docker's ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ----------------------------------

NETWORK_REFUSED = [
    *[h for h in HOSTILE if h not in ("Pg", "PG", "pG", "1pg", "0")], "a" * 64, ".net", "_net", "-net",
]
NETWORK_ACCEPTED = ["pg_stream", "pg-net", "Pg-Net.1", "1net", "0", "a" * 63, "net.example", "PG"]  # Docker allows these


@pytest.mark.parametrize("network", NETWORK_REFUSED)
def test_network_refused(network: str) -> None:
    refused(topology(network=network))


@pytest.mark.parametrize("network", NETWORK_ACCEPTED)
def test_network_accepted(network: str) -> None:
    assert accepted(topology(network=network)).network_name == network


# --- the image: a Docker image reference ------------------------------------------------------

IMAGE_REFUSED = [
    *[h for h in HOSTILE if h not in ("a/b", "1pg", "0", "pg:x")],
    "a..b", "a/../b", "postgres/", "postgres:", "postgres:17:1", "postgres:-17", "postgres@", "postgres@sha256:abc",
    "Postgres:17", "library/Postgres:17", "postgres//x", "postgres:17\n", "x" * 256, "localhost:port/pg",
    "postgres:" + "x" * 129, "postgres_", "postgres-", "postgres.", "a___b",
]
IMAGE_ACCEPTED = [
    "postgres", "postgres:17", "postgres:17.2-bookworm", "library/postgres:16", "pgtopo-local/postgres:15",
    "registry.example.com:5000/team/postgres:17", "localhost/pg:V1", "localhost:5000/pg", "Team/postgres",
    "ghcr.io/a_b/c__d/e-f:latest", "a--b", "1pg", "pg.x", "pg_x", "a/b", "pg:x", "postgres:" + "x" * 128,
    "postgres@sha256:" + "0123456789abcdef" * 4, "postgres:17@sha256:" + "0" * 64, "x" * 255,
]


@pytest.mark.parametrize("image", IMAGE_REFUSED)
def test_image_refused(image: str) -> None:
    refused(topology(image=image))


@pytest.mark.parametrize("image", IMAGE_ACCEPTED)
def test_image_accepted(image: str) -> None:
    assert accepted(topology(image=image)).image == image


# --- the exact messages, through the loader ---------------------------------------------------

HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            HEAD.replace("cluster: pg", 'cluster: "pg;rm -rf /"') + "nodes: {primary: {}}\n",
            ["t.yaml:2:10: cluster: must match ^[a-z][a-z0-9-]{0,29}$ (got 'pg;rm -rf /')"],
            id="cluster-shell",
        ),
        pytest.param(
            HEAD.replace("cluster: pg", "cluster: " + "a" * 31) + "nodes: {primary: {}}\n",
            ["t.yaml:2:10: cluster: must match ^[a-z][a-z0-9-]{0,29}$ (got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')"],
            id="cluster-31-characters",
        ),
        pytest.param(
            HEAD + 'nodes:\n  primary: {}\n  "re\\nplica": {port: 0}\n',
            [
                "t.yaml:7:3: nodes: key 're\\nplica' must match ^[a-z][a-z0-9-]{0,29}$",
                "t.yaml:7:23: nodes.'re\\nplica'.port: must be >= 1 (got 0)",
            ],
            id="node-newline",
        ),
        pytest.param(
            HEAD + "nodes: {primary: {}}\nauth: {replication_user: postgres}\n",
            [("t.yaml:6:26: auth.replication_user: 'postgres' cannot be the replication user "
              "(reserved: postgres, public, none, all, pg_*, "
              "pgtopo*)")],
            id="replication-user-superuser",
        ),
        pytest.param(
            HEAD + "nodes: {primary: {}}\nauth: {replication_user: \"rep'; DROP ROLE postgres; --\"}\n",
            [("t.yaml:6:26: auth.replication_user: must match ^[a-z_][a-z0-9_]{0,62}$ "
              "(got \"rep'; DROP ROLE postgres; --\")")],
            id="replication-user-sql",
        ),
        pytest.param(
            HEAD + "nodes: {primary: {}}\nparameters:\n  \"work_mem = '1GB'\\nfsync\": off\n  search_path: \"a\\nb\"\n",
            [
                ("t.yaml:7:3: parameters: key \"work_mem = '1GB'\\nfsync\" must match "
                 "^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$"),
                "t.yaml:8:16: parameters.search_path: must not contain control characters (got 'a\\nb')",
            ],
            id="parameter-injection",
        ),
        pytest.param(
            HEAD + "nodes: {primary: {}}\nnetwork: ../host\n",
            ["t.yaml:6:10: network: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ (got '../host')"],
            id="network-path",
        ),
        pytest.param(
            HEAD.replace("postgres:17", "Postgres:17") + "nodes: {primary: {}}\n",
            [("t.yaml:3:8: image: must be a Docker image reference, [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] with NAME "
              "in lowercase (got 'Postgres:17')")],
            id="image-uppercase",
        ),
        pytest.param(
            HEAD.replace("postgres:17", "'postgres:17 --privileged'") + "nodes: {primary: {}}\n",
            ["t.yaml:3:8: image: must match ^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$ (got 'postgres:17 --privileged')"],
            id="image-option",
        ),
    ],
)
def test_exact_messages(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_an_interpolated_image_is_checked_after_interpolation() -> None:
    text = HEAD.replace("postgres:17", "${PGTOPO_IMAGE:-postgres:17}") + "nodes: {primary: {}}\n"
    assert parse_topology(text, "t.yaml", {"PGTOPO_IMAGE": "pgtopo-local/postgres:15"}).image == "pgtopo-local/postgres:15"
    assert problems(text, {"PGTOPO_IMAGE": "postgres:17;id"}) == [
        "t.yaml:3:8: image: must match ^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$ (got the value of '${PGTOPO_IMAGE:-postgres:17}')"
    ]
    assert problems(text, {"PGTOPO_IMAGE": "a/../b"}) == [
        ("t.yaml:3:8: image: must be a Docker image reference, [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] with NAME "
         "in lowercase (got the value of '${PGTOPO_IMAGE:-postgres:17}')")
    ]
