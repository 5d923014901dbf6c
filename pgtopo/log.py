"""structlog set-up, and the one event per action that apply logs (cluster, node, action, reason, duration).

Called by the CLI.  Logs go to stderr: console lines for people (warnings only unless -v), JSON
lines for CI with --log-format json.  structlog is configured (and imported) on first use, so
commands that log nothing start fast.  Nothing secret is ever passed to a log call.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pgtopo.actions import Action

_settings: dict[str, Any] = {"verbose": False, "fmt": "console"}
_logger: Any = None


def configure(verbose: bool, fmt: str) -> None:
    """Remember how to log; structlog itself is set up when the first event is logged."""
    global _logger
    _settings.update(verbose=verbose, fmt=fmt)
    _logger = None


def _get() -> Any:
    global _logger
    if _logger is None:
        import structlog

        verbose, fmt = _settings["verbose"], _settings["fmt"]
        level = logging.DEBUG if verbose else (logging.INFO if fmt == "json" else logging.WARNING)
        renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                        renderer],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )
        _logger = structlog.get_logger("pgtopo")
    return _logger


def _fields(cluster: str, action: Action) -> dict[str, object]:
    return {"cluster": cluster, "node": action.node or None, "action": action.kind.value, "reason": action.reason}


def action_started(cluster: str, action: Action) -> None:
    _get().debug("action started", **_fields(cluster, action))


def action_done(cluster: str, action: Action, seconds: float, note: str | None = None) -> None:
    extra = {"note": note} if note else {}
    _get().info("action done", duration=round(seconds, 3), **_fields(cluster, action), **extra)
