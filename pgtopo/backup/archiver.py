"""Observation of WAL archiving: the primary's pg_stat_archiver, one connection, one query.

Called by observe.py, on the file's primary, only for a cluster whose file has a `backup:` block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgtopo.backup import archiving, layout, pgbackrest
from pgtopo.backup.archiving import ArchiverFacts
from pgtopo.errors import PgtopoError
from pgtopo.pg_ops import Endpoint, run

if TYPE_CHECKING:
    import psycopg

# Beside the statistics, the newest complete backup, read by the server from the repository it
# mounts (files of its own user; nothing when absent): the native method's newest record, and
# pgBackRest's backup.info.
ARCHIVER_SQL = """
SELECT current_setting('archive_mode'), archived_count, last_archived_wal, last_archived_time,
       failed_count, last_failed_wal, last_failed_time,
       (SELECT pg_read_file(%(base)s || '/' || d || '/' || %(record)s, 0, 65536, true)
          FROM pg_ls_dir(%(base)s, true, false) AS d
         WHERE d ~ '^[0-9]{8}T[0-9]{6}Z$' AND (pg_stat_file(%(base)s || '/' || d || '/' || %(record)s, true)).size IS NOT NULL
         ORDER BY d DESC LIMIT 1),
       pg_read_file(%(info)s, 0, 16777216, true)
FROM pg_stat_archiver
"""


def read(ep: Endpoint | None, cluster: str = "") -> ArchiverFacts | None:
    """The server's archiver statistics and the newest backup; None when they cannot be read (no
    endpoint, no answer)."""
    if ep is None:
        return None
    paths = {"base": layout.base_dir(cluster), "record": layout.MANIFEST,
             "info": f"{pgbackrest.repo_path(cluster, layout.REPO_MOUNT)}/backup/{cluster}/backup.info"}

    def query(conn: "psycopg.Connection") -> ArchiverFacts:
        row = conn.execute(ARCHIVER_SQL, paths).fetchone()
        assert row is not None
        mode, archived, last_wal, last_time, failed, failed_wal, failed_time, record, info = row
        newest = archiving.newest_backup(record, info)
        return ArchiverFacts(node=ep.node, archive_mode=mode, archived_count=archived, last_archived_wal=last_wal,
                             last_archived_time=last_time, failed_count=failed, last_failed_wal=failed_wal,
                             last_failed_time=failed_time, newest_backup=newest)

    try:
        return run(ep, query, "read pg_stat_archiver")
    except PgtopoError:
        return None
