"""Rewrite `primary:` in a topology file in place, keeping its comments and layout (ruamel
round-trip).  Called by the CLI's `switchover` command; the file stays the truth.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pgtopo.errors import SpecError


def with_primary(path: Path, text: str, node: str) -> str:
    """The file's text with `node` as the primary.  The new primary loses its `upstream:` (a
    primary has none); every other node keeps what it says, so the old primary, with no
    upstream of its own, streams from the new one."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc: Any = yaml.load(text)
    nodes: Any = doc.get("nodes") if hasattr(doc, "get") else None
    if not hasattr(nodes, "get") or node not in nodes:
        known = ", ".join(nodes) if hasattr(nodes, "keys") else "none"
        raise SpecError([f"{path}: --to {node}: not a node of the file (nodes: {known})"])
    doc["primary"] = node
    entry = nodes[node]
    if hasattr(entry, "pop"):
        entry.pop("upstream", None)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
