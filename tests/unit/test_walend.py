"""pg_control and pg_waldump output, read from files recorded on PostgreSQL 13, 15, 17 and 18 (an initdb,
a table, a crash): where a stopped node's WAL ends, and what its pg_control says."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtopo import pgcontrol, walend

DATA = Path(__file__).parent / "data"

# pg_controldata of the recorded files (tests/unit/data/pg_controldata.N.txt)
CONTROL = {13: (7714008987414941711, 0x15CEB48), 15: (7713798683087818767, 0x15261F0), 17: (7713798705475076111, 0x152F500),
           18: (7713991639021137935, 0x1765DA0)}
# where pg_waldump found the first invalid record after the crash: the end of the WAL
WAL_END = {13: 0x15F0208, 15: 0x15261F0, 17: 0x152F500, 18: 0x17963C0}


@pytest.mark.parametrize("major", [13, 15, 17, 18])
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


@pytest.mark.parametrize("major", [13, 15, 17, 18])
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


@pytest.mark.parametrize("major", [13, 15, 17, 18])
def test_pg_control_is_read_from_its_first_bytes_when_that_is_all_there_is(major: int) -> None:
    """A pg_control cut short (a volume being written, a damaged file): the header is read from
    its first 56 bytes; the hot-standby limits only when all five are there, else none."""
    raw = (DATA / f"pg_control.{major}").read_bytes()
    header = pgcontrol.parse(raw[:56])
    assert header is not None and (header.system_identifier, header.checkpoint) == CONTROL[major]
    assert header.limits == {}
    offset = pgcontrol.LIMITS_OFFSET[{13: 1300, 15: 1300, 17: 1700, 18: 1800}[major]]  # by PG_CONTROL_VERSION
    assert pgcontrol.parse(raw[:offset + 20]).limits["max_locks_per_transaction"] == 64  # type: ignore[union-attr]
    assert pgcontrol.parse(raw[:offset + 19]).limits == {}  # type: ignore[union-attr]
    assert pgcontrol.parse(raw[:55]) is None


def test_a_record_whose_last_byte_is_on_the_next_page_ends_past_that_page_s_header() -> None:
    start = 2 * walend.PAGE - 40  # 40 bytes left on the page: a 41-byte record puts 1 byte on the next
    assert walend.record_end(start, 41) == 2 * walend.PAGE + walend.SHORT_HEADER + 8  # 1 byte, MAXALIGNed


def test_waldump_output_with_a_history_of_several_timelines() -> None:
    text = ("timeline 3\nrmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/05000148, prev "
            "0/05000110, desc: CHECKPOINT_SHUTDOWN\nhistory\n1\t0/3000110\tno recovery target specified\n"
            "2\t0/5000110\tno recovery target specified\n")
    assert walend.parse(text) == walend.WalEnd(3, 0x5000148 + 120, ((1, 0x3000110), (2, 0x5000110)))


def test_a_system_identifier_with_its_top_bit_set_reads_as_postgresql_prints_it() -> None:
    """initdb builds it from the clock's seconds shifted left 32 bits: from 2038 on the top bit is set,
    and pg_controldata prints it unsigned."""
    raw = bytearray((DATA / "pg_control.17").read_bytes())
    raw[0:8] = (2**63 + 5).to_bytes(8, "little")
    control = pgcontrol.parse(bytes(raw))
    assert control is not None and control.system_identifier == 2**63 + 5


def test_why_no_end_quotes_the_end_of_what_the_job_said() -> None:
    assert walend.why_no_end("") == "the job printed no timeline: (no output)"
    assert walend.why_no_end("one\ntwo\nthree\n") == "the job printed no timeline: two three"
    long = "x" * 150
    assert walend.why_no_end(f"{long}a\n{long}b\n") == f"the job printed no timeline: {(long + 'a ' + long + 'b')[-200:]}"
    assert walend.why_no_end("timeline 3\nstart 0/5A000000\n") == (
        "pg_waldump found no valid record (start 0/5A000000; it said: (nothing))")
    said = "e" * 300
    assert walend.why_no_end(f"timeline 3\nstart 0/5A000000\nstopped {said}\n") == (
        f"pg_waldump found no valid record (start 0/5A000000; it said: {said[-200:]})")
