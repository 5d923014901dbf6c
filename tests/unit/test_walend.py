"""pg_control and pg_waldump output, read from files recorded on PostgreSQL 15 and 17 (an initdb,
a table, a crash): where a stopped node's WAL ends, and what its pg_control says."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtopo import pgcontrol, walend

DATA = Path(__file__).parent / "data"

# pg_controldata of the recorded files (tests/unit/data/pg_controldata.N.txt)
CONTROL = {15: (7713798683087818767, 0x15261F0), 17: (7713798705475076111, 0x152F500)}
# where pg_waldump found the first invalid record after the crash: the end of the WAL
WAL_END = {15: 0x15261F0, 17: 0x152F500}


@pytest.mark.parametrize("major", [15, 17])
def test_pg_control_header(major: int) -> None:
    control = pgcontrol.parse((DATA / f"pg_control.{major}").read_bytes())
    assert control is not None
    assert (control.system_identifier, control.checkpoint) == CONTROL[major]
    assert control.redo == control.checkpoint and control.timeline == 1  # a shutdown checkpoint
    assert control.state == pgcontrol.SHUT_DOWN and control.was_primary and control.cleanly_shut_down
    assert control.state_name == "shut down"
    # pg_controldata of the same file: max_connections setting 100, max_worker_processes 8,
    # max_wal_senders 10, max_prepared_xacts 0, max_locks_per_xact 64
    assert control.limits == {"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 10,
                              "max_prepared_transactions": 0, "max_locks_per_transaction": 64}


def test_pg_control_too_short_is_none() -> None:
    assert pgcontrol.parse(b"\0" * 40) is None


@pytest.mark.parametrize("major", [15, 17])
def test_wal_end_from_recorded_waldump_output(major: int) -> None:
    found = walend.parse((DATA / f"waldump.{major}.txt").read_text())
    assert found == walend.WalEnd(timeline=1, end=WAL_END[major], history=())


def test_a_record_crossing_pages_ends_past_the_page_headers_it_crosses() -> None:
    assert walend.record_end(0x1000, 24) == 0x1018
    assert walend.record_end(0x1000, 21) == 0x1018  # MAXALIGNed
    assert walend.record_end(0x1FF0, 32) == 0x2000 + 24 + 16  # a short header at the page boundary
    seg = walend.SEGMENT
    assert walend.record_end(seg - 16, 32) == seg + 40 + 16  # a long header at a segment start


def test_waldump_output_with_a_newer_timeline_and_its_history() -> None:
    text = ("timeline 2\nrmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03000148, prev "
            "0/03000110, desc: CHECKPOINT_SHUTDOWN\nhistory\n1\t0/3000110\tno recovery target specified\n")
    assert walend.parse(text) == walend.WalEnd(2, 0x3000148 + 120, ((1, 0x3000110),))
    assert walend.parse("timeline 1\n") == walend.WalEnd(1, None)  # no valid record: end unknown
    assert walend.parse("sh: 1: pg_waldump: not found\n") is None


def test_a_wal_switch_ends_the_wal_at_the_next_segment() -> None:
    """Recorded after a base backup (its end switches WAL segments) and a kill: the WAL goes on at
    0/3000000, where the standby that streamed it stands, not after the switch record's 24 bytes
    (which made the standby look 16 MB ahead of the stopped primary, a false refusal)."""
    found = walend.parse((DATA / "waldump-switch.17.txt").read_text())
    assert found is not None and found.end == 0x3000000 and found.timeline == 1


def test_why_a_wal_end_was_not_found_is_said_in_pg_waldump_s_words() -> None:
    output = ("timeline 3\nstart 0/5A000000, newest segment 00000003000000000000005A\n"
              "stopped pg_waldump: error: could not find a valid record after 0/5A000000\n")
    assert walend.parse(output) == walend.WalEnd(3, None)
    assert walend.why_no_end(output) == ("pg_waldump found no valid record (start 0/5A000000, newest segment "
                                         "00000003000000000000005A; it said: pg_waldump: error: could not find a "
                                         "valid record after 0/5A000000)")
    assert walend.why_no_end("sh: 1: pg_waldump: not found\n") == \
        "the job printed no timeline: sh: 1: pg_waldump: not found"
