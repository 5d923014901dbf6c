"""Saved plans: write what `diff --out` produced, read it back for `apply plan.json`.

Called by the CLI.  Reading checks the document's kind and format, validates it against
documents.PlanDocument, and checks that the topology file it was made from still has the same
content (sha256); the cluster-state check happens under the lock in reconcile.apply_saved.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pgtopo import documents
from pgtopo.actions import Plan
from pgtopo.errors import SpecError, StalePlan
from pgtopo.spec import Topology


@dataclass(frozen=True)
class SavedPlan:
    topology: Topology
    plan: Plan
    fingerprint: tuple[str, dict[str, Any]]
    base_dir: Path  # where the topology file is (for `file:` secrets)


def is_plan_file(path: Path) -> bool:
    """A saved plan is JSON; a topology file is YAML (which never starts with `{"format"`)."""
    if path.suffix == ".json":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(64).lstrip().startswith(b'{"format"')
    except OSError:
        return False


def write(path: Path, document: documents.PlanDocument) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(document.to_json() + "\n")
    os.replace(tmp, path)


def read(path: Path) -> SavedPlan:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except json.JSONDecodeError as exc:
        raise SpecError([f"{path}:{exc.lineno}:{exc.colno}: not a saved plan: {exc.msg}"]) from exc
    if not isinstance(doc, dict) or doc.get("kind") != "pgtopo-plan" or doc.get("format") != documents.PLAN_FORMAT:
        raise SpecError([f"{path}: not a pgtopo plan of format {documents.PLAN_FORMAT} "
                         "(make one with `pgtopo diff FILE --out plan.json`)"])
    try:
        saved = documents.plan_from_json(json.dumps(doc))
    except ValidationError as exc:
        raise SpecError([f"{path}: the saved plan is damaged: {exc}"]) from exc
    source = _source(path, saved.file.path)
    current = documents.sha256_text(source.read_text())
    if current != saved.file.sha256:
        raise StalePlan(f"{source} changed since the plan was made (sha256 {saved.file.sha256[:12]}… → "
                        f"{current[:12]}…); nothing was changed",
                        hint=f"make a new plan with `pgtopo diff {source} --out {path}`")
    fp = saved.fingerprint
    return SavedPlan(saved.topology, saved.plan(), (fp.sha256, fp.state), source.parent)


def _source(plan_path: Path, recorded: str) -> Path:
    """The topology file the plan was made from: as recorded (relative to the working directory),
    else next to the plan."""
    for candidate in (Path(recorded), plan_path.parent / Path(recorded).name):
        if candidate.is_file():
            return candidate
    raise StalePlan(f"{recorded}, the file this plan was made from, is not there; nothing was changed",
                    hint="run apply from the directory diff ran in, or make a new plan")
