"""Facts from a PGDATA's global/pg_control, read as bytes without starting Postgres.  Pure.

Called by observe.py (which cluster a volume holds) and execute.py (the shutdown checkpoint of
a primary being switched over).  The header layout used here (system identifier, control
version, catalog version, state, time, checkpoint) is the same in PostgreSQL 13 to 17.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SHUT_DOWN = 1
SHUT_DOWN_IN_RECOVERY = 2


@dataclass(frozen=True)
class ControlData:
    system_identifier: int
    state: int  # DBState: 1 shut down, 2 shut down in recovery, 6 in production, ...
    checkpoint: int  # LSN of the latest checkpoint record

    @property
    def cleanly_shut_down(self) -> bool:
        return self.state in (SHUT_DOWN, SHUT_DOWN_IN_RECOVERY)


def parse(raw: bytes) -> ControlData | None:
    """The header of pg_control (little-endian hosts, as Docker's are); None if it is too short."""
    if len(raw) < 40:
        return None
    sysid, _version, _catalog, state = struct.unpack_from("<QIIi", raw, 0)
    (checkpoint,) = struct.unpack_from("<Q", raw, 32)
    return ControlData(system_identifier=sysid, state=state, checkpoint=checkpoint)
