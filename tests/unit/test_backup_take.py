"""`pgtopo backup`'s pure parts: the label, what backup_label and backup_manifest say, the source
chosen, whether `--if-due` takes one, what retention keeps and from which WAL segment on, what the
listing job printed, and the scripts of its jobs (POSIX sh)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator

from pgtopo.backup import jobs, policy
from pgtopo.backup.document import Outcome, backups_document, outcome_lines, recoverable_window, text_lines
from pgtopo.backup.record import BackupRecord, label_of, parse_backup_label, read_record, record_text, wal_end
from pgtopo.backup.spec import FullRetention, WindowRetention
from pgtopo.errors import PgtopoError
from pgtopo.observed import NodeFacts, WalReceiver

from .test_job_scripts import shellcheck
from .test_plan import SYSID, converged, pg_replica, topo

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BACKUP = {"repository": {"volume": "pg-backup"}}

LABEL_OF_A_STANDBY = """START WAL LOCATION: 0/4000060 (file 000000010000000000000004)
CHECKPOINT LOCATION: 0/40000B0
BACKUP METHOD: streamed
BACKUP FROM: standby
START TIME: 2026-12-01 11:31:41 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
"""
MANIFEST = json.dumps({"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
                       "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/4000060", "End-LSN": "0/4000130"}]})


def record(label: str, start: datetime, start_wal: str = "000000010000000000000004") -> BackupRecord:
    return BackupRecord(label=label, type="full", method="native", cluster="pg", source="replica",
                        backup_from="standby", start_lsn="0/4000060", start_wal=start_wal, stop_lsn="0/4000130",
                        timeline=1, start_time=start, stop_time=start + timedelta(minutes=1), size_bytes=1000,
                        system_identifier=str(SYSID), server_major=18, pgtopo_version="0.1.0")


def at(hours_ago: float, segment: int = 4) -> BackupRecord:
    start = NOW - timedelta(hours=hours_ago)
    return record(label_of(start), start, f"{1:08X}{0:08X}{segment:08X}")


def test_the_label_is_the_start_in_utc_to_the_second() -> None:
    paris = datetime(2026, 12, 1, 4, 0, 5, 999999, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert label_of(paris) == "20261201T040005Z"


def test_backup_label_gives_the_start_its_file_the_timeline_and_the_kind_of_source() -> None:
    facts = parse_backup_label(LABEL_OF_A_STANDBY)
    assert (facts.start_lsn, facts.start_wal, facts.timeline, facts.backup_from) == (
        "0/4000060", "000000010000000000000004", 1, "standby")
    primary = parse_backup_label(LABEL_OF_A_STANDBY.replace("BACKUP FROM: standby", "BACKUP FROM: primary")
                                 .replace("START TIMELINE: 1", "START TIMELINE: 12"))
    assert (primary.backup_from, primary.timeline) == ("primary", 12)
    thirteen = parse_backup_label(LABEL_OF_A_STANDBY.replace("BACKUP FROM: standby", "BACKUP FROM: master"))
    assert thirteen.backup_from == "primary"  # PostgreSQL 13's word


@pytest.mark.parametrize("missing", ["START WAL LOCATION", "START TIMELINE", "BACKUP FROM"])
def test_a_backup_label_without_a_line_it_needs_is_named(missing: str) -> None:
    text = "\n".join(line for line in LABEL_OF_A_STANDBY.splitlines() if not line.startswith(missing))
    with pytest.raises(ValueError, match=f"backup_label has no {missing} line"):
        parse_backup_label(text)


def test_the_wal_a_backup_needs_ends_on_its_newest_timeline() -> None:
    assert wal_end(MANIFEST) == "0/4000130"
    two = json.dumps({"WAL-Ranges": [{"Timeline": 2, "Start-LSN": "0/5000000", "End-LSN": "0/5000200"},
                                     {"Timeline": 1, "Start-LSN": "0/4000060", "End-LSN": "0/5000000"}]})
    assert wal_end(two) == "0/5000200"


@pytest.mark.parametrize("text", ["", "{}", '{"WAL-Ranges": []}', '{"WAL-Ranges": [{"Timeline": 1}]}',
                                  '{"WAL-Ranges": [{"Timeline": 1, "End-LSN": "nope"}]}'])
def test_a_manifest_without_a_wal_end_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="backup_manifest"):
        wal_end(text)


def test_a_record_reads_back_as_written_and_a_damaged_one_is_none() -> None:
    r = at(1)
    text = record_text(r)
    assert "\n" not in text and read_record(text) == r
    assert read_record(text[:-5]) is None
    assert read_record(text.replace('"full"', '"weekly"')) is None
    assert read_record(json.dumps({**json.loads(text), "added_later": 1})) == r  # a newer pgtopo's record


def with_backup(**block: object):
    return topo(backup={**BACKUP, **block})


def test_prefer_standby_takes_the_shallowest_streaming_standby() -> None:
    t = with_backup()
    assert policy.choose_source(t, converged(t)) == policy.Source(
        "replica", "a standby of the primary, streaming (from: prefer-standby)")


def test_a_cascaded_standby_is_taken_when_the_direct_one_does_not_stream() -> None:
    t = with_backup()
    obs = converged(t, replica=NodeFacts("replica", pg=pg_replica(t, "replica", receiver=WalReceiver(
        "waiting", "primary", "pgtopo_replica"))))
    assert policy.choose_source(t, obs) == policy.Source(
        "replica2", "a standby 2 hops from the primary, streaming (from: prefer-standby)")


def test_between_standbys_as_deep_the_first_by_name_is_taken() -> None:
    t = topo(backup=BACKUP, nodes={"primary": {}, "b": {}, "a": {}})
    assert policy.choose_source(t, converged(t)).node == "a"


@pytest.mark.parametrize("facts", [
    NodeFacts("replica"),  # does not answer
    NodeFacts("replica", pg=None, pg_error="refused"),
], ids=["silent", "refused"])
def test_without_a_streaming_standby_the_primary_is_taken(facts: NodeFacts) -> None:
    t = topo(backup=BACKUP, nodes={"primary": {}, "replica": {}})
    assert policy.choose_source(t, converged(t, replica=facts)) == policy.Source(
        "primary", "the primary: no standby streams (from: prefer-standby)")


def test_a_standby_of_another_cluster_is_never_taken() -> None:
    t = topo(backup=BACKUP, nodes={"primary": {}, "replica": {}})
    other = NodeFacts("replica", pg=pg_replica(t, "replica", system_identifier=SYSID + 1))
    assert policy.choose_source(t, converged(t, replica=other)).node == "primary"


def test_a_writer_the_file_calls_a_replica_is_never_taken() -> None:
    t = topo(backup=BACKUP, nodes={"primary": {}, "replica": {}})
    writer = NodeFacts("replica", pg=pg_replica(t, "replica", in_recovery=False))
    assert policy.choose_source(t, converged(t, replica=writer)).node == "primary"


def test_from_primary_takes_the_primary_even_with_standbys() -> None:
    t = with_backup(**{"from": "primary"})
    assert policy.choose_source(t, converged(t)) == policy.Source("primary", "the primary (from: primary)")


@pytest.mark.parametrize("facts, words", [
    (NodeFacts("primary"), "its primary primary does not answer"),
    (NodeFacts("primary", pg=pg_replica(topo(), "replica", receiver=None)), "its primary primary runs as a standby"),
])
def test_no_backup_of_a_cluster_whose_primary_is_not_one(facts: NodeFacts, words: str) -> None:
    t = with_backup()
    with pytest.raises(PgtopoError, match=words):
        policy.choose_source(t, converged(t, primary=facts))


@pytest.mark.parametrize("schedule, newest, now, due", [
    (None, NOW, NOW, True),  # no schedule: always
    ("0 3 * * *", None, NOW, True),  # no backup yet
    ("0 3 * * *", datetime(2026, 12, 1, 3, 0, 5, tzinfo=UTC), NOW, False),  # today's taken
    ("0 3 * * *", datetime(2026, 11, 30, 3, 0, 5, tzinfo=UTC), NOW, True),  # today's 03:00 has come
    ("0 3 * * *", datetime(2026, 11, 30, 3, 0, 5, tzinfo=UTC), datetime(2026, 12, 1, 2, 59, tzinfo=UTC), False),
    ("0 3 * * *", datetime(2026, 11, 30, 3, 0, 5, tzinfo=UTC), datetime(2026, 12, 1, 3, 0, tzinfo=UTC), True),
    ("*/15 * * * *", NOW - timedelta(minutes=14), NOW, True),  # 12:00 has come since 11:46
    ("*/15 * * * *", NOW, NOW + timedelta(minutes=14), False),  # 12:15 has not come yet
])
def test_if_due_follows_the_schedule_from_the_newest_backup(schedule: str | None, newest: datetime | None,
                                                            now: datetime, due: bool) -> None:
    assert policy.due(schedule, newest, now)[0] is due


def test_not_due_says_when_the_next_one_is() -> None:
    assert policy.due("0 3 * * *", datetime(2026, 12, 1, 3, 0, 5, tzinfo=UTC), NOW) == (False, (
        "not due: the newest backup started 2026-12-01 03:00:05 UTC; the next scheduled time is "
        "2026-12-02 03:00 UTC (schedule '0 3 * * *')"))
    assert policy.due(None, None, NOW)[1] == "the file has no backup.schedule: every run is due"


def labels(records: list[BackupRecord]) -> list[str]:
    return [r.label for r in records]


def test_full_n_keeps_the_n_newest() -> None:
    records = [at(3), at(1), at(2)]
    keep = policy.kept(records, FullRetention(full=2), NOW, at(1).label)
    assert labels(keep) == labels([at(2), at(1)])
    assert labels(policy.expired(records, keep)) == [at(3).label]
    assert labels(policy.kept(records, FullRetention(full=5), NOW, at(1).label)) == labels([at(3), at(2), at(1)])


def test_a_window_keeps_those_started_in_it_and_the_newest_one_before_it() -> None:
    records = [at(24 * 20), at(24 * 15), at(24 * 10), at(24), at(0)]
    keep = policy.kept(records, WindowRetention(window="14d"), NOW, at(0).label)
    assert labels(keep) == labels([at(24 * 15), at(24 * 10), at(24), at(0)])
    assert labels(policy.expired(records, keep)) == [at(24 * 20).label]
    hours = policy.kept(records, WindowRetention(window="36h"), NOW, at(0).label)
    assert labels(hours) == labels([at(24 * 10), at(24), at(0)])


def test_the_backup_just_taken_is_never_expired() -> None:
    # a clock set back: the backup just taken sorts before older ones, and a window ends before it
    records = [at(1), at(2), at(-3)]
    assert at(1).label in labels(policy.kept(records, FullRetention(full=1), NOW, at(1).label))
    assert at(24 * 30).label in labels(policy.kept([at(24 * 30)], WindowRetention(window="1h"), NOW,
                                                   at(24 * 30).label))


def test_wal_is_kept_from_the_oldest_kept_backups_start_segment() -> None:
    keep = [at(2, segment=0x20), at(1, segment=0x31)]
    assert policy.wal_cutoff(keep) == "000000010000000000000020"
    assert policy.wal_cutoff([]) is None


def test_the_listing_reads_complete_backups_oldest_first_the_removed_and_the_newest_wal() -> None:
    out = "\n".join([
        "pgtopo-removed 20261201T110000Z.partial",
        f"pgtopo-record {record_text(at(1))}",
        f"pgtopo-record {record_text(at(2))}",
        "pgtopo-record {damaged",
        "pgtopo-wal 000000010000000000000007 1796122800",
        "something else the image printed",
    ])
    contents = jobs.parse_list_output(out)
    assert labels(list(contents.records)) == labels([at(2), at(1)])
    assert contents.removed == ("20261201T110000Z.partial",)
    assert contents.damaged == 1
    assert (contents.newest_wal, contents.newest_wal_time) == (
        "000000010000000000000007", datetime.fromtimestamp(1796122800, UTC))
    assert jobs.parse_list_output("") == jobs.Contents()


@pytest.mark.parametrize("name", ["BACKUP_SCRIPT", "LIST_SCRIPT", "FINISH_SCRIPT", "EXPIRE_SCRIPT",
                                  "FINISH_AND_EXPIRE_SCRIPT"])
def test_a_backup_job_script_is_posix_sh(name: str) -> None:
    found = shellcheck(getattr(jobs, name))
    assert found.returncode == 0, f"{name}:\n{found.stdout}"


def test_the_backup_job_is_a_tethered_helper_on_the_network_with_the_passfile_read_only() -> None:
    t = with_backup()
    spec = jobs.backup_job(t, "replica", "20261201T120000Z")
    assert spec.stdin and spec.network == t.network_name and spec.labels["io.pgtopo.role"] == "helper"
    assert spec.command[4] == "/var/lib/pgtopo-backup/pg/base/20261201T120000Z.partial"
    assert "host=pg-replica" in spec.command[5] and "user=repuser" in spec.command[5]
    assert [(m.target, m.read_only) for m in spec.mounts] == [("/var/lib/pgtopo-backup", False),
                                                               ("/run/pgtopo", True)]
    assert jobs.list_job(t, tidy=False).mounts[0].read_only and not jobs.list_job(t, tidy=True).mounts[0].read_only


def test_the_outcome_says_size_duration_rate_and_what_retention_did() -> None:
    r = record("20261201T120000Z", NOW).model_copy(update={"size_bytes": 50_000_000})
    lines = outcome_lines(Outcome(True, "", r, 2.0, expired=("20261130T120000Z",), cutoff="000000010000000000000004",
                                  wal_removed=3, kept=("a", "b"), retention="full: 2"))
    assert lines == [
        "backup 20261201T120000Z taken from replica (standby): 50.0 MB in 2.0 s (25.0 MB/s); "
        "WAL 0/4000060 to 0/4000130 on timeline 1",
        "retention (full: 2): 2 backup(s) kept, expired 20261130T120000Z",
        "removed 3 archived WAL file(s) before 000000010000000000000004",
    ]
    assert outcome_lines(Outcome(False, "not due: soon")) == ["not due: soon"]


def test_the_window_runs_from_the_oldest_backups_end_to_the_newest_wal_archived() -> None:
    older, newer = at(5), at(1)
    wal, archived = NOW - timedelta(minutes=30), NOW - timedelta(minutes=2)
    window = recoverable_window([newer, older], wal, archived)
    assert window is not None and (window.start, window.end, window.end_from) == (older.stop_time, archived, "archiver")
    assert recoverable_window([older], wal, None).end_from == "wal-file"  # type: ignore[union-attr]
    late = recoverable_window([older, newer], NOW - timedelta(hours=3), None)  # no WAL since the newest backup
    assert late is not None and (late.end, late.end_from) == (newer.stop_time, "backup")
    assert recoverable_window([], wal, archived) is None


def test_the_backups_document_validates_against_its_checked_in_schema() -> None:
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas/backups.schema.json").read_text())
    records = [at(5), at(1)]
    doc = backups_document("pg", "volume pg-backup", records, "000000010000000000000007",
                           recoverable_window(records, None, NOW))
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(json.loads(doc.to_json()))
    empty = backups_document("pg", "volume pg-backup", [], None, None)
    Draft202012Validator(schema).validate(json.loads(empty.to_json()))
    assert text_lines(empty) == ["cluster pg: no complete backup in volume pg-backup"]
    lines = text_lines(doc)
    assert lines[0].split() == ["LABEL", "TYPE", "START", "LSN", "STOP", "LSN", "TL", "STARTED", "(UTC)",
                                "STOPPED", "(UTC)", "SIZE", "SOURCE"]
    assert lines[1].startswith(at(5).label) and lines[2].startswith(at(1).label)
    assert lines[-1] == (f"recoverable: {at(5).stop_time:%Y-%m-%d %H:%M:%S} to {NOW:%Y-%m-%d %H:%M:%S} UTC "
                         "(last WAL archived, as the primary reports it)")


# backup_label and the end of a backup_manifest as PostgreSQL writes them (a standby promoted
# during the backup: two WAL ranges)
PG_LABEL = ("START WAL LOCATION: 0/4000060 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000098\n"
         "BACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-12-01 12:00:00 UTC\n"
         "PG_LABEL: pg_basebackup base backup\nSTART TIMELINE: 1\n")
PG_MANIFEST = ('{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n'
            '{ "Path": "backup_label", "Size": 225, "Last-Modified": "2026-12-01 12:00:00 GMT" },\n'
            '{ "Path": "global/pg_control", "Size": 8192, "Last-Modified": "2026-12-01 12:00:00 GMT" }\n],\n'
            '"WAL-Ranges": [\n'
            '{ "Timeline": 1, "Start-LSN": "0/4000060", "End-LSN": "0/5000000" },\n'
            '{ "Timeline": 2, "Start-LSN": "0/5000000", "End-LSN": "0/5000130" }\n'
            '],\n"Manifest-Checksum": "0123abcd"}\n')


def test_the_backup_job_prints_what_the_record_needs_and_it_reads_as_the_files_do(tmp_path: Path) -> None:
    """The tail of BACKUP_SCRIPT (the lines after pg_verifybackup) on files as PostgreSQL writes
    them: jobs.results gives back backup_label and a WAL-Ranges document that parse as the files
    themselves do, so no helper has to read them."""
    import subprocess

    (tmp_path / "backup_label").write_text(PG_LABEL)
    (tmp_path / "backup_manifest").write_text(PG_MANIFEST)
    tail = jobs.BACKUP_SCRIPT[jobs.BACKUP_SCRIPT.index('sed '):]
    out = subprocess.run(["/bin/sh", "-c", "set -eu\ndir=\"$1\"\n" + tail, "sh", str(tmp_path)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    printed = jobs.results("pgtopo-size 123\nsome warning\n" + out)
    assert printed is not None
    label, ranges = printed
    assert parse_backup_label(label) == parse_backup_label(PG_LABEL)
    assert wal_end(ranges) == wal_end(PG_MANIFEST) == "0/5000130"
    assert jobs.results("pgtopo-size 123\n") is None
    assert jobs.results(out.split("pgtopo-ranges")[0]) is None  # the ranges cut off: read the files
