"""Connecting to a cluster's nodes: libpq URLs without the password (`pgtopo url`) and the command
line that opens psql inside a node's container (`pgtopo psql`).  Called by the CLI.

Pure: the published ports are read by the caller.  A URL names the superuser and the host port on
127.0.0.1 and never a password (clients read ~/.pgpass or PGPASSWORD); the multi-host form lists
the primary first and asks for `target_session_attrs=read-write`, so a client without the pooler
finds the writer after a switchover by itself.
"""

from __future__ import annotations

from urllib.parse import quote

from pgtopo.errors import NotConverged, SpecError
from pgtopo.spec import Topology

SUPERUSER = "postgres"  # the images' superuser; the local socket in a node's container trusts it
DATABASE = "postgres"


def url(node: str, port: int) -> str:
    """A libpq URL for one node."""
    return f"postgresql://{quote(SUPERUSER)}@127.0.0.1:{port}/{quote(DATABASE)}"


def read_write_url(ports: dict[str, int], primary: str) -> str:
    """One URL listing every published node (the primary first) for clients that pick the writer."""
    order = sorted(ports, key=lambda n: (n != primary, n))
    hosts = ",".join(f"127.0.0.1:{ports[n]}" for n in order)
    return f"postgresql://{quote(SUPERUSER)}@{hosts}/{quote(DATABASE)}?target_session_attrs=read-write"


def node_of(file: str, topo: Topology, node: str | None) -> str:
    """The node asked for (default: the file's primary); an error naming the file's nodes."""
    chosen = node or topo.primary
    if chosen not in topo.nodes:
        raise SpecError([f"{file}: {chosen} is not a node of the file (nodes: {', '.join(sorted(topo.nodes))})"])
    return chosen


def not_running(node: str, container: str) -> NotConverged:
    return NotConverged(f"{node}: its container {container} is not running (no published port)",
                        hint="run `pgtopo apply` first; `pgtopo status` shows each node")


def psql_argv(container: str, args: tuple[str, ...], tty: bool) -> list[str]:
    """`docker exec` of psql in the node's container, as the superuser over the local socket."""
    return ["docker", "exec", "-i", *(["-t"] if tty else []), container, "psql", "-U", SUPERUSER, *args]
