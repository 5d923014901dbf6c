"""Manifests as YAML text, `---` between documents; called by the CLI's `export`.

kubectl reads YAML 1.1, where `on`, `off`, `yes` and `no` are booleans and `0777` a number: every
string that YAML 1.1 would read as something else is written quoted, so a parameter `on` reaches
CloudNativePG as the string it expects.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import SingleQuotedScalarString

# Plain scalars YAML 1.1 does not read as strings: booleans, null, and anything that starts like a number
_NOT_TEXT_IN_YAML_1_1 = re.compile(
    r"(?:|~|null|Null|NULL|[yYnN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|[-+.0-9].*)"
)


def _quoted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _quoted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_quoted(item) for item in value]
    if isinstance(value, str) and _NOT_TEXT_IN_YAML_1_1.fullmatch(value):
        return SingleQuotedScalarString(value)
    return value


def documents_text(documents: Sequence[dict[str, Any]]) -> str:
    """`documents` as one YAML stream, indented as Kubernetes manifests usually are."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # a long value stays on its line
    out = io.StringIO()
    yaml.dump_all([_quoted(document) for document in documents], out)
    return out.getvalue()
