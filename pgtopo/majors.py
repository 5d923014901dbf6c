"""Which PostgreSQL major an image runs and which one a node's data was made by.  Pure.

Called by observe.py (the image's from its configuration, else from `postgres -V` in a job; a
stopped node's from the PG_VERSION file of its volume; a running one's from its server) and
plan.py, which refuses to start a server on data of another major: PostgreSQL refuses such a data
directory, so the container would restart forever (a server never reads data of a newer major, and
an older major's data needs pg_upgrade, which pgtopo does not run yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The Debian packages' layout, which the official Debian-based images and pgtopo's own follow
_DEBIAN_BIN = re.compile(r"/usr/lib/postgresql/(\d+)/bin")
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def of_image_env(env: Iterable[str]) -> int | None:
    """From an image's environment (`Config.Env`): the official images' PG_MAJOR, else the Debian
    server directory on PATH; None when neither says."""
    values = dict(item.split("=", 1) for item in env if "=" in item)
    if values.get("PG_MAJOR", "").isdigit():
        return int(values["PG_MAJOR"])
    found = _DEBIAN_BIN.search(values.get("PATH", ""))
    return int(found.group(1)) if found else None


def of_version_output(text: str) -> int | None:
    """From `postgres -V`: "postgres (PostgreSQL) 18.1 (Debian 18.1-1)" is 18."""
    found = _VERSION.search(text)
    return int(found.group(1)) if found else None


def of_pg_version_file(raw: bytes | None) -> int | None:
    """From a PGDATA's PG_VERSION ("18\\n"; "9.6" before PostgreSQL 10 is 9)."""
    if raw is None:
        return None
    first = raw.decode(errors="replace").strip().split(".", 1)[0]
    return int(first) if first.isdigit() else None


def of_server_version(number: int) -> int:
    """From server_version_num (180001 is 18)."""
    return number // 10000
