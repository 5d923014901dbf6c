"""Thin, typed calls to the Docker engine; every docker-py error is translated to DockerError.

Called by observe.py, state.py, lock.py, execute.py, switch.py, destroy.py and the CLI (the
connection); desired.py uses its ContainerSpec and Mount.  Nothing here decides anything: it lists,
creates, starts, stops and removes what it is told to, always with argument lists (never a
shell line built from user input) and always stamping pgtopo's labels.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NamedTuple, NewType

from pgtopo import waits
from pgtopo.containers import ContainerSpec, Mount
from pgtopo.errors import DockerError, PullFailed

if TYPE_CHECKING:
    import docker
    from docker._types import WaitContainerResponse  # in types-docker only
    from docker.types import Mount as DockerMount


def connect(timeout: int = 120) -> "docker.DockerClient":
    """A client for the engine named by DOCKER_HOST (or the local socket)."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.api.ping()
    except DockerException as exc:
        raise DockerError(
            f"cannot reach the Docker engine: {_short(exc)}",
            hint="start Docker (or set DOCKER_HOST to a running engine) and run again",
        ) from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn any docker-py or connection error raised inside into a DockerError about `what`."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        yield
    except (DockerException, RequestException, ConnectionError) as exc:
        raise DockerError(f"Docker failed to {what}: {_short(exc)}", hint=_hint(exc)) from exc


def _hint(exc: BaseException) -> str:
    text = str(exc)
    if "No such image" in text or "pull access denied" in text or "not found" in text:
        return "build or pull the image named in the file, or let apply pull it (--pull missing)"
    return "check that the Docker engine is running and reachable, then run again"


def list_containers(client: "docker.DockerClient", name_prefix: str) -> list[dict[str, Any]]:
    """One listing of every container whose name starts with `name_prefix` (any labels)."""
    with translated("list containers"):
        found = client.api.containers(all=True, filters={"name": f"^/{name_prefix}"})
    return [c for c in found if any(n.lstrip("/").startswith(name_prefix) for n in c.get("Names", []))]


def published_ports(client: "docker.DockerClient") -> dict[int, str]:
    """Host port → the running container that publishes it, over every container of the engine."""
    with translated("list published ports"):
        found = client.api.containers(filters={"status": "running"})
    taken: dict[int, str] = {}
    for c in found:
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        for port in c.get("Ports") or []:
            if port.get("PublicPort"):
                taken[int(port["PublicPort"])] = name
    return taken


def engine_is_local(client: "docker.DockerClient") -> bool:
    """The engine listens on a unix socket of this machine: its published ports are this host's."""
    return str(getattr(client.api, "base_url", "")).startswith("http+docker://")


def port_free(address: str, port: int) -> bool:
    """Whether this host could bind `address:port` now (as docker-proxy would, SO_REUSEADDR)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def list_volumes(client: "docker.DockerClient", name_prefix: str) -> list[dict[str, Any]]:
    with translated("list volumes"):
        found = client.api.volumes(filters={"name": name_prefix}).get("Volumes") or []
    return [v for v in found if v["Name"].startswith(name_prefix)]


def inspect_network(client: "docker.DockerClient", name: str) -> dict[str, Any] | None:
    with translated(f"list networks named {name}"):
        networks: list[dict[str, Any]] = client.api.networks(names=[name])
        for net in networks:
            if net["Name"] == name:
                return net
    return None


def image_id(client: "docker.DockerClient", image: str) -> str | None:
    """The id of an image in the engine (the digest of its configuration: the same id is always
    the same image); None when the engine does not have it."""
    found = _inspect_image(client, image)
    return str(found["Id"]) if found is not None else None


def image_env(client: "docker.DockerClient", image: str) -> tuple[str, tuple[str, ...]] | None:
    """The id of an image and the environment it sets (`Config.Env`, "NAME=value" each); None when
    the engine does not have the image."""
    found = _inspect_image(client, image)
    return None if found is None else (str(found["Id"]), tuple((found.get("Config") or {}).get("Env") or ()))


def image_user(client: "docker.DockerClient", image: str) -> str | None:
    """The user an image's containers run as (`Config.User`, "" for root); None when the engine
    does not have the image."""
    found = _inspect_image(client, image)
    return None if found is None else str((found.get("Config") or {}).get("User") or "")


def _inspect_image(client: "docker.DockerClient", image: str) -> dict[str, Any] | None:
    from docker.errors import ImageNotFound, NotFound

    try:
        with translated(f"inspect image {image}"):
            found: dict[str, Any] = client.api.inspect_image(image)
    except DockerError as exc:
        if isinstance(exc.__cause__, (ImageNotFound, NotFound)):
            return None
        raise
    return found


def pull_image(client: "docker.DockerClient", image: str, progress: Callable[[str], None]) -> bool:
    """Pull `image` from its registry with the credentials of the user's Docker configuration; True
    when that brought a new image, False when the engine's was up to date.  `progress` is told how
    far the download is.  Raises DockerError saying why the registry or the engine refused."""
    from docker.errors import APIError

    layers: dict[str, Layer] = {}
    newer = True
    try:
        with translated(f"pull image {image}"):
            try:
                for event in client.api.pull(image, stream=True, decode=True):
                    if "error" in event:  # the engine reports a failure that comes mid-stream in the stream
                        raise DockerError(f"Docker failed to pull image {image}: {str(event['error']).strip()[:300]}")
                    newer = newer and not str(event.get("status", "")).startswith("Status: Image is up to date")
                    layers = pull_layers(layers, event)
                    progress(pull_progress(image, layers))
            except APIError as exc:  # the engine's own words, without the HTTP request around them
                if not exc.explanation:
                    raise
                raise DockerError(f"Docker failed to pull image {image}: {str(exc.explanation).strip()[:300]}") \
                    from exc
    except DockerError as exc:
        raise PullFailed(exc.message, hint=pull_hint(image, exc.message)) from exc
    return newer


class Layer(NamedTuple):
    done: int  # bytes downloaded
    total: int  # bytes to download (0 until the engine says)
    complete: bool


def pull_layers(layers: dict[str, Layer], event: dict[str, Any]) -> dict[str, Layer]:
    """The layers of a pull, after one event of the engine's pull stream."""
    layer, status, detail = event.get("id"), str(event.get("status", "")), event.get("progressDetail") or {}
    if not layer or status.startswith(("Pulling from", "Digest:", "Status:")):
        return layers
    now = layers.get(layer, Layer(0, 0, False))
    if status == "Downloading" and detail.get("total"):
        now = Layer(int(detail.get("current", 0)), int(detail["total"]), False)
    elif status in ("Download complete", "Already exists", "Pull complete"):
        now = Layer(now.total, now.total, True)
    return {**layers, layer: now}


def pull_progress(image: str, layers: dict[str, Layer]) -> str:
    """`pulling postgres:18: 12 of 130 MB, 2 of 5 layers`."""
    total = sum(layer.total for layer in layers.values())
    size = f"{sum(layer.done for layer in layers.values()) / 1e6:.0f} of {total / 1e6:.0f} MB, " if total else ""
    complete = sum(1 for layer in layers.values() if layer.complete)
    return f"pulling {image}: {size}{complete} of {len(layers)} layers"


def pull_hint(image: str, message: str) -> str:
    """What to do about a pull the registry or the engine refused."""
    from docker.auth import resolve_repository_name
    from docker.utils import parse_repository_tag

    text = message.lower()
    registry, _ = resolve_repository_name(parse_repository_tag(image)[0])  # docker.io for Docker Hub
    if any(word in text for word in ("unauthorized", "authentication required", "no basic auth", "denied")):
        return (f"log in to the registry (`docker login {registry}`): pgtopo pulls with the credentials of your "
                "Docker configuration; or load the image yourself and apply with --pull never")
    if any(word in text for word in ("manifest unknown", "not found", "does not exist", "no such")):
        return f"check `image:` in the file: {registry} has no image {image}"
    return (f"check that the Docker engine reaches the registry {registry}; or load the image yourself "
            "(`docker load`, `docker build`) and apply with --pull never")


def create_network(client: "docker.DockerClient", name: str, labels: dict[str, str]) -> None:
    with translated(f"create network {name}"):
        client.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
    if inspect_network(client, name) is None:
        raise DockerError(f"network {name} vanished right after it was created")


def connect_network(client: "docker.DockerClient", container: str, network: str, alias: str) -> None:
    with translated(f"connect {container} to network {network}"):
        client.api.connect_container_to_network(container, network, aliases=[alias])


def create_volume(client: "docker.DockerClient", name: str, labels: dict[str, str]) -> None:
    with translated(f"create volume {name}"):
        client.api.create_volume(name=name, driver="local", labels=labels)


def create_container(client: "docker.DockerClient", spec: ContainerSpec) -> str:
    """Create (not start) a container; returns its id."""
    api = client.api
    with translated(f"create container {spec.name}"):
        host_config = api.create_host_config(
            mounts=mounts_for(client, spec.image, spec.mounts),
            port_bindings={spec.publish: (spec.bind, spec.host_port)} if spec.publish else None,
            restart_policy={"Name": "unless-stopped"} if spec.restart else None,
            network_mode=spec.network or "none",  # "container:ID": that container's network namespace
        )
        networking = None
        if spec.network and not spec.network.startswith("container:"):
            networking = api.create_networking_config(
                # types-docker wants one EndpointConfig; docker-py takes {network name: EndpointConfig}
                {spec.network: api.create_endpoint_config(aliases=list(spec.aliases) or None)}  # type: ignore[arg-type]
            )
        created = api.create_container(
            image=spec.image,
            command=spec.command,
            name=spec.name,
            user=spec.user,
            labels=spec.labels,
            environment=spec.env,
            ports=[spec.publish] if spec.publish else None,
            host_config=host_config,
            networking_config=networking,
            stop_signal=spec.stop_signal,
            stdin_open=spec.stdin,
            stop_timeout=120,  # a fast shutdown of a busy primary may take longer than Docker's 10 s
        )
    cid: str = created["Id"]
    return cid


def _mount(m: Mount) -> "DockerMount":
    from docker.types import Mount as DockerMount

    return DockerMount(target=m.target, source=m.volume, type="bind" if m.bind else "volume", read_only=m.read_only)


_IMAGE_VOLUMES: dict[str, tuple[str, ...]] = {}  # per image reference, for the life of the process


def image_volumes(client: "docker.DockerClient", image: str) -> tuple[str, ...]:
    """The paths the image declares VOLUME (the official postgres images: /var/lib/postgresql/data,
    /var/lib/postgresql from 18 on); () for an image Docker does not have (creating fails then)."""
    if image not in _IMAGE_VOLUMES:
        found = _inspect_image(client, image)
        if found is None:
            return ()
        _IMAGE_VOLUMES[image] = tuple(sorted(((found.get("Config") or {}).get("Volumes") or {}).keys()))
    return _IMAGE_VOLUMES[image]


def mounts_for(client: "docker.DockerClient", image: str, mounts: tuple[Mount, ...]) -> list["DockerMount"]:
    """`mounts`, and an empty tmpfs on each path the image declares VOLUME that none of them is
    mounted on: Docker would make an anonymous volume there, which nothing removes (a node's
    data is never there: it is on the node's named volume)."""
    from docker.types import Mount as DockerMount

    covered = {m.target for m in mounts}
    return [_mount(m) for m in mounts] + [DockerMount(target=path, source=None, type="tmpfs")
                                          for path in image_volumes(client, image) if path not in covered]


def start(client: "docker.DockerClient", container: str) -> None:
    with translated(f"start container {container}"):
        client.api.start(container)


def stop(client: "docker.DockerClient", container: str, timeout: int = 60) -> None:
    with translated(f"stop container {container}"):
        client.api.stop(container, timeout=timeout)


def remove_container(client: "docker.DockerClient", container: str) -> None:
    from docker.errors import NotFound

    try:
        with translated(f"remove container {container}"):
            # v: the container's anonymous volumes go with it (a named volume never does)
            client.api.remove_container(container, force=True, v=True)
    except DockerError as exc:
        if isinstance(exc.__cause__, NotFound):
            return
        raise


def remove_volume(client: "docker.DockerClient", name: str) -> None:
    with translated(f"remove volume {name}"):
        client.api.remove_volume(name, force=False)


def remove_network(client: "docker.DockerClient", name: str) -> None:
    with translated(f"remove network {name}"):
        client.api.remove_network(name)


EXEC_WAIT = 60.0  # a command whose output stream broke: how long to wait for it to end


def exec_run(client: "docker.DockerClient", container: str, argv: list[str], user: str = "postgres") -> None:
    """Run a command in a running container; raise DockerError when it fails."""
    with translated(f"run {argv[0]} in {container}"):
        api = client.api
        exec_id = api.exec_create(container, argv, user=user)["Id"]
        try:
            output = api.exec_start(exec_id).decode(errors="replace")
        except ValueError:  # docker-py misread the multiplexed output ("32 is not a valid stream"; seen under load)
            output = "(its output could not be read)"

        def finished() -> int | None:
            state = api.exec_inspect(exec_id)
            return None if state.get("Running") else int(state.get("ExitCode") or 0)

        code = waits.wait_until(finished, time.monotonic() + EXEC_WAIT, waits.DOCKER)
    if code != 0:
        raise DockerError(f"{argv[0]} failed in {container} (exit {code}): {output.strip()[-300:]}",
                          hint=f"see `docker logs {container}`, then run apply again")


def inspect_container(client: "docker.DockerClient", container: str) -> dict[str, Any]:
    with translated(f"inspect container {container}"):
        info: dict[str, Any] = client.api.inspect_container(container)
    return info


def host_port(client: "docker.DockerClient", container: str, port: int) -> int | None:
    """The 127.0.0.1 port Docker published for `port` of a running container."""
    info = inspect_container(client, container)
    bindings = (info.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


@contextmanager
def tether(client: "docker.DockerClient", container: str) -> Iterator[None]:
    """Start a container created with an open stdin while this process holds that stdin: when the
    block ends, or this process dies however it dies (kill -9 included), the engine closes it, and
    a command that waits for its end (`cat`) sees it.  The lock is made the same way (lock.py)."""
    with translated(f"start container {container}"):
        sock = client.api.attach_socket(container, params={"stdin": 1, "stream": 1})
        client.api.start(container)
    try:
        yield
    finally:
        with suppress(OSError):
            getattr(sock, "_sock", sock).close()


@contextmanager
def exec_tethered(client: "docker.DockerClient", container: str, argv: list[str],
                  user: str = "") -> Iterator[None]:
    """Run `argv` in a running container with its stdin held by this process until the block ends
    or this process dies however it dies: then the engine closes that stdin, and a command that
    waits for its end (`cat`) goes on.  The socket is shut down, not only closed: the engine sees
    the end at once."""
    import socket

    with translated(f"run a command in {container}"):
        created = client.api.exec_create(container, argv, stdin=True, stdout=False, stderr=False, user=user)
        sock = client.api.exec_start(created["Id"], socket=True)
    try:
        yield
    finally:
        raw: Any = getattr(sock, "_sock", sock)  # docker-py hands the socket in a wrapper
        with suppress(OSError, AttributeError):
            raw.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            raw.close()


def last_lines(client: "docker.DockerClient", container: str, lines: int = 8) -> str:
    """The last lines a container printed (stdout and stderr), for an error message."""
    with translated(f"read the output of {container}"):
        return client.api.logs(container, tail=lines).decode(errors="replace").strip()


def run_job(client: "docker.DockerClient", spec: ContainerSpec, timeout: float | None = None,
            progress: Callable[[], bool] | None = None, prepare: Callable[[str], None] | None = None) -> str:
    """Run a one-shot container to completion; return its output, raise DockerError on failure.

    No fixed cap: a clone or rewind of a large cluster takes as long as it takes.  `timeout`
    (seconds) sets one; `progress`, asked every waits.JOB_POLL seconds, ends the job when it says the
    job no longer makes progress; `prepare` is given the created container's id before it starts
    (to write files into it)."""
    cid = create_container(client, spec)
    try:
        if prepare is not None:
            prepare(cid)
        start(client, cid)
        result = _wait(client, cid, spec.name, timeout, progress)
        with translated(f"read the output of {spec.name}"):
            output = client.api.logs(cid, stdout=True, stderr=True).decode(errors="replace")
        if result.get("StatusCode") != 0:
            tail = "\n".join(output.strip().splitlines()[-8:])
            raise DockerError(
                f"{spec.name} failed (exit {result.get('StatusCode')}):\n{tail}",
                hint="fix the cause shown above and run apply again; it resumes where it stopped",
            )
        return output
    finally:
        remove_container(client, cid)


def _wait(client: "docker.DockerClient", cid: str, name: str, timeout: float | None,
          progress: Callable[[], bool] | None) -> "WaitContainerResponse":
    """Wait for a job to exit, asking `progress` every waits.JOB_POLL seconds and giving up at `timeout`.

    Not waits.wait_until: nothing sleeps here.  Docker's wait blocks in the engine and returns the
    moment the job exits; each call is bounded so `progress` is asked between calls.  In wait_until
    that would be a check that swallows the read timeout and asks `progress` itself, with a
    sleep(0) between, and the deadline checked after `progress` instead of before."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        poll = waits.JOB_POLL if deadline is None else max(0.1, min(waits.JOB_POLL, deadline - time.monotonic()))
        try:
            with translated(f"wait for {name}"):
                # a float is right: docker-py hands it to requests as the read timeout (types-docker says int)
                return client.api.wait(cid, timeout=poll)  # type: ignore[arg-type]
        except DockerError as exc:
            if exc.__cause__ is None or not _timed_out(exc.__cause__):
                raise
        if deadline is not None and time.monotonic() >= deadline:
            raise DockerError(f"{name} did not finish within {timeout:.0f} s",
                              hint="see `docker logs` of the job's node, then run apply again")
        if progress is not None and not progress():
            raise DockerError(f"{name} stopped making progress",
                              hint="see `docker logs` of the job's node, then run apply again")


def _timed_out(exc: BaseException) -> bool:
    """docker-py's wait ran out of time (over a unix socket that comes as a ConnectionError)."""
    from requests.exceptions import ReadTimeout
    from urllib3.exceptions import ReadTimeoutError

    return isinstance(exc, ReadTimeout) or bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)


# A container pgtopo created and never starts, only to reach volumes: the one kind of container
# files are copied out of (docker_ops.helper makes them).  Docker 20.10 can empty a volume that
# a container mounts read-write when that container is removed (docker rm -f) while a copy out
# of it runs: a read through a node container could wipe the node's data volume.
HelperId = NewType("HelperId", str)


class ContainerGone(DockerError):
    """The container was removed while pgtopo read from it: nothing can be said about its files."""


def _archive(client: "docker.DockerClient", container: HelperId, path: str) -> bytes | None:
    """The tar stream Docker gives for `path` in a container (running or not); None if the file
    is absent.  Docker answers 404 for a missing container too: that is ContainerGone, never
    "no such file" (a volume read through a container removed meanwhile is not an empty one)."""
    from docker.errors import NotFound

    try:
        with translated(f"read {path} from {container}"):
            stream, _ = client.api.get_archive(container, path)
            return b"".join(stream)
    except DockerError as exc:
        if not isinstance(exc.__cause__, NotFound):
            raise
        try:
            with translated(f"inspect container {container}"):
                client.api.inspect_container(container)
        except DockerError as gone:
            if isinstance(gone.__cause__, NotFound):
                raise ContainerGone(f"container {container} was removed while pgtopo read {path} from it",
                                    hint="run the command again") from exc
            raise
        return None


def read_file(client: "docker.DockerClient", container: HelperId, path: str) -> bytes | None:
    """The bytes of one file inside a container; None when it does not exist."""
    blob = _archive(client, container, path)
    if blob is None:
        return None
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.next()
        if member is None or not member.isfile():
            return None
        handle = tar.extractfile(member)
        return handle.read() if handle else None


def read_dir(client: "docker.DockerClient", container: HelperId, path: str) -> dict[str, bytes] | None:
    """The regular files directly inside a directory of a container; None when it does not exist."""
    blob = _archive(client, container, path)
    if blob is None:
        return None
    return _top_files(blob)


def _top_files(blob: bytes) -> dict[str, bytes]:
    """The regular files a tar stream of one directory holds directly ("<dir>/<name>": Docker's
    archive names the directory, `tar -C DIR .` calls it ".")."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar:
            parts = member.name.split("/")
            handle = tar.extractfile(member) if member.isfile() and len(parts) == 2 else None
            if handle is not None:
                files[parts[1]] = handle.read()
    return files


def write_files(
    client: "docker.DockerClient", container: str, directory: str, files: dict[str, bytes], uid: int, gid: int
) -> None:
    """Write files with mode 0600 owned by uid:gid into `directory` of a (created) container."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), 0o600, uid, gid, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    with translated(f"write files into {container}:{directory}"):
        client.api.put_archive(container, directory, buf.getvalue())


def write_dir(client: "docker.DockerClient", container: str, parent: str, name: str, files: dict[str, bytes],
              uid: int, gid: int) -> None:
    """Write `files` (0600) into a new directory `parent`/`name` (0700), all owned by uid:gid, of a
    created or running container: secrets only that user reads."""
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(name)
        folder.type, folder.mode, folder.uid, folder.gid, folder.mtime = tarfile.DIRTYPE, 0o700, uid, gid, now
        tar.addfile(folder)
        for file, content in files.items():
            info = tarfile.TarInfo(f"{name}/{file}")
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), 0o600, uid, gid, now
            tar.addfile(info, io.BytesIO(content))
    with translated(f"write files into {container}:{parent}/{name}"):
        client.api.put_archive(container, parent, buf.getvalue())


@contextmanager
def helper(client: "docker.DockerClient", image: str, mounts: tuple[Mount, ...], labels: dict[str, str],
           name: str | None = None) -> Iterator[HelperId]:
    """A created, never started container that gives file access to volumes; removed after use."""
    api = client.api
    with translated("create a helper container"):
        cid = api.create_container(
            image=image,
            name=name,
            command=["true"],
            labels=labels,
            host_config=api.create_host_config(mounts=mounts_for(client, image, mounts), network_mode="none"),
        )["Id"]
    try:
        yield HelperId(cid)
    finally:
        remove_container(client, cid)


def exec_read_dir(client: "docker.DockerClient", container: str, path: str) -> dict[str, bytes]:
    """The regular files directly inside a directory of a running container, read by a process
    in it (`tar`), never by a copy out of it (see HelperId).  Raises DockerError when the
    container does not run or the directory cannot be read."""
    with translated(f"read {path} in {container}"):
        created = client.api.exec_create(container, ["tar", "-C", path, "-cf", "-", "."], user="0")
        out, err = client.api.exec_start(created["Id"], demux=True)
    try:
        return _top_files(out or b"")
    except tarfile.TarError:
        raise DockerError(f"could not read {path} in {container}: {(err or b'').decode(errors='replace')[:200]}",
                          hint="run the command again") from None
