"""pgtopo's connection strings follow libpq's rules: psycopg (libpq's own parser underneath)
reads what pgtopo writes, and pgtopo reads what psycopg writes."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgtopo import conninfo

KEYS = st.sampled_from(["host", "port", "user", "dbname", "application_name", "passfile", "options"])
VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5))
def test_what_pgtopo_writes_libpq_reads_back_unchanged(params: dict[str, str]) -> None:
    text = conninfo.make(**params)
    assert conninfo_to_dict(text) == params
    assert conninfo.parse(text) == params


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5))
def test_what_libpq_writes_pgtopo_reads(params: dict[str, str]) -> None:
    assert conninfo.parse(make_conninfo("", **params)) == conninfo_to_dict(make_conninfo("", **params))


def test_plain_values_stay_unquoted_as_postgresql_auto_conf_shows_them() -> None:
    assert conninfo.make(host="pg-primary", port=5432, application_name="replica") == (
        "host=pg-primary port=5432 application_name=replica")
    assert conninfo.make(options="-c a=b", user="o'k\\") == "options='-c a=b' user='o\\'k\\\\'"


def test_spaces_around_equals_and_repeats_read_as_libpq_does() -> None:
    assert conninfo.parse("host = a  port= 1 host=b") == conninfo_to_dict("host = a  port= 1 host=b")


@pytest.mark.parametrize("text", ["host", "=x", "host='open", "host=a junk"])
def test_text_libpq_refuses_is_refused(text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - psycopg's own error type
        conninfo_to_dict(text)
    with pytest.raises(ValueError):
        conninfo.parse(text)
