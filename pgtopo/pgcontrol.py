"""Facts from a PGDATA's global/pg_control, read as bytes without starting Postgres.  Pure.

Called by observe.py (which cluster a volume holds, whether it was a primary, where its last
checkpoint is) and switch.py (the shutdown checkpoint of a primary being switched over).  The
header layout used here (system identifier, control version, catalog version, state, time,
checkpoint, then the checkpoint's redo pointer and timeline) has not changed since PostgreSQL 9.5;
the hot-standby values (`limits`) are read only from the layouts of PostgreSQL 13 to 18;
tests/unit/test_walend.py checks it on files recorded from 13, 15, 17 and 18.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

# DBState in pg_control.h
SHUT_DOWN = 1
SHUT_DOWN_IN_RECOVERY = 2
SHUTTING_DOWN = 3
IN_CRASH_RECOVERY = 4
IN_ARCHIVE_RECOVERY = 5
IN_PRODUCTION = 6
# states only a server that ran as a primary (or was about to) leaves behind
PRIMARY_STATES = frozenset({SHUT_DOWN, SHUTTING_DOWN, IN_CRASH_RECOVERY, IN_PRODUCTION})
# The values a standby's settings are checked against when it starts (ControlFileData's MaxConnections,
# max_worker_processes, max_wal_senders, max_prepared_xacts, max_locks_per_xact: five int32s), by
# PG_CONTROL_VERSION: 1300 is PostgreSQL 13 to 16, 1700 is 17, 1800 is 18 (which added a field
# after them, default_char_signedness); other layouts are not read.
LIMITS = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
          "max_locks_per_transaction")
LIMITS_OFFSET = {1300: 180, 1700: 180, 1800: 180}
STATE_NAMES = {SHUT_DOWN: "shut down", SHUT_DOWN_IN_RECOVERY: "shut down in recovery",
               SHUTTING_DOWN: "shutting down", IN_CRASH_RECOVERY: "in crash recovery",
               IN_ARCHIVE_RECOVERY: "in archive recovery", IN_PRODUCTION: "in production"}


@dataclass(frozen=True)
class ControlData:
    system_identifier: int
    state: int  # DBState: 1 shut down, 2 shut down in recovery, 6 in production, ...
    checkpoint: int  # LSN of the latest checkpoint record
    redo: int = 0  # where replay of that checkpoint starts
    timeline: int = 0  # the timeline of that checkpoint
    # LIMITS as last recorded (a standby: its primary's, as of the last parameter change it replayed)
    limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def cleanly_shut_down(self) -> bool:
        return self.state in (SHUT_DOWN, SHUT_DOWN_IN_RECOVERY)

    @property
    def was_primary(self) -> bool:
        """Started as it is, this data would come up accepting writes (unless fenced)."""
        return self.state in PRIMARY_STATES

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, f"state {self.state}")


def parse(raw: bytes) -> ControlData | None:
    """The header of pg_control (little-endian hosts, as Docker's are); None if it is too short."""
    if len(raw) < 56:
        return None
    sysid, version, _catalog, state = struct.unpack_from("<QIIi", raw, 0)
    checkpoint, redo, timeline = struct.unpack_from("<QQI", raw, 32)
    offset = LIMITS_OFFSET.get(version)
    limits = {} if offset is None or len(raw) < offset + 20 else dict(zip(LIMITS, struct.unpack_from("<5i", raw, offset), strict=True))
    return ControlData(system_identifier=sysid, state=state, checkpoint=checkpoint, redo=redo, timeline=timeline,
                       limits=limits)
