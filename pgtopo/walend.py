"""Where a stopped node's WAL ends, from the output of desired.WALDUMP_SCRIPT.  Pure.

Called by observe.read_wal_ends.  pg_waldump prints one line per record ("rmgr: ... len
(rec/tot): 54/ 254, tx: ..., lsn: 0/01000028, prev ..."); the WAL ends where the last valid
record ends: its start plus its total length, plus the page headers it crosses, MAXALIGNed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgtopo.timelines import History, lsn_int, parse_history

PAGE = 8192  # XLOG_BLCKSZ
SEGMENT = 16 * 1024 * 1024  # initdb's default, which pgtopo never changes
SHORT_HEADER = 24  # MAXALIGN(sizeof(XLogPageHeaderData))
LONG_HEADER = 40  # MAXALIGN(sizeof(XLogLongPageHeaderData)), at the start of each segment
RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-Fa-f]+/[0-9A-Fa-f]+).*desc: (\S*)")


@dataclass(frozen=True)
class WalEnd:
    timeline: int
    end: int | None  # None: no valid record found from the starting point
    history: History = ()


def record_end(start: int, total: int) -> int:
    """The position right after a record of `total` bytes that starts at `start`."""
    pos, left = start, total
    while left > 0:
        if pos % PAGE == 0:
            pos += LONG_HEADER if pos % SEGMENT == 0 else SHORT_HEADER
        step = min(PAGE - pos % PAGE, left)
        pos += step
        left -= step
    return (pos + 7) & ~7


def why_no_end(output: str) -> str:
    """Why `output` gives no end: pg_waldump's last words, where it started; else the output's end."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    start = next((line for line in lines if line.startswith("start ")), None)
    stopped = next((line[len("stopped "):] for line in lines if line.startswith("stopped ")), None)
    if start is None:
        return f"the job printed no timeline: {' '.join(lines[-2:])[-200:] or '(no output)'}"
    return f"pg_waldump found no valid record ({start}; it said: {(stopped or '(nothing)')[-200:]})"


def parse(output: str) -> WalEnd | None:
    """None when the output does not even name a timeline (the job did not run as expected)."""
    lines = output.splitlines()
    timeline = next((int(line.split()[1]) for line in lines if line.startswith("timeline ")), None)
    if timeline is None:
        return None
    end = None
    for line in lines:
        match = RECORD.search(line) if line.startswith("rmgr:") else None
        if match:
            start = lsn_int(match.group(2))
            # A WAL switch (pg_switch_wal, the end of a base backup) fills the rest of its
            # segment: the WAL goes on at the next one, where a standby's receive position is.
            end = (start // SEGMENT + 1) * SEGMENT if match.group(3) == "SWITCH" else record_end(start, int(match.group(1)))
    history: History = ()
    if "history" in lines:
        history = parse_history("\n".join(lines[lines.index("history") + 1:]))
    return WalEnd(timeline, end, history)
