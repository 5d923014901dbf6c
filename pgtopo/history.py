"""What pgtopo did, kept: the entries of `pgtopo history`, built, trimmed and (de)serialised.

Pure.  Called by journal.py, which records each apply that changed something (or failed once
changes had begun) in the cluster's state volume and reads the history back; by render.py (the
table) and schema.py (schemas/history.schema.json, generated from HistoryDocument).  The file in
the state volume is a HistoryDocument too: `format` bumps on any breaking change, and a pgtopo
never overwrites a history of a format newer than its own.

An entry never holds a secret: no topology, no setting's value (a `configure` keeps the names it
set), no environment but the CI job's identifiers (CI_VARIABLES), and every text it keeps has the
cluster's passwords and the values of the environment variables the file refers to redacted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import AwareDatetime, Field, ValidationError

from pgtopo import __version__
from pgtopo.actions import Action, Kind
from pgtopo.documents import _Document
from pgtopo.errors import PgtopoError

HISTORY_FORMAT: Final = 1
HISTORY_KIND: Final = "pgtopo-history"
KEEP: Final = 20  # entries kept; the oldest goes first
MAX_BYTES: Final = 64 << 10  # and fewer when they would not fit: every observation reads the file
MAX_ACTIONS: Final = 50  # per entry; a bigger apply keeps its first ones and counts the rest
MAX_REASON: Final = 160
MAX_ERROR: Final = 1000
MAX_CI_VALUE: Final = 200
MIN_REDACTED: Final = 4  # shorter values ("on", "17") would blank ordinary words and numbers
REDACTED: Final = "[redacted]"

# The CI job's identifiers an entry keeps (GitHub Actions, GitLab CI, Jenkins); no other variable.
CI_VARIABLES: Final = (
    "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW", "GITHUB_REF", "GITHUB_SHA",
    "GITHUB_ACTOR",
    "CI_JOB_ID", "CI_PIPELINE_ID", "CI_PROJECT_PATH", "CI_COMMIT_REF_NAME", "CI_COMMIT_SHA", "GITLAB_USER_LOGIN",
    "BUILD_TAG",
)

Command = Literal["apply", "switchover", "apply-plan"]
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


class HistoryAction(_Document):
    """One action an apply started."""

    kind: Kind
    node: str | None = Field(description="The node acted on; null for cluster-wide actions.")
    reason: str = Field(description="Why, shortened; a configure names its settings without their values.")
    seconds: float | None = Field(ge=0, description="How long it took; null when it did not finish (the apply "
                                                    "failed or was interrupted meanwhile).")


class Origin(_Document):
    """Who ran the apply, and from where."""

    user: str | None
    host: str | None
    pgtopo_version: str
    ci: dict[str, str] = Field(description="The CI job's identifiers found in the environment (GITHUB_RUN_ID, "
                                           "CI_JOB_ID, ...); empty outside CI.")


class Result(_Document):
    exit_code: int = Field(ge=0, description="pgtopo's exit status (docs/exit-codes.md).")
    error: str | None = Field(description="The error pgtopo ended with; null when it succeeded.")


class HistoryEntry(_Document):
    """One apply (or switchover, or saved plan) that changed something or failed once it had begun."""

    number: int = Field(ge=1, description="Counts the cluster's recorded applies, from 1.")
    started_at: AwareDatetime = Field(description="When it started (UTC).")
    command: Command
    file: str = Field(description="The topology file or saved plan, as given on the command line.")
    seconds: float = Field(ge=0, description="How long it ran.")
    actions: tuple[HistoryAction, ...] = Field(description="The actions it started, in that order.")
    actions_omitted: int = Field(default=0, ge=0, description="Actions started beyond the first "
                                                              f"{MAX_ACTIONS}, not listed.")
    result: Result
    origin: Origin


class HistoryDocument(_Document):
    """What `history --output json` prints, and what the state volume's history.json holds."""

    format: Literal[1]
    kind: Literal["pgtopo-history"]
    pgtopo_version: str
    cluster: str
    entries: tuple[HistoryEntry, ...] = Field(description=f"Oldest first; at most the last {KEEP}.")


def document(cluster: str, entries: Sequence[HistoryEntry]) -> HistoryDocument:
    return HistoryDocument(format=HISTORY_FORMAT, kind=HISTORY_KIND, pgtopo_version=__version__, cluster=cluster,
                           entries=tuple(entries))


def encode(cluster: str, entries: Sequence[HistoryEntry], max_bytes: int = MAX_BYTES) -> bytes:
    """The history file's bytes: compact JSON of at most `max_bytes`, the oldest entries left out
    as needed (never the newest), as every observation of the state reads it."""
    kept = list(entries)
    while True:
        raw = json.dumps(document(cluster, kept).model_dump(mode="json"), separators=(",", ":")).encode()
        if len(raw) <= max_bytes or len(kept) <= 1:
            return raw
        kept.pop(0)


def newer_format(raw: bytes) -> int | None:
    """The format of a history a newer pgtopo wrote (this one must not overwrite it); else None."""
    try:
        fmt = json.loads(raw).get("format")
    except (ValueError, AttributeError, RecursionError):
        return None
    return fmt if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > HISTORY_FORMAT else None


def parse(raw: bytes | None) -> tuple[HistoryEntry, ...]:
    """The entries of a history file, oldest first; none for a state without one (an older
    pgtopo's).  PgtopoError when it is damaged or of a newer format."""
    if not raw:
        return ()
    if (fmt := newer_format(raw)) is not None:
        raise PgtopoError(f"the cluster's history was written by a newer pgtopo (format {fmt}; this one reads "
                          f"format {HISTORY_FORMAT})", hint="use that pgtopo version or a later one")
    try:
        return HistoryDocument.model_validate_json(raw, strict=True).entries
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise PgtopoError(f"the cluster's history is damaged: {where}: {first['msg']}",
                          hint="the next apply that changes something starts a new history") from None


def appended(entries: Sequence[HistoryEntry], new: HistoryEntry, keep: int = KEEP) -> tuple[HistoryEntry, ...]:
    """The history with `new` last, trimmed to the last `keep` entries."""
    return (*entries, new)[-keep:]


def next_number(entries: Sequence[HistoryEntry]) -> int:
    return max((e.number for e in entries), default=0) + 1


def origin(env: Mapping[str, str], user: str | None, host: str | None) -> Origin:
    """Who and where from: the user and host names, this pgtopo, and the CI job's identifiers."""
    ci = {name: env[name][:MAX_CI_VALUE] for name in CI_VARIABLES if env.get(name)}
    return Origin(user=user or None, host=host or None, pgtopo_version=__version__, ci=ci)


def variables(text: str) -> tuple[str, ...]:
    """The environment variables a topology file refers to (`$VAR`, `${VAR...}`), whose values
    interpolation put into the topology."""
    return tuple(sorted(set(_VARIABLE.findall(text))))


def redactor(secrets: Iterable[str | None]) -> Callable[[str], str]:
    """A function that blanks every one of `secrets` (of at least MIN_REDACTED characters) in a text."""
    found = sorted({s for s in secrets if s and len(s) >= MIN_REDACTED}, key=len, reverse=True)
    if not found:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(s) for s in found))
    return lambda text: pattern.sub(REDACTED, text)


def reason(action: Action) -> str:
    """The action's reason as the history keeps it: a configure's settings by name only (their
    values may come from the environment)."""
    if action.kind is Kind.CONFIGURE and action.settings:
        return "ALTER SYSTEM " + ", ".join(
            f"reset {name}" if value is None else f"set {name}" for name, value in action.settings)
    return action.reason


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(exc: BaseException | None) -> str | None:
    """What an entry says about how the run ended: pgtopo's message, or what stopped it."""
    match exc:
        case None:
            return None
        case PgtopoError():
            return exc.message
        case KeyboardInterrupt():
            return "interrupted"
        case _:
            return f"{type(exc).__name__}: {exc}".strip()


def entry(*, number: int, started_at: datetime, command: Command, file: str, seconds: float,
          actions: Sequence[tuple[Action, float | None]], exit_code: int, error: str | None, who: Origin,
          redact: Callable[[str], str]) -> HistoryEntry:
    """One entry; every text it keeps passes through `redact` (before it is cut, so no part of a
    secret is left)."""
    kept = tuple(HistoryAction(kind=a.kind, node=a.node or None, reason=_cut(redact(reason(a)), MAX_REASON),
                               seconds=None if s is None else round(s, 3))
                 for a, s in actions[:MAX_ACTIONS])
    return HistoryEntry(
        number=number,
        started_at=started_at.astimezone(UTC).replace(microsecond=0),
        command=command,
        file=redact(file),
        seconds=round(max(seconds, 0.0), 3),
        actions=kept,
        actions_omitted=max(0, len(actions) - MAX_ACTIONS),
        result=Result(exit_code=exit_code, error=None if error is None else _cut(redact(error), MAX_ERROR)),
        origin=who,
    )
