"""--pull missing|never|always against a real registry on 127.0.0.1 (Debian's docker-registry, with
password authentication), as docker compose pulls: a missing image is pulled with the user's
`docker login` credentials, `diff` only shows the pull, `--pull never` refuses, `--pull always` gets
what the registry has even when the engine has an image of that name (and the nodes are rolled onto
it, as compose recreates containers whose image changed), and a failed pull is one clear error with
nothing in the cluster changed.

The registry holds one image: the test image with one small layer added (a file the containers
can be asked for), so a pull downloads a layer for real and the containers show which image they
run.  The engine's copy is removed before each test that needs it missing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import IMAGE, PAIR, SOLO, actions, objects, pgtopo, psql

with warnings.catch_warnings():  # bcrypt for the registry's htpasswd: deprecated since 3.11, there until 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

MARK = "/tmp/pgtopo-pulled"  # the file the registry's image has and the engine's test image has not
USER, PASSWORD = "ci", "pull-test-secret"


@dataclass
class Registry:
    address: str  # 127.0.0.1:PORT
    image: str  # the registry's image: the test image plus MARK
    logged_in: Path  # a DOCKER_CONFIG directory whose config.json has the registry's credentials
    anonymous: Path  # one with no credentials


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (a URL this test made, on 127.0.0.1)
            return
        except urllib.error.HTTPError:  # 401: up, and asking for the password
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def registry(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed: `make images` installs it (Debian: apt-get install "
                    "docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{_free_port()}"
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**4))
    (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
    (root / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": address},
        "auth": {"htpasswd": {"realm": "pgtopo-test", "path": str(root / "htpasswd")}},
    }))
    log = (root / "registry.log").open("w")
    server = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    image = f"{address}/test/postgres:{IMAGE.rsplit(':', 1)[1]}"
    try:
        _wait_up(f"http://{address}/v2/")
        engine.images.build(fileobj=io.BytesIO(f"FROM {IMAGE}\nRUN echo pulled > {MARK}\n".encode()), tag=image,
                            rm=True, pull=False)
        for line in engine.api.push(image, stream=True, decode=True,
                                    auth_config={"username": USER, "password": PASSWORD}):
            assert "error" not in line, line
        logged_in, anonymous = root / "logged-in", root / "anonymous"
        logged_in.mkdir()
        anonymous.mkdir()
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (logged_in / "config.json").write_text(json.dumps({"auths": {address: {"auth": auth}}}))
        (anonymous / "config.json").write_text("{}")
        yield Registry(address, image, logged_in, anonymous)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        for c in engine.containers.list(all=True, filters={"ancestor": image}):  # none unless a test failed
            c.remove(force=True)
        _forget(engine, image)


def _forget(engine: docker.DockerClient, image: str) -> None:
    """Remove the engine's copy of `image` (the registry keeps its own)."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(image, force=True)


def _present(engine: docker.DockerClient, image: str) -> bool:
    try:
        engine.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def _has_mark(container: str) -> bool:
    return subprocess.run(["docker", "exec", container, "test", "-f", MARK]).returncode == 0


def _env(registry: Registry, config: Path | None = None, pull: str = "") -> dict[str, str]:
    """The CLI's environment: the Docker configuration to pull with; PGTOPO_PULL empty means the
    default policy (the suite's pgtopo() sets never, so that no test reaches for a registry by mistake)."""
    return {"DOCKER_CONFIG": str(config or registry.logged_in), "PGTOPO_PULL": pull}


def test_diff_shows_the_pull_and_apply_pulls_a_missing_image_with_the_users_login(
        make_cluster, engine: docker.DockerClient, registry: Registry) -> None:
    _forget(engine, registry.image)
    c = make_cluster(registry.image)
    c.write(SOLO)
    env = _env(registry)
    shown = pgtopo("diff", str(c.path), env=env)
    assert shown.code == 1 and "+ pull" in shown.out and registry.image in shown.out, shown
    assert not _present(engine, registry.image), "diff pulled the image; it must only show the pull"
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}

    applied = pgtopo("apply", str(c.path), "--yes", env=env)  # the default policy: missing
    assert applied.code == 0, applied
    assert "+ pull" in applied.out and registry.image in applied.out, applied
    assert _present(engine, registry.image)
    assert _has_mark(c.container("primary")), "the primary does not run the image pulled from the registry"

    again = pgtopo("apply", str(c.path), env=env)
    assert again.code == 0 and "pull" not in again.out and "nothing to do" in again.out, again


def test_a_failed_pull_is_one_clear_error_and_nothing_is_created(
        make_cluster, engine: docker.DockerClient, registry: Registry) -> None:
    _forget(engine, registry.image)
    c = make_cluster(registry.image)
    c.write(SOLO)
    denied = pgtopo("apply", str(c.path), "--yes", env=_env(registry, registry.anonymous))
    assert denied.code == 2, denied
    assert f"failed to pull image {registry.image}" in denied.err and "no basic auth credentials" in denied.err, denied
    assert f"hint: log in to the registry (`docker login {registry.address}`)" in denied.err, denied
    assert "Traceback" not in denied.err
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}
    # a switchover whose pull fails changed nothing: its file is put back
    before = c.write(PAIR).read_text()
    switched = pgtopo("switchover", str(c.path), "--to", "replica", "--yes", env=_env(registry, registry.anonymous))
    assert switched.code == 2 and "no basic auth credentials" in switched.err, switched
    assert "was put back as it was (primary: primary)" in switched.err and c.path.read_text() == before, switched

    unknown = make_cluster(registry.image.rsplit(":", 1)[0] + ":no-such-tag")
    unknown.write(SOLO)
    missing = pgtopo("apply", str(unknown.path), "--yes", env=_env(registry))
    assert missing.code == 2 and "manifest unknown" in missing.err, missing
    assert "hint: check `image:` in the file" in missing.err, missing
    assert objects(engine, unknown.name) == {"containers": [], "networks": [], "volumes": []}


def test_pull_never_refuses_a_missing_image_before_anything(
        make_cluster, engine: docker.DockerClient, registry: Registry) -> None:
    _forget(engine, registry.image)
    c = make_cluster(registry.image)
    c.write(SOLO)
    for args, env in ((["--pull", "never"], _env(registry)), ([], _env(registry, pull="never"))):
        refused = pgtopo("apply", str(c.path), "--yes", *args, env=env)
        assert refused.code == 1 and "--pull never forbids pulling it" in refused.err, refused
        assert not _present(engine, registry.image)
        assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}
    assert pgtopo("diff", str(c.path), "--pull", "never", env=_env(registry)).code == 1


def test_pull_always_gets_the_registry_s_image_and_rolls_the_cluster_onto_it(
        make_cluster, engine: docker.DockerClient, registry: Registry) -> None:
    # the engine has an image of that name, but not the registry's: the plain test image
    _forget(engine, registry.image)
    engine.images.get(IMAGE).tag(registry.image)
    c = make_cluster(registry.image)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path), env=_env(registry)).code == 0
    assert not _has_mark(c.container("primary")), "--pull missing pulled an image the engine had"

    shown = pgtopo("diff", str(c.path), "--pull", "always", env=_env(registry))
    assert shown.code == 0 and "apply pulls it again first (--pull always)" in shown.out, shown
    applied = pgtopo("apply", str(c.path), "--pull", "always", env=_env(registry))
    assert applied.code == 0 and "+ pull" in applied.out, applied
    # the name now names the registry's image: both nodes recreated on it, one at a time, replicas first
    done = actions(applied.out)
    assert done.index(("recreate", "replica")) < done.index(("recreate", "primary")), applied.out
    assert "now names another image" in applied.out, applied.out
    assert _has_mark(c.container("primary")) and _has_mark(c.container("replica"))
    assert psql(c.container("replica"), "SELECT status FROM pg_stat_wal_receiver") == "streaming"

    again = pgtopo("apply", str(c.path), "--pull", "always", env=_env(registry))
    assert again.code == 0 and "up to date" in again.out and "nothing to do" in again.out, again


def test_a_plan_saved_while_the_image_was_missing_pulls_it_when_applied(
        make_cluster, engine: docker.DockerClient, registry: Registry, tmp_path: Path) -> None:
    _forget(engine, registry.image)
    c = make_cluster(registry.image)
    c.write(SOLO)
    saved = tmp_path / "plan.json"
    assert pgtopo("diff", str(c.path), "--out", str(saved), env=_env(registry)).code == 1
    assert any(a["kind"] == "pull" for a in json.loads(saved.read_text())["actions"])
    applied = pgtopo("apply", str(saved), "--yes", env=_env(registry))
    assert applied.code == 0 and "+ pull" in applied.out, applied
    assert _has_mark(c.container("primary"))
    assert pgtopo("diff", str(c.path), env=_env(registry)).code == 0
