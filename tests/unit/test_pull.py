"""--pull's control flow and messages without an engine: the engine's pull stream (recorded from a
real pull, tests/unit/data/pull-stream.jsonl; a "Waiting" and a first "Downloading" line added as
the engine sends them for larger layers) read into progress, the policy, errors turned into one
message with what to do.  The real pulls, from a registry on 127.0.0.1, are
tests/integration/test_pull.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import docker
import pytest
from docker.errors import APIError, NotFound

from pgtopo import docker_ops, images, reconcile
from pgtopo.actions import Kind
from pgtopo.errors import PullFailed

STREAM = [json.loads(line) for line in (Path(__file__).parent / "data" / "pull-stream.jsonl").read_text().splitlines()]
UP_TO_DATE = [STREAM[0], STREAM[-2], {"status": "Status: Image is up to date for 127.0.0.1:5999/test/postgres:18"}]
IMAGE = "127.0.0.1:5999/test/postgres:18"


def engine(stream: list[dict[str, Any]] | BaseException, present: bool = False) -> Any:
    client = create_autospec(docker.DockerClient, instance=True)
    client.api = create_autospec(docker.APIClient, instance=True)
    if isinstance(stream, BaseException):
        client.api.pull.side_effect = stream
    else:
        client.api.pull.return_value = iter(stream)
    client.api.inspect_image.side_effect = (lambda image: {"Id": "sha256:" + "a" * 64}) if present else \
        NotFound("No such image")
    return client


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_pulled", {})


def test_progress_counts_bytes_and_layers_as_the_engine_reports_them() -> None:
    lines: list[str] = []
    assert docker_ops.pull_image(engine(STREAM), IMAGE, lines.append) is True
    assert lines[0] == f"pulling {IMAGE}: 0 of 0 layers"  # "Pulling from" names the tag, not a layer
    assert f"pulling {IMAGE}: 1 of 2 layers" in lines  # one layer the engine has, one being fetched
    assert any(line.endswith(": 0 of 0 MB, 1 of 2 layers") for line in lines)  # 64 of 169 bytes, rounded
    assert lines[-1] == f"pulling {IMAGE}: 0 of 0 MB, 2 of 2 layers"


def test_a_pull_that_finds_the_image_up_to_date_says_so() -> None:
    assert docker_ops.pull_image(engine(UP_TO_DATE), IMAGE, lambda text: None) is False


@pytest.mark.parametrize(("failure", "said", "hint"), [
    (APIError("500 Server Error for http+docker://localhost/v1.41/images/create?tag=18: Internal Server Error",
              explanation='Head "http://127.0.0.1:5999/v2/test/postgres/manifests/18": '
                                              "no basic auth credentials"),
     "no basic auth credentials", "log in to the registry (`docker login 127.0.0.1:5999`)"),
    (NotFound("404 Client Error for http+docker://localhost/v1.41/images/create?tag=18: Not Found",
              explanation="manifest for 127.0.0.1:5999/test/postgres:18 not found: manifest unknown"),
     "manifest unknown", "check `image:` in the file: 127.0.0.1:5999 has no image"),
    ([STREAM[0], {"error": "toomanyrequests: rate limit", "errorDetail": {"message": "toomanyrequests"}}],
     "toomanyrequests", "check that the Docker engine reaches the registry 127.0.0.1:5999"),
])
def test_a_failed_pull_is_one_message_with_the_engine_s_words_and_what_to_do(
        failure: Any, said: str, hint: str) -> None:
    with pytest.raises(PullFailed) as caught:  # a DockerError, exit 2; a switchover puts its file back
        docker_ops.pull_image(engine(failure), IMAGE, lambda text: None)
    assert caught.value.message.startswith(f"Docker failed to pull image {IMAGE}: ") and said in caught.value.message
    assert "http+docker" not in caught.value.message  # the engine's words, not the HTTP request around them
    assert caught.value.hint is not None and hint in caught.value.hint


@pytest.mark.parametrize(("image", "registry"), [
    ("postgres:18", "docker.io"), ("library/postgres", "docker.io"), ("ghcr.io/acme/pg:18", "ghcr.io"),
    ("localhost/pg:18", "localhost"), ("127.0.0.1:5000/pg", "127.0.0.1:5000"),
])
def test_the_login_hint_names_the_registry_docker_would_log_in_to(image: str, registry: str) -> None:
    assert f"`docker login {registry}`" in docker_ops.pull_hint(image, "unauthorized: authentication required")


def test_the_policy_pulls_a_missing_image_once_and_never_forbids_it() -> None:
    never = engine(STREAM)
    assert images.ensure(never, IMAGE, "never") is None and not never.api.pull.called
    present = engine(STREAM, present=True)
    assert images.ensure(present, IMAGE, "missing") is None and not present.api.pull.called
    missing = engine(STREAM)
    pulled = images.ensure(missing, IMAGE, "missing")
    assert pulled is not None and pulled.newer and missing.api.pull.call_count == 1
    assert images.ensure(missing, IMAGE, "always") is pulled and missing.api.pull.call_count == 1  # once a run
    always = engine(UP_TO_DATE, present=True)
    assert images.ensure(always, "other:1", "always") is not None and always.api.pull.call_count == 1


def test_apply_shows_the_pull_and_counts_it_only_when_it_brought_a_new_image() -> None:
    shown: list[tuple[str, str]] = []
    events = reconcile.Events(started=lambda a: shown.append(("started", a.kind.value)),
                              finished=lambda a, s, note: shown.append(("finished", note or "")))
    outcome = reconcile.Outcome()
    reconcile._pull_first(engine(STREAM), IMAGE, "missing", events, outcome)
    assert shown == [("started", "pull"), ("finished", "")]
    assert [(a.kind, a.target) for a, _ in outcome.done] == [(Kind.PULL, IMAGE)]

    shown.clear()
    outcome = reconcile.Outcome()
    reconcile._pull_first(engine(UP_TO_DATE, present=True), "other:1", "always", events, outcome)
    assert shown == [("started", "pull"), ("finished", "the engine's image was up to date")]
    assert outcome.done == []  # `apply` of a cluster in sync still says "nothing to do"

    shown.clear()
    reconcile._pull_first(engine(STREAM, present=True), "third:1", "missing", events, reconcile.Outcome())
    assert shown == []


def test_the_cli_offers_exactly_the_pull_policies_the_code_knows() -> None:
    from typing import get_args

    import click

    from pgtopo.actions import PullPolicy
    from pgtopo.cli import cli

    for command in ("apply", "diff", "switchover"):
        option = next(p for p in cli.commands[command].params if p.name == "pull")
        assert isinstance(option.type, click.Choice) and tuple(option.type.choices) == get_args(PullPolicy)
