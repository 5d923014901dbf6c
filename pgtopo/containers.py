"""What pgtopo asks Docker to create: frozen value types, no I/O.

Made by desired.py (node containers and jobs), observe.py and state.py (helper mounts); carried
out by docker_ops.py.  They live apart from docker_ops so the planner can build them without
importing the Docker adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mount:
    volume: str  # a volume's name, or with `bind` a directory of the Docker host
    target: str
    read_only: bool = False
    bind: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create a container."""

    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    aliases: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    user: str = "postgres"
    publish: int | None = None  # container port to publish
    host_port: int | None = None  # None: an ephemeral host port
    bind: str = "127.0.0.1"  # host address the port is published on
    restart: bool = False
    stop_signal: str = "SIGINT"
    stdin: bool = False  # an open stdin (StdinOnce): tethered to whoever attaches to it (docker_ops.tether)
