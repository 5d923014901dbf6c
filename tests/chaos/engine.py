"""What the harness does to the world: run the real `pgtopo` CLI, inject Docker faults, list the
cluster's labelled objects.  Called by the harness and the scenarios; nothing here decides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from pgtopo import labels

ROOT = Path(__file__).resolve().parents[2]
DOCKER_PIDFILE = Path("/var/run/docker.pid")


@dataclass
class Run:
    """One finished pgtopo command."""

    args: list[str]
    code: int  # negative: killed by that signal
    out: str
    err: str
    seconds: float
    timed_out: bool = False

    def text(self) -> str:
        return f"{self.out}\n{self.err}"

    def summary(self) -> str:
        last = (self.err.strip() or self.out.strip()).splitlines()
        tail = last[-1][:160] if last else ""
        return f"`pgtopo {' '.join(self.args[:1] + self.args[2:])}` exit {self.code} in {self.seconds:.2f} s" + (
            f" ({tail})" if self.code != 0 and tail else "")


def start_pgtopo(*args: str) -> tuple[subprocess.Popen[str], float]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    return proc, time.monotonic()


def finish(proc: subprocess.Popen[str], started: float, args: list[str], timeout: float) -> Run:
    """Wait for a pgtopo command; past `timeout` it gets SIGTERM (a cancelled CI job), then SIGKILL."""
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    return Run(args, proc.returncode, out, err, time.monotonic() - started, timed_out)


def pgtopo(*args: str, timeout: float = 120) -> Run:
    proc, started = start_pgtopo(*args)
    return finish(proc, started, list(args), timeout)


def docker_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def node_fault(kind: str, container: str, network: str) -> str:
    """Apply one Docker fault to a node's container; returns what happened, for the log."""
    args = {"stop": ["stop", "-t", "5", container], "kill": ["kill", container], "rm": ["rm", "-f", container],
            "disconnect": ["network", "disconnect", network, container], "pause": ["pause", container]}[kind]
    proc = docker_cli(*args)
    return "done" if proc.returncode == 0 else f"failed: {proc.stderr.strip()[:120]}"


def unpause_all(client: docker.DockerClient, cluster: str) -> list[str]:
    paused = [c.name for c in client.containers.list(all=True, filters={"label": f"{labels.CLUSTER}={cluster}",
                                                                          "status": "paused"})]
    for name in paused:
        docker_cli("unpause", name)
    return paused


def restart_engine() -> str:
    """Stop the local dockerd and start it again (root only; affects everyone on the engine)."""
    if os.geteuid() != 0 or not DOCKER_PIDFILE.exists():
        return "skipped: needs root and a local dockerd"
    pid = int(DOCKER_PIDFILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    subprocess.run(["bash", str(ROOT / "scripts/engine-up.sh")], check=True, timeout=120, capture_output=True)
    return "done"


def wait_for_engine(timeout: float = 120.0) -> bool:
    """Wait until the engine answers again (someone else restarted it); False after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                          timeout=30).returncode == 0:
            return True
        time.sleep(1.0)
    return False


def labelled(client: docker.DockerClient, cluster: str) -> dict[str, frozenset[str]]:
    flt = {"label": f"{labels.CLUSTER}={cluster}"}
    return {"containers": frozenset(c.name for c in client.containers.list(all=True, filters=flt)),
            "volumes": frozenset(v.name for v in client.volumes.list(filters=flt)),
            "networks": frozenset(n.name for n in client.networks.list(filters=flt))}


def node_ports(client: docker.DockerClient, cluster: str) -> dict[str, int]:
    """Host port of every running (or paused) node container of the cluster, by node name."""
    found = client.api.containers(filters={"label": [f"{labels.CLUSTER}={cluster}", f"{labels.ROLE}=node"]})
    ports: dict[str, int] = {}
    for c in found:
        node = (c.get("Labels") or {}).get(labels.NODE)
        for p in c.get("Ports") or []:
            if p.get("PrivatePort") == labels.PG_PORT and p.get("PublicPort") and node:
                ports[node] = int(p["PublicPort"])
    return ports


def remove_everything(client: docker.DockerClient, cluster: str) -> None:
    """Last-resort clean-up by label (the harness destroys through pgtopo first)."""
    from tests.integration.conftest import cleanup

    cleanup(client, cluster)
