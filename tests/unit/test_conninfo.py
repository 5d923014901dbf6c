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


@pytest.mark.parametrize("text", ["host=", "host=a ", "host=a\\b", "host='a'port=1", "host='a b'  port=1\t"])
def test_empty_values_escapes_and_spacing_read_as_libpq_does(text: str) -> None:
    assert conninfo.parse(text) == conninfo_to_dict(text)


@pytest.mark.parametrize("text", ["host='a\\", "host='a\\'"])
def test_a_quoted_value_whose_closing_quote_is_escaped_or_missing_is_refused(text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - psycopg's own error type
        conninfo_to_dict(text)
    with pytest.raises(ValueError):
        conninfo.parse(text)


def test_a_value_ending_in_a_backslash_is_read_without_an_error() -> None:
    """libpq drops a trailing backslash (`host=a\\` is host `a`); pgtopo never writes one (make()
    quotes any value with a backslash) and must not fail reading a hand-written one."""
    assert conninfo.parse("host=a\\") == {"host": "a"} == conninfo_to_dict("host=a\\")
    assert conninfo.parse("host=a\\\\") == {"host": "a\\"} == conninfo_to_dict("host=a\\\\")
