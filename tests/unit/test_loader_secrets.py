"""A value interpolated from the environment may be a secret: no problem the loader reports shows
it, whoever finds the problem (a field's type, the model across keys, the image's own server);
the text the file holds (`${VAR}`) is shown instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtopo import pg_settings
from pgtopo.errors import SpecError
from pgtopo.loader import load_topology, parse_topology
from pgtopo.spec import Topology

SECRET = "sekrit-value"
ENV = {"S": SECRET}
# Five lines; a case's nodes start on line 6, what follows them on line 7.
HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n  primary: {}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", ENV)
    assert not any(SECRET in p for p in info.value.problems), info.value.problems
    return info.value.problems


def test_a_secret_that_fits_no_shape_of_a_secret_reference_is_not_shown() -> None:
    assert problems(HEAD + "auth:\n  superuser_password: {env: '${S}'}\n") == [
        "t.yaml:8:29: auth.superuser_password.env: must match ^[A-Za-z_][A-Za-z0-9_]*$ (got the value of '${S}')"
    ]


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param(
            "  replica: {upstream: '${S}'}\n",
            "t.yaml:7:13: nodes.replica.upstream: upstream the value of '${S}' of node 'replica' is not a node",
            id="upstream",
        ),
        pytest.param(
            "parameters:\n  wal_level: '${S}'\n",
            "t.yaml:8:3: parameters.wal_level: parameter 'wal_level' takes one of minimal, replica, logical, "
            "not the value of '${S}'",
            id="parameter",
        ),
    ],
)
def test_a_secret_refused_across_keys_is_not_shown(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [expected]


def test_a_setting_the_image_server_refuses_is_reported_by_load_topology_without_the_secret(tmp_path: Path) -> None:
    """An image whose tag names no major: only its server's catalog (here 17's) can refuse the value."""
    asked: list[str] = []

    def lookup(topo: Topology) -> pg_settings.Catalog:
        asked.append(topo.image)
        settings = pg_settings.catalog(17)
        assert settings is not None
        return pg_settings.Catalog(major=17, settings=settings)

    path = tmp_path / "t.yaml"
    path.write_text(HEAD.replace("postgres:17", "example.com/pg:custom") + "parameters:\n  wal_level: '${S}'\n")
    with pytest.raises(SpecError) as info:
        load_topology(path, ENV, catalog=lookup)
    assert info.value.problems == [
        f"{path}:8:3: parameters.wal_level: parameter 'wal_level' takes one of minimal, replica, logical, "
        "not the value of '${S}'"
    ]
    assert asked == ["example.com/pg:custom"]
