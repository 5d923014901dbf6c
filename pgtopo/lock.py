"""The per-cluster apply lock, held through the Docker engine itself.

Called by reconcile.py.  The lock is a container named `<cluster>-pgtopo-lock` (names are unique
per engine, so creating it is atomic) that runs `cat` on a stdin only this process holds, with
StdinOnce and auto-remove: when pgtopo exits, however it exits (kill -9 included), the engine
closes that stdin, `cat` ends and the engine removes the container.  No stale lock survives its
holder, and it works for every machine that shares the engine.
"""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from pgtopo import docker_ops, labels as L
from pgtopo.errors import DockerError, LockTimeout

if TYPE_CHECKING:
    import docker

POLL = 0.2


@contextmanager
def cluster_lock(client: "docker.DockerClient", cluster: str, image: str, timeout: float,
                 on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the cluster's lock for the duration of the block; wait up to `timeout` seconds for it."""
    name = L.Names(cluster, "").lock
    deadline = time.monotonic() + timeout
    told = False
    while True:
        held = _try_acquire(client, name, image, cluster)
        if held is not None:
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another pgtopo holds the lock of cluster {cluster!r} (container {name})",
                hint="wait for it to finish, or raise --lock-timeout",
            )
        if not told and on_wait is not None:
            on_wait(f"waiting for the lock of cluster {cluster!r}: another apply is running")
            told = True
        time.sleep(POLL)
    try:
        yield
    finally:
        _release(client, name, held)


def _try_acquire(client: "docker.DockerClient", name: str, image: str, cluster: str) -> socket.socket | None:
    from docker.errors import APIError

    api = client.api
    try:
        cid = api.create_container(
            image=image,
            command=["sh", "-c", "cat >/dev/null"],
            name=name,
            labels=L.labels(cluster, "lock"),
            stdin_open=True,  # with detach=False docker-py also sets StdinOnce
            host_config=api.create_host_config(auto_remove=True, network_mode="none"),
        )["Id"]
    except APIError as exc:
        if exc.status_code == 409:
            return None
        raise DockerError(f"Docker failed to create the lock container {name}: {exc.explanation}",
                          hint="check that the image of the file exists locally") from exc
    with docker_ops.translated(f"start the lock container {name}"):
        sock = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
        api.start(cid)
    return sock


def _release(client: "docker.DockerClient", name: str, sock: socket.socket) -> None:
    try:
        raw = getattr(sock, "_sock", sock)
        raw.close()
    except OSError:
        pass
    docker_ops.remove_container(client, name)
