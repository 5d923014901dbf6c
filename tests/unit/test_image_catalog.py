"""Settings of a major pgtopo ships no catalog for, checked against the image's own server: what
the catalog job prints is read into the same catalog structure (a captured sample:
tests/unit/data/server-catalog.17.txt, the output of desired.catalog_job on
pgtopo-local/postgres:17), the loader checks the file against it with FILE:LINE:COL, and the
answer is asked once per image id (kept for the process and on disk).  No engine: the two Docker
calls are autospec'd fakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest.mock import create_autospec

import docker
import pytest

from pgtopo import desired, docker_ops, image_catalog, labels as L, pg_settings
from pgtopo.errors import DockerError, SpecError
from pgtopo.loader import parse_topology
from pgtopo.spec import Topology

SAMPLE = (Path(__file__).parent / "data" / "server-catalog.17.txt").read_text()
IMAGE_ID = "sha256:" + "ab" * 32
NO_MAJOR = "example.com/pg:custom"  # a tag that names no major: no shipped catalog covers it


def doc(image: str = NO_MAJOR, parameters: str = "", node: str = "{}") -> str:
    text = f"version: 1\ncluster: pg\nimage: {image}\nprimary: main\n"
    if parameters:
        text += f"parameters:\n{parameters}"
    return text + f"nodes:\n  main: {{}}\n  r1: {node}\n"


def topology(image: str = NO_MAJOR) -> Topology:
    return parse_topology(doc(image), "t.yaml", {})


# --- reading what the job printed ------------------------------------------------------------------

def test_the_server_catalog_of_17_is_the_shipped_catalog_of_17() -> None:
    known = pg_settings.parse_server_catalog(SAMPLE)
    assert known.major == 17
    assert known.settings == pg_settings.catalog(17)
    assert known.settings["shared_buffers"] == pg_settings.Setting(
        "shared_buffers", "integer", "8kB", 16, 1073741823, (), "postmaster")
    assert known.settings["wal_level"].enumvals == ("minimal", "replica", "logical")


def test_lines_outside_the_frame_are_not_part_of_the_catalog() -> None:
    noisy = "initdb: warning: enabling \"trust\" authentication\n" + SAMPLE + "LOG:  shutting down\n"
    assert pg_settings.parse_server_catalog(noisy) == pg_settings.parse_server_catalog(SAMPLE)


@pytest.mark.parametrize("output, says", [
    ("", "no 'pgtopo-catalog-begin' line"),
    (SAMPLE.rsplit("pgtopo-catalog-end", 1)[0], "no 'pgtopo-catalog-end major' line"),
    (SAMPLE.replace("major 17", "major ?"), "the major '?' is not a number"),
    (SAMPLE.replace("zero_damaged_pages\tbool\t", "zero_damaged_pages bool "), "is not a setting"),
    (SAMPLE.replace("\t1\t600\t", "\tone\t600\t"), "bounds 'one', '600' of 'authentication_timeout'"),
    ("pgtopo-catalog-begin\npgtopo-catalog-end major 17\n", "no settings"),
])
def test_an_answer_that_is_not_a_whole_catalog_is_refused(output: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        pg_settings.parse_server_catalog(output)
    assert says in str(info.value)


# --- the loader checks the file against it ---------------------------------------------------------

def test_an_unknown_name_and_a_bad_value_are_refused_where_the_file_says_them() -> None:
    asked: list[str] = []

    def lookup(topo: Topology) -> pg_settings.Catalog:
        asked.append(topo.image)
        return pg_settings.parse_server_catalog(SAMPLE)

    text = doc(parameters="  max_conections: 50\n  work_mem: 8MB\n", node="{parameters: {wal_level: archiv}}")
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {}, catalog=lookup)
    assert info.value.problems == [
        "t.yaml:6:3: parameters.max_conections: parameter 'max_conections' is not a setting of PostgreSQL 17: "
        "did you mean 'max_connections'?",
        "t.yaml:10:21: nodes.r1.parameters.wal_level: parameter 'wal_level' takes one of minimal, replica, logical, "
        "not 'archiv'",
    ]
    assert asked == [NO_MAJOR]
    assert parse_topology(text, "t.yaml", {}).parameters["max_conections"] == 50  # without a lookup: unchecked


@pytest.mark.parametrize("text", [
    doc(image="postgres:17", parameters="  work_mem: 8MB\n"),  # the shipped catalog covers 17
    doc(),  # no parameters: nothing to ask
    doc(parameters="  auto_explain.log_min_duration: 250ms\n"),  # an extension's settings are never checked
], ids=["shipped catalog", "no parameters", "only custom settings"])
def test_the_server_is_not_asked_when_it_has_nothing_to_say(text: str) -> None:
    def lookup(topo: Topology) -> pg_settings.Catalog:
        raise AssertionError("asked the server")

    parse_topology(text, "t.yaml", {}, catalog=lookup)


def test_a_major_without_a_shipped_catalog_is_asked_and_an_unknowable_answer_checks_nothing() -> None:
    asked: list[str] = []

    def unknown(topo: Topology) -> None:
        asked.append(topo.image)
        return None

    topo = parse_topology(doc(image="postgres:19", parameters="  max_conections: 50\n"), "t.yaml", {}, catalog=unknown)
    assert asked == ["postgres:19"] and topo.parameters == {"max_conections": 50}


def test_validate_stays_offline_for_a_major_without_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(doc(parameters="  max_conections: 50\n"))
    done = subprocess.run([sys.executable, "-m", "pgtopo", "validate", str(path)], capture_output=True, text=True,
                          env={"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done


# --- asked once per image id -----------------------------------------------------------------------

class Engine:
    """The two Docker calls image_catalog makes, autospec'd, counting the jobs it runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, image_id: str | None = IMAGE_ID, output: str = SAMPLE,
                 fails: bool = False) -> None:
        self.jobs: list[object] = []
        self.client = create_autospec(docker.DockerClient, instance=True)
        image = create_autospec(docker_ops.image_id, return_value=image_id)
        job = create_autospec(docker_ops.run_job, side_effect=self._run)
        monkeypatch.setattr(docker_ops, "image_id", image)
        monkeypatch.setattr(docker_ops, "run_job", job)
        self.output, self.fails = output, fails

    def _run(self, client: object, spec: object, timeout: float | None = None, progress: object = None) -> str:
        self.jobs.append(spec)
        if self.fails:
            raise DockerError("pg-pgtopo-helper-1 failed (exit 1):\ninitdb: error: cannot be run as root")
        return self.output


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new process each test (no catalog seen yet), with its own disk cache."""
    monkeypatch.setattr(image_catalog, "_seen", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_the_job_runs_once_per_image_for_the_process_and_then_from_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    first = image_catalog.server_catalog(engine.client, topology())
    again = image_catalog.server_catalog(engine.client, topology("other.example/pg:same-id"))
    assert first is not None and first == again and first.major == 17 and len(engine.jobs) == 1
    cached = image_catalog.cache_dir() / f"settings-v{image_catalog.CACHE_FORMAT}-{'ab' * 32}.txt"
    assert cached.read_text() == SAMPLE

    monkeypatch.setattr(image_catalog, "_seen", {})  # the next pgtopo run
    assert image_catalog.server_catalog(engine.client, topology()) == first and len(engine.jobs) == 1


def test_a_damaged_cache_is_asked_again_and_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    image_catalog.server_catalog(engine.client, topology())
    [cached] = image_catalog.cache_dir().iterdir()
    cached.write_text(SAMPLE[: len(SAMPLE) // 2])
    monkeypatch.setattr(image_catalog, "_seen", {})
    assert image_catalog.server_catalog(engine.client, topology()) is not None and len(engine.jobs) == 2
    assert cached.read_text() == SAMPLE


def test_no_writable_cache_still_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache would be a directory below a file
    engine = Engine(monkeypatch)
    assert image_catalog.server_catalog(engine.client, topology()) is not None and len(engine.jobs) == 1
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", "/")
    assert image_catalog.cache_dir() == Path("/.cache/pgtopo")


def test_an_image_the_engine_does_not_have_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch, image_id=None)
    assert image_catalog.server_catalog(engine.client, topology()) is None and engine.jobs == []


@pytest.mark.parametrize("fails, output, says", [
    (True, SAMPLE, "and that failed: pg-pgtopo-helper-1 failed (exit 1):\ninitdb: error: cannot be run as root"),
    (False, "sh: psql: not found\n", "and its answer cannot be read: no 'pgtopo-catalog-begin' line"),
])
def test_a_server_that_cannot_answer_is_an_error_that_says_why(monkeypatch: pytest.MonkeyPatch, fails: bool,
                                                               output: str, says: str) -> None:
    engine = Engine(monkeypatch, output=output, fails=fails)
    with pytest.raises(DockerError) as info:
        image_catalog.server_catalog(engine.client, topology())
    assert info.value.message.startswith(f"pgtopo ships no settings catalog for the major of {NO_MAJOR}, so it asks")
    assert says in info.value.message and "initdb, pg_ctl, postgres and psql" in (info.value.hint or "")
    assert not any(image_catalog.cache_dir().glob("*"))  # nothing kept


def test_the_job_is_a_labelled_helper_with_no_network_and_no_volume() -> None:
    job = desired.catalog_job(topology())
    assert job.name.startswith("pg-pgtopo-helper-") and job.image == NO_MAJOR and job.user == "postgres"
    assert job.labels[L.CLUSTER] == "pg" and job.labels[L.ROLE] == "helper" and job.labels[f"{L.PREFIX}.job"] == "catalog"
    assert job.mounts == () and job.network is None and job.publish is None
    assert job.command[4:] == [pg_settings.CATALOG_BEGIN, desired.CATALOG_QUERY, pg_settings.CATALOG_END]


def test_a_server_of_a_major_pgtopo_ships_no_catalog_for_is_checked_by_its_own() -> None:
    """PostgreSQL 19's server answers with its own settings: an unknown name is refused by them."""
    def lookup(topo: Topology) -> pg_settings.Catalog:
        return pg_settings.parse_server_catalog(SAMPLE.replace("major 17", "major 19"))

    with pytest.raises(SpecError) as info:
        parse_topology(doc(image="postgres:19", parameters="  max_conections: 50\n"), "t.yaml", {}, catalog=lookup)
    assert info.value.problems == [
        "t.yaml:6:3: parameters.max_conections: parameter 'max_conections' is not a setting of PostgreSQL 19: "
        "did you mean 'max_connections'?"]
