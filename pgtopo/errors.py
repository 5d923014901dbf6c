"""The one exception tree of pgtopo; the CLI maps each class to an exit code and one message.

    PgtopoError                      exit 2 unless a subclass says otherwise
    ├── SpecError                    the topology file or a saved plan is wrong (FILE:LINE:COL lines)
    ├── DockerError                  the engine is unreachable or refused a call
    │   └── PullFailed               the file's image could not be pulled; nothing was changed
    ├── PostgresError                a server refused a command or could not be reached
    ├── ServerDidNotStart            a server stopped right after its start (Docker restarted it)
    ├── SettingRejected              a restart with the file's settings failed; the node was put back
    ├── SafetyRefusal                exit 1: doing this could lose data; nothing was changed
    ├── NotConverged                 exit 1: apply ran but the cluster does not match the file
    ├── LockTimeout                  exit 1: another apply holds the cluster's lock
    ├── StalePlan                    exit 1: a saved plan no longer matches the file or the cluster
    ├── RolledBack                   exit 1: a switchover was undone; the old primary took writes again
    ├── PoolerBusy                   exit 1: the pooler did not pause in time; it was resumed, the step not run
    └── Replan                       exit 1: an action found what its plan could not foresee; apply
                                     plans again (a user sees it only when no round is left)

Every error carries a `hint`: what the user should do next.  Library errors are translated at
the boundary with `raise ... from exc`, so a user never sees a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_ERROR = 2


class PgtopoError(Exception):
    """Root of every error pgtopo reports to a user."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(PgtopoError):
    """The topology file (or a saved plan) is invalid; `problems` holds one `FILE:LINE:COL: message`
    per error."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("\n".join(problems), hint=hint)
        self.problems = problems


class DockerError(PgtopoError):
    """The Docker engine could not be reached or refused an operation."""


class PullFailed(DockerError):
    """The registry or the engine refused to pull the file's image (apply pulls before it changes
    anything: nothing was changed)."""


class PostgresError(PgtopoError):
    """A PostgreSQL server refused a command or could not be reached."""


class SafetyRefusal(PgtopoError):
    """Doing what the file asks could lose data; pgtopo changed nothing."""

    exit_code = EXIT_CHANGES


class NotConverged(PgtopoError):
    """Apply finished its actions but the cluster still differs from the file."""

    exit_code = EXIT_CHANGES


class LockTimeout(PgtopoError):
    """Another pgtopo holds the cluster's lock for longer than --lock-timeout."""

    exit_code = EXIT_CHANGES


class StalePlan(PgtopoError):
    """A saved plan was made from another file content or another cluster state."""

    exit_code = EXIT_CHANGES


class RolledBack(PgtopoError):
    """A switchover could not finish and was undone: the old primary runs as the primary again,
    nothing was promoted."""

    exit_code = EXIT_CHANGES


class PoolerBusy(PgtopoError):
    """The pooler could not pause within `pooler.pause_timeout_seconds` (a transaction ran on): it
    was resumed at once, and the step it was to hide (a switchover, a restart) was not run."""

    exit_code = EXIT_CHANGES


class Replan(PgtopoError):
    """An action found the cluster in a state its plan could not foresee, and waiting cannot help
    (a started standby whose upstream removed the WAL it needs): the round ends once the other
    nodes of its wave are done, and apply plans again from what it observes."""

    exit_code = EXIT_CHANGES


class ServerDidNotStart(PgtopoError):
    """A server stopped right after it was started (Docker restarted it, or its container exited):
    it cannot start on its data with its settings.  `fatal`: the server's own FATAL line."""

    def __init__(self, message: str, node: str, fatal: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.node = node
        self.fatal = fatal


class SettingRejected(PgtopoError):
    """A node restarted with the file's settings did not start: it was put back on the settings it
    ran with, and the change taken back out of the nodes not restarted yet.  Exit 2: the file's
    settings are the error."""
