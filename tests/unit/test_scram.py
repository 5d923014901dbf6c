"""roles/scram.py says whether a password matches a stored SCRAM-SHA-256 verifier, as the server
would: checked against verifiers libpq makes (PQencryptPasswordConn needs a connection object but
no server when the algorithm is named: a connection that failed is enough), against one recorded
here, and against what is not a verifier of that password."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st
from psycopg import pq

from pgtopo.roles import scram

# made by libpq 18 for the password "app-secret-1" (any role name: SCRAM's salt is random, not the name)
RECORDED = ("SCRAM-SHA-256$4096:1vJULX/sTZjqQu4lvcKVJA==$y5nmkVJ10V8VCArMOF7V45PcG8qrSlZycz3CQKILuVk=:"
            "wkkI2Vo0PIfgTPFXl1CCsHqdN/CJmLy6Tv9CYd34VS0=")


@pytest.fixture(scope="module")
def libpq() -> pq.PGconn:
    conn = pq.PGconn.connect(b"host=/nonexistent-pgtopo-test port=1 connect_timeout=1")
    assert conn.status == pq.ConnStatus.BAD
    return conn


def made_by_libpq(conn: pq.PGconn, password: str) -> str:
    return conn.encrypt_password(password.encode(), b"app", b"scram-sha-256").decode()


def test_a_recorded_verifier() -> None:
    assert scram.matches("app-secret-1", RECORDED)
    assert not scram.matches("app-secret-2", RECORDED)
    assert not scram.matches("App-secret-1", RECORDED)
    assert not scram.matches("", RECORDED)


# ASCII, and passwords SASLprep changes: a soft hyphen (mapped to nothing), a no-break space (to a
# space), compatibility forms (NFKC: the Roman numeral nine, a ligature), right-to-left text; and
# passwords SASLprep refuses, which are hashed as they are (a control character, a bidi mix)
PASSWORDS = ["app-secret-1", "it's \"quoted\" \\ and ; --", "x" * 500, "pässwörd", "I\u00adX", "a\u00a0b", "\u2168",
             "\ufb00", "\u0627\u0628\u0629", "\x07bell", "\u0627a\u0628", "日本語のパスワード", "\U0001f418"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_libpq_verifiers_match_their_password_and_no_other(libpq: pq.PGconn, password: str) -> None:
    verifier = made_by_libpq(libpq, password)
    assert scram.matches(password, verifier)
    assert not scram.matches(password + "x", verifier)
    assert not scram.matches(password[:-1], verifier)


def test_passwords_saslprep_makes_equal_match_each_other(libpq: pq.PGconn) -> None:
    """What the server would accept: a soft hyphen is nothing, the Roman numeral nine is IX."""
    assert scram.matches("IX", made_by_libpq(libpq, "I\u00adX"))
    assert scram.matches("IX", made_by_libpq(libpq, "\u2168"))
    assert scram.matches("a b", made_by_libpq(libpq, "a\u00a0b"))


@given(st.text(min_size=1, max_size=40))
def test_any_password_matches_its_own_libpq_verifier(password: str) -> None:
    conn = pq.PGconn.connect(b"host=/nonexistent-pgtopo-test port=1 connect_timeout=1")
    try:
        if "\x00" in password or any(0xD800 <= ord(c) <= 0xDFFF for c in password):
            return  # not a password libpq can take (a C string of UTF-8)
        assert scram.matches(password, made_by_libpq(conn, password))
    finally:
        conn.finish()


@pytest.mark.parametrize("stored", [
    None, "", "md5" + "0" * 32, "app-secret-1", "SCRAM-SHA-256$", "SCRAM-SHA-256$4096:salt$a:b",
    RECORDED.replace("4096", "0"), RECORDED.replace("4096", "99999999999"), RECORDED.replace("4096", "x"),
    RECORDED.replace("$4096:", "$4096:!"), RECORDED[:-4], RECORDED.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
    RECORDED + "$extra",
])
def test_what_is_not_a_verifier_of_the_password_never_matches(stored: str | None) -> None:
    assert not scram.matches("app-secret-1", stored)


def test_a_verifier_with_another_iteration_count_is_computed_with_it() -> None:
    """The count and salt are the verifier's own: one made with 4096 differs at 4097."""
    salted = RECORDED.replace("$4096:", "$4097:")
    assert not scram.matches("app-secret-1", salted)
