"""A second Docker engine on this machine, in a network namespace of its own, for the tests that
must not disturb anything else using the engine: the engine-restart test restarts this one, never
the engine `make test`, the chaos runs and the user's own containers live on.

Root only.  A dockerd of its own: data root /var/lib/pgtopo-engine2 (the images it was given are
kept there, so later runs skip the load), exec root and socket under /run/pgtopo-engine2, started
in the network namespace NETNS.  Everything it does to the network (its docker0, its bridges, its
iptables rules, the ports it publishes on 127.0.0.1) happens there, away from the first engine's:
run on the host's network, a second dockerd deletes the host's docker0 (the first engine's) when
it starts with another default bridge, and the two would fight over the same iptables chains.
The socket is a file, so the host reaches the engine through it; whatever connects to a published
port (pgtopo itself) runs in the namespace too (`netns_command`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import docker

NETNS = "pgtopo-engine2"
DATA_ROOT = Path("/var/lib/pgtopo-engine2")
RUN = Path("/run/pgtopo-engine2")
SOCKET = RUN / "docker.sock"
PIDFILE = RUN / "docker.pid"
LOG = Path("/var/log/pgtopo-engine2.log")
HOST = f"unix://{SOCKET}"

_started: subprocess.Popen[bytes] | None = None  # reaped by stop(): no zombie dockerd is left


def available() -> str | None:
    """Why this machine cannot run a second engine, or None when it can."""
    if os.geteuid() != 0:
        return "a second Docker engine needs root"
    for tool in ("dockerd", "ip", "nsenter"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"a second Docker engine needs {tool}"
    return None


def netns_command(argv: list[str]) -> list[str]:
    """`argv` run in the engine's network namespace (where its published ports are).  nsenter, not
    `ip netns exec`: that one also mounts a sysfs of its own, which hides the cgroup mounts dockerd
    needs ("Devices cgroup isn't mounted")."""
    return ["nsenter", f"--net=/run/netns/{NETNS}", *argv]


def _pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _answers() -> bool:
    try:
        client = docker.DockerClient(base_url=HOST, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except docker.errors.DockerException:
        return False


def start(timeout: float = 60.0) -> None:
    """Start the engine unless it runs; wait until it answers."""
    global _started
    if NETNS not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split():
        subprocess.run(["ip", "netns", "add", NETNS], check=True, capture_output=True)
    subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True, capture_output=True)
    if _pid() is None:
        RUN.mkdir(parents=True, exist_ok=True)
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        PIDFILE.unlink(missing_ok=True)  # a killed session's: dockerd refuses to start over it
        with LOG.open("ab") as log:
            _started = subprocess.Popen(
                netns_command(["dockerd", "--data-root", str(DATA_ROOT), "--exec-root", str(RUN / "exec"),
                               "--pidfile", str(PIDFILE), "-H", HOST]),
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _answers():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the second Docker engine did not answer within {timeout:.0f} s; see {LOG}")
        time.sleep(0.2)


def stop(timeout: float = 60.0) -> None:
    """Stop the engine (its containers stop with it; its data root stays)."""
    global _started
    pid = _pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid() == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid() == pid:
            os.kill(pid, signal.SIGKILL)
    if _started is not None:
        _started.wait(timeout=timeout)
        _started = None


def restart() -> None:
    stop()
    start()


def client() -> docker.DockerClient:
    return docker.DockerClient(base_url=HOST, timeout=120)


def give_image(image: str) -> None:
    """Copy `image` from the machine's engine into this one (docker save | docker load), unless it
    holds that very image already (never a pull: there is no registry)."""
    wanted = docker.from_env().images.get(image).id
    c = client()
    try:
        if c.images.get(image).id == wanted:
            return
    except docker.errors.ImageNotFound:
        pass
    finally:
        c.close()
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", HOST, "load", "-q"], stdin=save.stdout, capture_output=True,
                          timeout=600)
    assert save.stdout is not None
    save.stdout.close()
    if save.wait(timeout=600) != 0 or load.returncode != 0:
        raise RuntimeError(f"could not copy {image} into the second engine: {load.stderr.decode()[-300:]}")
