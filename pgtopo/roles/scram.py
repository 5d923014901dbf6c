"""Does a password match a stored SCRAM-SHA-256 verifier?  Pure: hashlib and hmac (RFC 5802, 7677).

Called by roles/read.py, on the verifier it read from pg_authid, so that observation carries a
yes or no and never the password or the verifier.  The password is prepared as PostgreSQL and
libpq prepare it (SASLprep, RFC 4013; a password SASLprep refuses is used as its bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import stringprep
import unicodedata

PREFIX = "SCRAM-SHA-256$"
MAX_ITERATIONS = 10_000_000  # far beyond any server's (4096 by default); a bigger count is not a verifier of ours


def matches(password: str, verifier: str | None) -> bool:
    """True when `verifier` (pg_authid.rolpassword) is a SCRAM-SHA-256 verifier of `password`;
    False for anything else (none, md5, damaged)."""
    parsed = _parse(verifier)
    if parsed is None:
        return False
    iterations, salt, stored_key, server_key = parsed
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    ours_stored = hashlib.sha256(client_key).digest()
    ours_server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hmac.compare_digest(ours_stored, stored_key) & hmac.compare_digest(ours_server, server_key)


def _parse(verifier: str | None) -> tuple[int, bytes, bytes, bytes] | None:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), or None."""
    if verifier is None or not verifier.startswith(PREFIX):
        return None
    try:
        params, keys = verifier[len(PREFIX):].split("$")
        count, salt = params.split(":")
        stored, server = keys.split(":")
        iterations = int(count)
        decoded = [base64.b64decode(part, validate=True) for part in (salt, stored, server)]
    except (ValueError, binascii.Error):
        return None
    if not 0 < iterations <= MAX_ITERATIONS or len(decoded[1]) != 32 or len(decoded[2]) != 32:
        return None
    return iterations, decoded[0], decoded[1], decoded[2]


def saslprep(password: str) -> bytes:
    """The bytes PostgreSQL hashes: the password after SASLprep (RFC 4013), or as it is when
    SASLprep refuses it (as pg_saslprep does: a password it cannot prepare is used raw)."""
    raw = password.encode()
    if password.isascii():
        return raw  # as pg_saslprep: ASCII needs no preparing
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch for ch in password
                     if not stringprep.in_table_b1(ch))
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(_prohibited(ch) for ch in prepared) or not _bidi_ok(prepared):
        return raw
    return prepared.encode()


def _prohibited(ch: str) -> bool:
    return any(check(ch) for check in (
        stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
        stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
        stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1))


def _bidi_ok(text: str) -> bool:
    """RFC 3454 section 6: right-to-left text is all of one direction, first and last characters included."""
    rtl = [stringprep.in_table_d1(ch) for ch in text]
    if not any(rtl):
        return True
    return not any(stringprep.in_table_d2(ch) for ch in text) and rtl[0] and rtl[-1]
