"""Facts from a PGDATA's global/pg_control, read as bytes without starting Postgres.  Pure.

Called by observe.py (which cluster a volume holds, whether it was a primary, where its last
checkpoint is) and switch.py (the shutdown checkpoint of a primary being switched over).  The
header layout used here (system identifier, control version, catalog version, state, time,
checkpoint, then the checkpoint's redo pointer and timeline) has not changed since PostgreSQL 9.5;
tests/unit/test_walend.py checks it on files recorded from 15 and 17.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# DBState in pg_control.h
SHUT_DOWN = 1
SHUT_DOWN_IN_RECOVERY = 2
SHUTTING_DOWN = 3
IN_CRASH_RECOVERY = 4
IN_ARCHIVE_RECOVERY = 5
IN_PRODUCTION = 6
# states only a server that ran as a primary (or was about to) leaves behind
PRIMARY_STATES = frozenset({SHUT_DOWN, SHUTTING_DOWN, IN_CRASH_RECOVERY, IN_PRODUCTION})
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
    sysid, _version, _catalog, state = struct.unpack_from("<QIIi", raw, 0)
    checkpoint, redo, timeline = struct.unpack_from("<QQI", raw, 32)
    return ControlData(system_identifier=sysid, state=state, checkpoint=checkpoint, redo=redo, timeline=timeline)
