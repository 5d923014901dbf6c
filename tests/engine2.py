"""A second Docker engine on this machine, for the tests that must not disturb anything else
using the engine: the engine-restart test restarts this one, never the engine `make test`, the
chaos runs and the user's own containers live on.

Root only.  A dockerd of its own: data root /var/lib/pgtopo-engine2 (the images it was given are
kept there, so later runs skip the load), exec root and socket under /run/pgtopo-engine2, an
address pool no other engine uses, and a default bridge of its own (BRIDGE, made here): with
`--bridge=none` dockerd deletes the interface docker0 at start, which is the first engine's, and
every container on that engine's default network stops being able to start.  It manages no iptables rules: two
dockerds editing the same chains fight over them.  Docker's own FORWARD policy (DROP, set by the
first engine) would then drop the traffic between its containers, so one rule admits traffic
inside its address pool, and nothing else.  Published ports go through docker-proxy, which needs
no rule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import docker

DATA_ROOT = Path("/var/lib/pgtopo-engine2")
RUN = Path("/run/pgtopo-engine2")
SOCKET = RUN / "docker.sock"
PIDFILE = RUN / "docker.pid"
LOG = Path("/var/log/pgtopo-engine2.log")
POOL = "10.221.0.0/16"  # the first engine's pools are 172.17-31.x and 192.168.x
HOST = f"unix://{SOCKET}"
BRIDGE, BRIDGE_ADDRESS = "pgtopo-e2br", "10.222.0.1/24"  # outside POOL and the first engine's ranges
FORWARD_RULE = ["FORWARD", "-s", POOL, "-d", POOL, "-j", "ACCEPT"]


def available() -> str | None:
    """Why this machine cannot run a second engine, or None when it can."""
    if os.geteuid() != 0:
        return "a second Docker engine needs root"
    for tool in ("dockerd", "iptables", "ip"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"a second Docker engine needs {tool}"
    return None


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
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
        for argv in (["link", "add", "name", BRIDGE, "type", "bridge"], ["addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE]):
            subprocess.run(["ip", *argv], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True, capture_output=True)
    if _pid() is None:
        RUN.mkdir(parents=True, exist_ok=True)
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        PIDFILE.unlink(missing_ok=True)  # a killed session's: dockerd refuses to start over it
        with LOG.open("ab") as log:
            subprocess.Popen(
                ["dockerd", "--data-root", str(DATA_ROOT), "--exec-root", str(RUN / "exec"),
                 "--pidfile", str(PIDFILE), "-H", HOST, f"--bridge={BRIDGE}", "--iptables=false",
                 "--ip6tables=false", "--default-address-pool", f"base={POOL},size=24"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    if subprocess.run(["iptables", "-C", *FORWARD_RULE], capture_output=True).returncode != 0:
        subprocess.run(["iptables", "-I", *FORWARD_RULE], check=True, capture_output=True)
    deadline = time.monotonic() + timeout
    while not _answers():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the second Docker engine did not answer within {timeout:.0f} s; see {LOG}")
        time.sleep(0.2)


def stop(timeout: float = 60.0) -> None:
    """Stop the engine (its containers stop with it; its data root stays)."""
    pid = _pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid() == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid() == pid:
        os.kill(pid, signal.SIGKILL)


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
