"""The history's entries (pgtopo/history.py): what an entry keeps of a run, that it never keeps a
secret, how the history is trimmed, and how it is written and read back (an older state without
one, a damaged one, one of a newer format)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pgtopo import __version__, history
from pgtopo.actions import Action, Kind, Wave
from pgtopo.errors import NotConverged, PgtopoError, SpecError

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 5, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
ORIGIN = history.origin({}, "alice", "laptop")
CLONE = Action(Kind.CLONE, "replica", "no data volume: pg_basebackup from primary, then start", wave=Wave())
NETWORK = Action(Kind.CREATE_NETWORK, "", "network pg-net does not exist")
SECRET = "s3cr3t-archive-key"
CONFIGURE = Action(Kind.CONFIGURE, "primary", f"ALTER SYSTEM archive_command=upload --key {SECRET}, reset work_mem",
                   settings=(("archive_command", f"upload --key {SECRET}"), ("work_mem", None)))


def entry(number: int = 1, actions: list[tuple[Action, float | None]] | None = None, exit_code: int = 0,
          error: str | None = None, redact=lambda text: text, who: history.Origin = ORIGIN) -> history.HistoryEntry:
    return history.entry(number=number, started_at=WHEN, command="apply", file="prod.yaml", seconds=6.31234,
                         actions=[(NETWORK, 0.2), (CLONE, 3.5)] if actions is None else actions,
                         exit_code=exit_code, error=error, who=who, redact=redact)


def test_an_entry_keeps_when_what_how_it_ended_and_who() -> None:
    e = entry()
    assert e.started_at == datetime(2026, 5, 1, 12, 30, 15, tzinfo=UTC)  # UTC, whole seconds
    assert json.loads(e.to_json())["started_at"] == "2026-05-01T12:30:15Z"
    assert (e.number, e.command, e.file, e.seconds) == (1, "apply", "prod.yaml", 6.312)
    assert [(a.kind, a.node, a.reason, a.seconds) for a in e.actions] == [
        (Kind.CREATE_NETWORK, None, "network pg-net does not exist", 0.2),
        (Kind.CLONE, "replica", CLONE.reason, 3.5),
    ]
    assert e.result == history.Result(exit_code=0, error=None)
    assert e.origin == history.Origin(user="alice", host="laptop", pgtopo_version=__version__, ci={})


def test_an_action_that_did_not_finish_has_no_duration() -> None:
    e = entry(actions=[(NETWORK, 0.2), (CLONE, None)], exit_code=1, error="replica: clone failed")
    assert [a.seconds for a in e.actions] == [0.2, None]
    assert e.result == history.Result(exit_code=1, error="replica: clone failed")


def test_a_big_apply_keeps_its_first_actions_and_counts_the_rest() -> None:
    e = entry(actions=[(CLONE, 1.0)] * (history.MAX_ACTIONS + 7))
    assert len(e.actions) == history.MAX_ACTIONS and e.actions_omitted == 7


def test_long_texts_are_cut() -> None:
    e = entry(actions=[(Action(Kind.START, "a", "x" * 1000), 1.0)], exit_code=2, error="y" * 5000)
    assert len(e.actions[0].reason) == history.MAX_REASON and e.actions[0].reason.endswith("…")
    assert len(e.result.error or "") == history.MAX_ERROR


# --- no secrets --------------------------------------------------------------------------------

def test_a_configure_keeps_the_names_of_its_settings_never_their_values() -> None:
    e = entry(actions=[(CONFIGURE, 0.1)])
    assert e.actions[0].reason == "ALTER SYSTEM set archive_command, reset work_mem"
    assert SECRET not in e.to_json()


def test_passwords_and_interpolated_values_are_redacted_everywhere() -> None:
    password, image = "Zx9-superuser-password", "registry.internal/pg:17-secret-tag"
    redact = history.redactor([password, image, None, ""])
    e = entry(actions=[(Action(Kind.RECREATE, "primary", f"image postgres:16 → {image}"), 1.0)], exit_code=2,
              error=f"FATAL: password authentication failed ({password})", redact=redact)
    text = e.to_json()
    assert password not in text and image not in text
    assert e.actions[0].reason == f"image postgres:16 → {history.REDACTED}"
    assert e.result.error == f"FATAL: password authentication failed ({history.REDACTED})"


def test_a_secret_across_the_cut_is_redacted_before_cutting() -> None:
    secret = "abcdefghijklmnopqrstuvwxyz"
    reason = "x" * (history.MAX_REASON - 10) + secret
    e = entry(actions=[(Action(Kind.START, "a", reason), 1.0)], redact=history.redactor([secret]))
    assert "abcdefgh" not in e.actions[0].reason


def test_short_values_are_not_redacted() -> None:
    """A variable holding "17" or "on" would blank every timeline number and word it appears in."""
    redact = history.redactor(["17", "on", "replica-password"])
    assert redact("timeline 17 on replica: replica-password") == f"timeline 17 on replica: {history.REDACTED}"


def test_the_longest_secret_is_redacted_first() -> None:
    assert history.redactor(["abcd", "abcdef"])("xabcdefx") == f"x{history.REDACTED}x"


def test_the_variables_a_file_refers_to() -> None:
    text = "image: ${PG_IMAGE:-postgres:17}\nnetwork: $NET\nparameters:\n  archive_command: '${ARCHIVE_CMD}'\n"
    assert history.variables(text) == ("ARCHIVE_CMD", "NET", "PG_IMAGE")


def test_the_origin_keeps_only_the_ci_jobs_identifiers() -> None:
    env = {"GITHUB_RUN_ID": "4242", "CI_JOB_ID": "77", "GITHUB_TOKEN": "ghs_token", "AWS_SECRET_ACCESS_KEY": "k",
           "PGPASSWORD": "pw", "GITHUB_SHA": "", "HOME": "/root"}
    who = history.origin(env, "runner", "ci-host-3")
    assert who.ci == {"GITHUB_RUN_ID": "4242", "CI_JOB_ID": "77"}
    assert "ghs_token" not in who.to_json() and "pw" not in json.loads(who.to_json())["ci"].values()


def test_an_unknown_user_or_host_is_null() -> None:
    who = history.origin({}, None, "")
    assert (who.user, who.host) == (None, None)


@pytest.mark.parametrize("exc, text", [
    (None, None),
    (NotConverged("replicas not streaming after 120 s"), "replicas not streaming after 120 s"),
    (SpecError(["a.yaml:1:1: bad", "a.yaml:2:1: worse"]), "a.yaml:1:1: bad\na.yaml:2:1: worse"),
    (KeyboardInterrupt(), "interrupted"),
    (RuntimeError("a bug"), "RuntimeError: a bug"),
])
def test_how_a_run_ended_in_words(exc: BaseException | None, text: str | None) -> None:
    assert history.error_text(exc) == text


# --- trimming and numbering --------------------------------------------------------------------

def test_the_history_keeps_the_last_entries_and_numbers_go_on() -> None:
    entries: tuple[history.HistoryEntry, ...] = ()
    for _ in range(history.KEEP + 5):
        entries = history.appended(entries, entry(number=history.next_number(entries)))
    assert len(entries) == history.KEEP
    assert [e.number for e in entries] == list(range(6, history.KEEP + 6))


def test_the_history_file_stays_small_leaving_out_its_oldest_entries() -> None:
    """Every observation reads it: 20 applies of 50 actions with long reasons would be 260 KB."""
    big = [(Action(Kind.CLONE, "replica", "x" * 500), 1.0)] * history.MAX_ACTIONS
    entries = tuple(entry(n, actions=big) for n in range(1, history.KEEP + 1))
    raw = history.encode("pg", entries)
    kept = history.parse(raw)
    assert len(raw) <= history.MAX_BYTES and 1 < len(kept) < history.KEEP
    assert kept == entries[-len(kept):]
    assert history.parse(history.encode("pg", entries[-1:], max_bytes=10)) == entries[-1:]  # the newest stays


def test_the_first_entry_is_number_one() -> None:
    assert history.next_number(()) == 1


# --- written and read back ---------------------------------------------------------------------

def test_the_history_file_reads_back_as_written() -> None:
    entries = (entry(1), entry(2, exit_code=1, error="refused"), entry(3, actions=[(CLONE, None)]))
    raw = history.encode("pg", entries)
    assert history.parse(raw) == entries
    doc = json.loads(raw)
    assert (doc["format"], doc["kind"], doc["cluster"]) == (1, "pgtopo-history", "pg")


def test_a_state_without_a_history_has_an_empty_one() -> None:
    """An older pgtopo's state volume has no history file."""
    assert history.parse(None) == () and history.parse(b"") == ()


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"format": 1, "kind": "pgtopo-history"}',
                                 b'{"format": "2", "kind": "pgtopo-history", "entries": []}'])
def test_a_damaged_history_is_one_error_that_says_so(raw: bytes) -> None:
    with pytest.raises(PgtopoError, match="history is damaged") as caught:
        history.parse(raw)
    assert caught.value.hint and history.newer_format(raw) is None


def test_a_history_of_a_newer_format_is_named_so_and_never_taken_for_damaged() -> None:
    raw = json.dumps({"format": 2, "kind": "pgtopo-history", "entries": [{"new": "shape"}]}).encode()
    assert history.newer_format(raw) == 2
    with pytest.raises(PgtopoError, match="newer pgtopo"):
        history.parse(raw)


def test_the_document_matches_its_checked_in_schema() -> None:
    schema = json.loads((ROOT / "schemas/history.schema.json").read_text())
    doc = history.document("pg", (entry(1), entry(2, actions=[(CONFIGURE, None)], exit_code=130,
                                                  error="interrupted")))
    Draft202012Validator(schema).validate(json.loads(doc.to_json()))
    assert doc.pgtopo_version == __version__


# --- the table (render.py) ---------------------------------------------------------------------

def test_a_history_row_says_when_what_how_it_ended_and_who() -> None:
    from pgtopo.render import history_cells

    ok = entry(1, who=history.origin({"GITHUB_RUN_ID": "4242"}, "runner", "ci-3"))
    assert history_cells(ok) == ["1", "2026-05-01 12:30:15", "apply", "ok", "6.3 s",
                                 "create-network cluster, clone replica",
                                 f"runner@ci-3, GITHUB_RUN_ID=4242, pgtopo {__version__}"]
    failed = entry(2, actions=[(CLONE, 1.0)] * 5 + [(CONFIGURE, None)], exit_code=1, error="refused")
    cells = history_cells(failed)
    assert cells[3] == "failed (exit 1)"
    assert cells[5] == "clone replica, clone replica, clone replica, clone replica, +2 more"


def test_the_table_shows_each_failure_and_says_when_nothing_is_recorded() -> None:
    from rich.console import Console

    from pgtopo.render import print_history

    out = Console(record=True, width=200, color_system=None)
    print_history(out, history.document("pg", ()))
    assert "no apply recorded yet" in out.export_text()
    out = Console(record=True, width=200, color_system=None)
    print_history(out, history.document("pg", (entry(1), entry(2, exit_code=1, error="refusing:\n  two writers"))))
    text = out.export_text()
    assert "cluster pg" in text and "#2: refusing: (…)" in text and "#1:" not in text
