"""The harness's copy of the topology file: a small model it edits, writes and re-reads.

Used by the harness and the scenarios.  The file on disk stays the truth: after `pgtopo
switchover` (which rewrites `primary:` itself) the harness re-reads it with `read_primary`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

SECRET_NAME = "superuser.secret"
SYNC_METHODS = ("any", "first")
SYNC_DURABILITIES = ("required", "preferred")


@dataclass(frozen=True)
class Synchronous:
    """The file's `synchronous:` block, as the harness's `--synchronous METHOD:NUMBER[:DURABILITY]` gives it."""

    method: str = "any"
    number: int = 1
    durability: str = "required"

    @classmethod
    def parse(cls, text: str) -> "Synchronous":
        """`any:1`, `first:2:preferred`; the durability defaults to required, as in the file."""
        parts = text.strip().lower().split(":")
        if len(parts) not in (2, 3) or parts[0] not in SYNC_METHODS or not parts[1].isdigit() or int(parts[1]) < 1 \
                or (len(parts) == 3 and parts[2] not in SYNC_DURABILITIES):
            raise ValueError(f"--synchronous wants METHOD:NUMBER[:DURABILITY] (METHOD any or first, NUMBER 1 or "
                             f"more, DURABILITY required or preferred), got {text!r}")
        return cls(parts[0], int(parts[1]), parts[2] if len(parts) == 3 else "required")

    @property
    def required(self) -> bool:
        return self.durability == "required"

    def render(self) -> str:
        return f"synchronous: {{method: {self.method}, number: {self.number}, durability: {self.durability}}}"

    def describe(self) -> str:
        return f"{self.method}:{self.number}:{self.durability}"


@dataclass(frozen=True)
class Topo:
    cluster: str
    image: str
    primary: str
    upstreams: dict[str, str | None]  # node -> upstream (None: the primary, or default)
    node_params: dict[str, dict[str, object]] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)

    @property
    def network(self) -> str:
        return f"{self.cluster}-net"

    def nodes(self) -> list[str]:
        return sorted(self.upstreams)

    def replicas(self) -> list[str]:
        return [n for n in self.nodes() if n != self.primary]

    def upstream_of(self, node: str) -> str | None:
        return None if node == self.primary else (self.upstreams[node] or self.primary)

    def downstreams(self, node: str) -> list[str]:
        return [n for n in self.nodes() if self.upstream_of(n) == node]

    def eligible(self) -> list[str]:
        """The replicas that may be synchronous standbys: those that stream from the primary itself
        (PostgreSQL never makes a cascaded standby synchronous; the file's number must not exceed them)."""
        return self.downstreams(self.primary)

    def with_primary(self, node: str) -> "Topo":
        """As `pgtopo switchover` edits the file: `primary:` changes, the new primary loses its
        upstream, every other node keeps what it says."""
        return replace(self, primary=node, upstreams={**self.upstreams, node: None})

    def with_upstream(self, node: str, upstream: str | None) -> "Topo":
        return replace(self, upstreams={**self.upstreams, node: upstream})

    def with_node(self, node: str) -> "Topo":
        return replace(self, upstreams={**self.upstreams, node: None})

    def without_node(self, node: str) -> "Topo":
        """Remove a replica; its downstreams stream from the primary instead."""
        ups = {n: (None if u == node else u) for n, u in self.upstreams.items() if n != node}
        return replace(self, upstreams=ups, node_params={n: p for n, p in self.node_params.items() if n != node})

    def with_params(self, params: dict[str, object]) -> "Topo":
        return replace(self, params=params)

    def render(self, extra: str = "") -> str:
        lines = ["version: 1", f"cluster: {self.cluster}", f"image: {self.image}", f"primary: {self.primary}",
                 f"auth: {{superuser_password: {{file: {SECRET_NAME}}}}}",
                 "switchover: {timeout_seconds: 10}"]
        if self.params:
            lines.append(f"parameters: {json.dumps(self.params)}")
        if extra:
            lines.append(extra.rstrip("\n"))
        lines.append("nodes:")
        for node in self.nodes():
            entry: dict[str, object] = {}
            if (up := self.upstreams[node]) and node != self.primary:
                entry["upstream"] = up
            if p := self.node_params.get(node):
                entry["parameters"] = p
            lines.append(f"  {node}: {json.dumps(entry)}")
        return "\n".join(lines) + "\n"

    def write(self, path: Path, extra: str = "") -> None:
        path.write_text(self.render(extra))


def read_primary(path: Path) -> str:
    """`primary:` as the file says it now (pgtopo switchover rewrites it, or puts it back)."""
    match = re.search(r"^primary:\s*(\S+)", path.read_text(), re.M)
    if not match:
        raise ValueError(f"{path}: no primary: line")
    return match.group(1).strip("'\"")
