"""The read-only probe observation runs on every server: one connection, one round trip.

Called by observe.py (in parallel over the nodes) and by execute.py (to check a clone source).
Everything comes back from a single statement, typed by the driver (JSON is decoded by psycopg),
so a no-op `diff` costs one connection and one query per node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgtopo.labels import node_of_host
from pgtopo.observed import CAPACITY_SETTINGS, HOT_STANDBY_SETTINGS, Downstream, PgFacts, Slot, WalReceiver
from pgtopo.pg_ops import Endpoint, column_lsn, run
from pgtopo.timelines import parse_history

if TYPE_CHECKING:
    import psycopg

# A standby's timeline: the one it streams on, else the newest its pg_wal holds (what it has
# received and will replay), never the last restartpoint's (which lags behind timeline switches).
PROBE_SQL = """
WITH pos AS (
  SELECT pg_is_in_recovery() AS standby,
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn,
         CASE WHEN pg_is_in_recovery()
              THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'),
                            (SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir()
                             WHERE name ~ '^[0-9A-F]{24}$'),
                            (SELECT timeline_id FROM pg_control_checkpoint()))
              ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli
)
SELECT current_setting('server_version_num')::int,
       (SELECT system_identifier FROM pg_control_system()),
       pos.standby, pos.lsn::text, pos.tli,
       ARRAY(SELECT name FROM pg_settings WHERE pending_restart ORDER BY name),
       (SELECT json_build_array(status, sender_host, slot_name) FROM pg_stat_wal_receiver),
       (SELECT coalesce(json_agg(json_build_array(application_name, state, (pos.lsn - replay_lsn)::bigint, sync_state)
                                 ORDER BY application_name), '[]') FROM pg_stat_replication),
       (SELECT coalesce(json_agg(slot_name ORDER BY slot_name), '[]')
          FROM pg_replication_slots WHERE slot_type = 'physical'),
       (SELECT coalesce(json_agg(json_build_array(name, setting) ORDER BY seqno), '[]') FROM pg_file_settings
          WHERE sourcefile LIKE '%%postgresql.auto.conf' AND error IS NULL),
       ARRAY(SELECT rolname FROM pg_roles WHERE rolreplication AND rolcanlogin ORDER BY rolname),
       ARRAY(SELECT name FROM pg_settings WHERE context = 'postmaster' ORDER BY name),
       (SELECT coalesce(json_object_agg(name, setting::bigint), '{}') FROM pg_settings WHERE name = ANY(%s)),
       CASE WHEN pos.standby THEN pg_last_wal_receive_lsn()::text END,
       (pg_stat_file('standby.signal', true)).size IS NOT NULL,
       CASE WHEN pos.tli > 1 THEN pg_read_file('pg_wal/' || lpad(upper(to_hex(pos.tli)), 8, '0') || '.history',
                                               0, 10485760, true) END,
       (SELECT min(('x' || substr(name, 9, 8))::bit(32)::bigint * 4294967296
                   + ('x' || substr(name, 17, 8))::bit(32)::bigint
                     * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'))
          FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'),
       (SELECT coalesce(json_object_agg(name, current_setting(name)), '{}') FROM pg_settings
          WHERE pending_restart AND sourcefile LIKE '%%postgresql.auto.conf'),
       CASE WHEN pos.standby THEN pg_is_wal_replay_paused() END
FROM pos
"""


def probe(ep: Endpoint) -> PgFacts:
    """Read-only facts about one server."""

    def query(conn: "psycopg.Connection") -> PgFacts:
        row = conn.execute(PROBE_SQL, (sorted(set(HOT_STANDBY_SETTINGS) | set(CAPACITY_SETTINGS)),)).fetchone()
        assert row is not None
        return facts(row, ep.cluster)

    return run(ep, query, "probe")


def facts(row: tuple[Any, ...], cluster: str = "") -> PgFacts:
    (version, sysid, standby, lsn, tli, pending, recv, downs, slots, auto, roles, restart, limits, received, fenced,
     history, oldest, running, paused) = row
    return PgFacts(
        server_version=version,
        system_identifier=int(sysid),
        in_recovery=bool(standby),
        timeline=tli,
        lsn=column_lsn(lsn),
        receive_lsn=column_lsn(received),
        fenced=bool(fenced),
        receiver=WalReceiver(status=recv[0], upstream=node_of_host(recv[1], cluster), slot=recv[2]) if recv else None,
        downstreams=tuple(Downstream(a, s, int(lag) if lag is not None else None, sync) for a, s, lag, sync in downs),
        slots=tuple(Slot(name) for name in slots),
        pending_restart=tuple(pending or ()),
        auto_conf={name: setting for name, setting in auto},
        running_conf=dict(running or {}),
        replication_roles=tuple(roles or ()),
        restart_settings=frozenset(restart or ()),
        history=parse_history(history) if history else (),
        limits={name: int(value) for name, value in limits.items()},
        oldest_wal=int(oldest) if oldest is not None else None,
        replay_paused=bool(paused),
    )
