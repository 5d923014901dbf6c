"""Saved plans: write what `diff --out` produced, recognise and read it back for `apply PLAN`.

Called by the CLI.  A saved plan is recognised by its content, whatever its name.  Reading
validates it against documents.PlanDocument (a damaged or foreign file ends in one message, exit
2) and checks that the topology file it was made from still has the same content (sha256); the
cluster-state check happens under the lock in reconcile.apply_saved.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pgtopo import documents
from pgtopo.actions import Plan
from pgtopo.errors import SpecError, StalePlan
from pgtopo.spec import Topology

MAX_BYTES = 64 << 20  # far above any plan pgtopo writes; a bigger file is not one
MAX_PROBLEMS = 10
# What a saved plan (or the start of a damaged one) holds and a topology file never does.
MARKER = re.compile(rb'"kind"\s*:\s*"' + documents.PLAN_KIND.encode() + rb'"')


@dataclass(frozen=True)
class SavedPlan:
    topology: Topology
    plan: Plan
    fingerprint: tuple[str, dict[str, Any]]
    source: Path  # the topology file it was made from

    @property
    def base_dir(self) -> Path:
        """Where the topology file is (for `file:` secrets)."""
        return self.source.parent


def is_plan_file(path: Path) -> bool:
    """Whether `path` holds a pgtopo document rather than a topology, by content only: a JSON
    object with `kind` or `format` (keys a topology never has), or text that is not JSON but
    carries the plan marker (a damaged plan, reported as one).  A topology written as JSON is a
    topology."""
    raw = _raw(path)
    if raw is None:
        return False  # the topology loader says why it cannot be read
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return MARKER.search(raw) is not None
    return isinstance(doc, dict) and ("kind" in doc or "format" in doc)


def _raw(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    return raw if len(raw) <= MAX_BYTES else None


def write(path: Path, document: documents.PlanDocument) -> None:
    """Save `document` whole or not at all (a rename over the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(document.to_json() + "\n")
    os.replace(tmp, path)


def read(path: Path) -> SavedPlan:
    """The saved plan in `path`, made from a topology file whose content has not changed since;
    SpecError when it is not a readable plan, StalePlan when its file changed or is gone."""
    doc = parse(path)
    source = _source(path, doc.file.path)
    try:
        current = documents.sha256_text(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StalePlan(f"{source}, the file this plan was made from, cannot be read ({exc}); nothing was "
                        "changed", hint=f"fix the file, or make a new plan with `pgtopo diff FILE --out {path}`"
                        ) from exc
    if current != doc.file.sha256:
        raise StalePlan(f"{source} changed since the plan was made (sha256 {doc.file.sha256[:12]}… → "
                        f"{current[:12]}…); nothing was changed",
                        hint=f"make a new plan with `pgtopo diff {source} --out {path}`")
    return SavedPlan(doc.topology, doc.plan(), (doc.fingerprint.sha256, doc.fingerprint.state), source)


def parse(path: Path) -> documents.PlanDocument:
    """The saved plan in `path`, validated; SpecError (one line per problem, and what to do) when
    it cannot be read, is not JSON, is another document, or is damaged."""
    remake = f"make a new plan with `pgtopo diff FILE --out {path}`"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    if len(raw) > MAX_BYTES:
        raise SpecError([f"{path}: not a saved plan: larger than {MAX_BYTES} bytes"], hint=remake)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SpecError([f"{path}:{exc.lineno}:{exc.colno}: not a saved plan: {exc.msg}"], hint=remake) from exc
    except (ValueError, RecursionError) as exc:  # not UTF-8 (or UTF-16/32), or nested absurdly deep
        raise SpecError([f"{path}: not a saved plan: not JSON text"], hint=remake) from exc
    _check_kind(path, doc)
    try:
        return documents.plan_from_json(raw)
    except ValidationError as exc:
        raise SpecError(_problems(path, exc), hint=remake) from exc


def _check_kind(path: Path, doc: object) -> None:
    """Another document, or a plan of another format, is named as such before any detail."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if kind == documents.PLAN_KIND and fmt == documents.PLAN_FORMAT:
        return
    if kind == documents.PLAN_KIND:
        raise SpecError([f"{path}: a saved plan of format {json.dumps(fmt)}; this pgtopo reads format "
                         f"{documents.PLAN_FORMAT}"],
                        hint=f"make a new plan with this pgtopo: `pgtopo diff FILE --out {path}`")
    what = f"a {json.dumps(kind)} document" if kind is not None else "a JSON document without a pgtopo kind"
    raise SpecError([f"{path}: not a saved plan but {what}"],
                    hint="apply takes a topology file, or a plan saved by `pgtopo diff FILE --out PLAN`")


def _problems(path: Path, exc: ValidationError) -> list[str]:
    """`PLAN: the saved plan is damaged: actions.0.wave: Input should be ...`, one per problem."""
    lines = []
    for error in exc.errors(include_url=False)[:MAX_PROBLEMS]:
        where = ".".join(str(part) for part in error["loc"]) or "(top)"
        lines.append(f"{path}: the saved plan is damaged: {where}: {error['msg']}")
    if exc.error_count() > MAX_PROBLEMS:
        lines.append(f"{path}: … and {exc.error_count() - MAX_PROBLEMS} more")
    return lines


def _source(plan_path: Path, recorded: str) -> Path:
    """The topology file the plan was made from: as recorded (relative to the working directory),
    else next to the plan."""
    for candidate in (Path(recorded), plan_path.parent / Path(recorded).name):
        if candidate.is_file():
            return candidate
    raise StalePlan(f"{recorded}, the file this plan was made from, is not there; nothing was changed",
                    hint="run apply from the directory diff ran in, or make a new plan")
