"""Observation of WAL archiving: the primary's pg_stat_archiver, one connection, one query.

Called by observe.py, on the file's primary, only for a cluster whose file has a `backup:` block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgtopo.backup.archiving import ArchiverFacts
from pgtopo.errors import PgtopoError
from pgtopo.pg_ops import Endpoint, run

if TYPE_CHECKING:
    import psycopg

ARCHIVER_SQL = """
SELECT current_setting('archive_mode'), archived_count, last_archived_wal, last_archived_time,
       failed_count, last_failed_wal, last_failed_time
FROM pg_stat_archiver
"""


def read(ep: Endpoint | None) -> ArchiverFacts | None:
    """The server's archiver statistics; None when it cannot be read (no endpoint, no answer)."""
    if ep is None:
        return None

    def query(conn: "psycopg.Connection") -> ArchiverFacts:
        row = conn.execute(ARCHIVER_SQL).fetchone()
        assert row is not None
        mode, archived, last_wal, last_time, failed, failed_wal, failed_time = row
        return ArchiverFacts(node=ep.node, archive_mode=mode, archived_count=archived, last_archived_wal=last_wal,
                             last_archived_time=last_time, failed_count=failed, last_failed_wal=failed_wal,
                             last_failed_time=failed_time)

    try:
        return run(ep, query, "read pg_stat_archiver")
    except PgtopoError:
        return None
