"""The pooler's files and container, and the file's `pooler:` checks (FILE:LINE:COL)."""

from __future__ import annotations

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology
from pgtopo.pooler import config, settings as pooler_settings

from .test_plan import topo

POOLER = {"image": "pgtopo-local/pgbouncer:1", "port": 6432}


def test_every_database_goes_to_the_primary_s_container_by_name() -> None:
    ini = config.ini(topo(pooler=POOLER), ("replica",))
    assert "postgres = host=pg-replica port=5432 dbname=postgres\n" in ini
    assert "* = host=pg-replica port=5432\n" in ini
    assert "auth_type = scram-sha-256\n" in ini and "auth_user = pgtopo_pooler\n" in ini
    assert "pool_mode = transaction\n" in ini and "listen_port = 6432\n" in ini


def test_the_file_s_settings_are_written_as_pgbouncer_reads_them() -> None:
    t = topo(pooler={**POOLER, "pool_mode": "session",
                     "parameters": {"max_client_conn": 500, "log_connections": False, "query_wait_timeout": 2.5}})
    ini = config.ini(t, ("primary",))
    assert "max_client_conn = 500\n" in ini and "log_connections = 0\n" in ini
    assert "query_wait_timeout = 2.5\n" in ini and "pool_mode = session\n" in ini


def test_the_pooler_s_password_is_derived_and_never_the_superuser_s() -> None:
    one, other = config.password("secret-a"), config.password("secret-b")
    assert one == config.password("secret-a") and one != other and "secret-a" not in one
    assert len(one) >= 40
    assert config.auth_file("secret-a") == f'"pgtopo_pooler" "{one}"\n'


def test_the_hash_changes_with_the_container_s_settings_but_not_with_where_it_points() -> None:
    base = config.config_hash(topo(pooler=POOLER))
    assert config.config_hash(topo(pooler=POOLER, primary="replica",
                                   nodes={"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}})) == base
    assert config.config_hash(topo(pooler={**POOLER, "port": 6433})) != base
    assert config.config_hash(topo(pooler={**POOLER, "parameters": {"default_pool_size": 5}})) != base
    assert config.config_hash(topo(pooler={**POOLER, "image": "pgtopo-local/pgbouncer:2"})) != base


def test_no_secret_in_the_container_s_spec() -> None:
    spec = config.container(topo(pooler=POOLER))
    assert spec.env == {} and spec.name == "pg-pooler" and spec.host_port == 6432 and spec.bind == "127.0.0.1"
    assert spec.labels["io.pgtopo.role"] == "pooler"


HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    return info.value.problems


@pytest.mark.parametrize("body, expected", [
    pytest.param("nodes: {primary: {port: 6432}}\npooler: {image: 'pb:1'}\n",
                 ["t.yaml:6:1: pooler.port: host port 6432 is also used by node 'primary'"], id="port-clash"),
    pytest.param("nodes: {primary: {}}\npooler: {image: 'pb:1', parameters: {listen_port: 1}}\n",
                 ["t.yaml:6:38: pooler.parameters.listen_port: pooler setting 'listen_port' is not one pgtopo passes "
                  "to PgBouncer; allowed: " + ", ".join(sorted(pooler_settings.SETTINGS))], id="unknown-setting"),
    pytest.param("nodes: {primary: {}}\npooler: {image: 'pb:1', pool_mode: bogus}\n",
                 ["t.yaml:6:36: pooler.pool_mode: must be 'transaction' or 'session' (got 'bogus')"],
                 id="pool-mode"),
    pytest.param("nodes: {primary: {}, pooler: {}}\npooler: {image: 'pb:1'}\n",
                 ["t.yaml:5:22: nodes.pooler: node name 'pooler' is taken by the pooler's container (pg-pooler): "
                  "rename the node"], id="node-named-pooler"),
    pytest.param("nodes: {primary: {}}\npooler: {image: 'pb:1', parameters: {max_client_conn: yes}}\n",
                 ["t.yaml:6:38: pooler.parameters.max_client_conn: pooler setting 'max_client_conn' takes a whole "
                  "number (got True)"], id="setting-of-the-wrong-kind"),
])
def test_bad_pooler_input_is_refused_at_its_key(body: str, expected: list[str]) -> None:
    assert problems(HEAD + body) == expected
