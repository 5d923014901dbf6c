"""Where the loader points: a missing key at the key of the mapping that lacks it, an unknown key
in an optional block with the keys that block takes, and the problems found while reading the
file even when the model accepts what is left."""

from __future__ import annotations

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology
from pgtopo.yaml_tree import MAX_DEPTH

# Five lines; a case's nodes start on line 6, what follows them on line 7.
HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n  primary: {}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    return info.value.problems


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param("pooler:\n  port: 7000\n", "7:1: pooler.image: missing required key", id="in-a-block"),
        pytest.param(
            "pooler: {image: 'pgbouncer:1', read_only: {}}\n",
            "7:32: pooler.read_only.port: missing required key",
            id="two-levels-down",
        ),
    ],
)
def test_a_missing_key_points_at_the_key_of_the_mapping_that_lacks_it(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [f"t.yaml:{expected}"]


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param(
            "synchronous: {methd: any}\n",
            "7:15: synchronous.methd: unknown key 'methd' (did you mean 'method'?)",
            id="optional-block",
        ),
        pytest.param(
            "pooler: {image: 'pgbouncer:1', read_only: {port: 7000, colour: 1}}\n",
            "7:56: pooler.read_only.colour: unknown key 'colour' (expected one of: port, max_lag_bytes)",
            id="optional-in-optional",
        ),
    ],
)
def test_an_unknown_key_in_an_optional_block_names_the_keys_it_takes(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [f"t.yaml:{expected}"]


def test_a_document_nested_exactly_as_deep_as_allowed_is_read() -> None:
    """The document's mapping and 49 lists inside it: 50 levels, the most allowed; what is wrong
    with it is the key, not its depth."""
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    found = problems(HEAD + f"deep: {deep}\n")
    assert found == ["t.yaml:7:1: deep: unknown key 'deep' (expected one of: version, cluster, image, network, "
                     "primary, auth, parameters, switchover, nodes, synchronous, pooler, roles, databases, "
                     "backup, bootstrap)"]


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param(
            "auth:\n  superuser_password: {file: '${UNSET}'}\n",
            "t.yaml:8:30: auth.superuser_password.file: variable UNSET is not set and has no default",
            id="unset-variable",
        ),
        pytest.param("? [a, b]\n: 1\n", "t.yaml:7:3: keys must be strings or numbers", id="list-as-key"),
    ],
)
def test_a_reading_problem_is_reported_even_when_the_rest_is_a_valid_topology(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [expected]
