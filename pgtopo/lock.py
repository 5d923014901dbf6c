"""The per-cluster apply lock, held through the Docker engine itself.

Called by reconcile.py and destroy.py.  The lock is a container named `<cluster>-pgtopo-lock` (names
are unique per engine, so creating it is atomic) that runs `cat` on a stdin only this process holds,
with StdinOnce and auto-remove: when pgtopo exits, however it exits (kill -9 included), the engine
closes that stdin, `cat` ends and the engine removes the container.  No stale lock survives its
holder, and it works for every machine that shares the engine.

Creating the container takes the lock, and is quick.  Starting it arms the clean-up and costs a
whole container start: apply does that in the background once its plan has work (an apply with
nothing to do never starts it) and confirms it when its first wave of actions has finished.  A
holder killed before its lock was started leaves a lock in state "created": one that is still so
after STALE_CREATED seconds is removed by the next apply (only while not running, so a holder that
has just started it keeps it).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pgtopo import docker_ops, labels as L, log, waits
from pgtopo.errors import DockerError, LockTimeout

if TYPE_CHECKING:
    import docker

STALE_CREATED = 30.0


@dataclass
class Held:
    """A lock this process holds; `confirm()` waits until its clean-up on exit is armed."""

    client: "docker.DockerClient"
    name: str
    cid: str
    sock: socket.socket | None = None
    error: BaseException | None = None
    armed: threading.Thread | None = None

    def arm(self) -> None:
        """Start the lock container in the background: from then on this process's exit
        releases the lock."""
        if self.armed is None:
            self.armed = threading.Thread(target=_arm, args=(self.client, self), name="pgtopo-lock", daemon=True)
            self.armed.start()

    def confirm(self) -> None:
        self.arm()
        assert self.armed is not None
        self.armed.join()
        if isinstance(self.error, DockerError):
            raise self.error
        if self.error is not None:
            raise DockerError(f"Docker failed to start the lock container {self.name}: {self.error}",
                              hint="check that the Docker engine is healthy, then run apply again")


@contextmanager
def cluster_lock(client: "docker.DockerClient", cluster: str, image: str, timeout: float,
                 on_wait: Callable[[str], None] | None = None, arm: bool = True) -> Iterator[Held]:
    """Hold the cluster's lock for the duration of the block; wait up to `timeout` seconds for it.
    `arm=False` leaves the start to `arm()`; `confirm()` waits for it."""
    name = L.Names(cluster).lock
    deadline = time.monotonic() + timeout
    told = False

    def sleep(seconds: float) -> None:
        """Before the first wait (never when the first try is already past the deadline), say why."""
        nonlocal told
        if not told:
            log.waiting(cluster, None, f"the lock {name} (another pgtopo holds it)", deadline - time.monotonic())
            if on_wait is not None:
                on_wait(f"waiting for the lock of cluster {cluster!r}: another apply is running")
            told = True
        time.sleep(seconds)

    held = waits.wait_until(lambda: _try_acquire(client, name, image, cluster), deadline, waits.DOCKER, sleep=sleep)
    if held is None:
        raise LockTimeout(
            f"another pgtopo holds the lock of cluster {cluster!r} (container {name})",
            hint="wait for it to finish, or raise --lock-timeout",
        )
    if arm:
        held.arm()
    try:
        yield held
    except BaseException:
        with suppress(DockerError):  # the error on its way out says more (an engine gone, say)
            _release(client, held)
        raise
    _release(client, held)


def _try_acquire(client: "docker.DockerClient", name: str, image: str, cluster: str) -> Held | None:
    from docker.errors import APIError

    api = client.api
    try:
        with docker_ops.translated(f"create the lock container {name}"):
            cid = api.create_container(
                image=image,
                command=["sh", "-c", "cat >/dev/null"],
                name=name,
                labels=L.labels(cluster, "lock"),
                stdin_open=True,  # with detach=False docker-py also sets StdinOnce
                host_config=api.create_host_config(auto_remove=True, network_mode="none",
                                                   mounts=docker_ops.mounts_for(client, image, ())),
            )["Id"]
    except DockerError as exc:
        if isinstance(exc.__cause__, APIError) and exc.__cause__.status_code == 409:
            _remove_if_stale(client, name, cluster)
            return None
        raise
    return Held(client, name, cid)


def _arm(client: "docker.DockerClient", held: Held) -> None:
    """Attach to the lock's stdin, then start it: from now on this process's exit releases it."""
    api = client.api
    try:
        with docker_ops.translated(f"start the lock container {held.name}"):
            held.sock = api.attach_socket(held.cid, params={"stdin": 1, "stream": 1})
            api.start(held.cid)
    except Exception as exc:  # reported by confirm(); a thread must not die with it unseen
        held.error = exc


def _remove_if_stale(client: "docker.DockerClient", name: str, cluster: str) -> None:
    """Remove a lock whose holder died before starting it (see the module's docstring).  Its age
    is the engine's clock minus its creation time by that same clock: this machine's clock may
    be off by any amount."""
    from docker.errors import APIError

    api = client.api
    try:
        with docker_ops.translated(f"inspect the lock container {name}"):
            info = api.inspect_container(name)
            labels = (info.get("Config") or {}).get("Labels") or {}
            if info["State"].get("Status") != "created" or labels.get(L.CLUSTER) != cluster:
                return
            if engine_time(api.info()["SystemTime"]) - engine_time(info["Created"]) > STALE_CREATED:
                api.remove_container(name, force=False)  # refused (409) if its holder has just started it
    except DockerError as exc:
        if isinstance(exc.__cause__, APIError):  # gone meanwhile, or started: not stale
            return
        raise
    except (KeyError, ValueError, TypeError):  # an engine that answers oddly: keep waiting, never remove
        return


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def engine_time(text: str) -> float:
    """Seconds since the epoch of a time the engine reports (RFC 3339, nanoseconds, any offset)."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, offset = match.groups()
    stamp = datetime.fromisoformat(whole + ("+00:00" if offset == "Z" else offset))
    return stamp.timestamp() + float(f"0.{fraction or 0}")


def _release(client: "docker.DockerClient", held: Held) -> None:
    """Remove the lock container, by its id: should another apply have taken over a lock this
    one never started, the name is theirs now.  Docker finishes a start still under way first;
    the start then fails or the removal kills it, either way nothing is left."""
    docker_ops.remove_container(client, held.cid)
    if held.armed is not None:
        held.armed.join()
    try:
        raw = getattr(held.sock, "_sock", held.sock)
        if raw is not None:
            raw.close()
    except OSError:
        pass
