"""Global options before or after the command, and errors as JSON events with --log-format json
(the real CLI, with no Docker engine: validate never needs one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pgtopo import cli
from pgtopo.errors import DockerError, StalePlan

BAD = "version: 1\ncluster: x\nimage: postgres:17\nprimary: a\nnodes:\n  a: {}\nparameters: {max_conections: 5}\n"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    return subprocess.run([sys.executable, "-m", "pgtopo", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("before, after", [((), ("--log-format", "json")), (("--log-format", "json"), ()),
                                           ((), ("--log-format=json",)), (("-v", "--log-format", "json"), ())])
def test_an_error_is_one_json_event_whereever_the_option_is(tmp_path: Path, before: tuple[str, ...],
                                                            after: tuple[str, ...]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    done = run(*before, "validate", path, *after)
    assert done.returncode == 2, done
    event = json.loads(done.stderr.strip().splitlines()[-1])
    assert event["event"] == "error" and event["exit_code"] == 2 and event["error"] == "SpecError"
    assert event["problems"] == [f"{path}:7:14: parameters.max_conections: parameter 'max_conections' is not a "
                                 "setting of PostgreSQL 17: did you mean 'max_connections'?"]


@pytest.mark.parametrize("args", [("-v", "validate"), ("validate", "-v")])
def test_verbose_is_accepted_before_or_after_the_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BAD.replace("max_conections", "max_connections"))
    done = run(*args, path)
    assert done.returncode == 0, done


def test_without_json_an_error_is_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    done = run("validate", path)
    assert done.returncode == 2 and done.stderr.startswith(f"{path}:7:14: "), done
    assert "{" not in done.stderr



def _abort(cause: BaseException | None) -> click.exceptions.Abort:
    exc = click.exceptions.Abort()
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize("exc, code", [
    (StalePlan("stale"), 1), (DockerError("no engine"), 2), (KeyboardInterrupt(), 130), (cli._Terminated(), 143),
    (_abort(KeyboardInterrupt()), 130), (_abort(None), 1), (SystemExit(1), 1), (RuntimeError("a bug"), 2),
], ids=["refusal", "error", "ctrl-c", "sigterm", "ctrl-c at a prompt", "prompt without an answer", "exit", "bug"])
def test_the_exit_code_the_history_records_is_the_one_main_exits_with(exc: BaseException, code: int) -> None:
    assert cli.exit_code(exc) == code


@pytest.mark.parametrize("argv, said", [
    (["apply", "pg.yaml"], "interrupted; run apply again to finish what was started"),
    (["-v", "switchover", "pg.yaml", "replica"], "interrupted; run apply again to finish what was started"),
    (["destroy", "backup.yaml"], "interrupted; run destroy again to finish what was started"),
    (["backup", "apply.yaml"], "interrupted; the backup was not made complete; run `pgtopo backup` again "
                               "(what it left is removed first)"),
    (["diff", "pg.yaml"], "interrupted; nothing was changed"),
    (["backups", "pg.yaml"], "interrupted; nothing was changed"),
    ([], "interrupted; nothing was changed"),
])
def test_an_interruption_says_what_to_do_for_the_command_it_stopped(argv: list[str], said: str) -> None:
    assert cli.interrupted_message(argv) == said
