"""structlog set-up, and the one event per action that apply logs (cluster, node, action, reason, duration).

Called by the CLI.  Logs go to stderr: console lines for people (warnings only unless -v), JSON
lines for CI with --log-format json.  structlog is imported only when something will be logged
(and then in the background from the start), so commands that log nothing never pay for it.
Nothing secret is ever passed to a log call.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from pgtopo.actions import Action

_settings: dict[str, Any] = {"verbose": False, "fmt": "console"}
_logger: Any = None
_loading = False
_lock = threading.Lock()


def configure(verbose: bool, fmt: str) -> None:
    """Remember how to log.  structlog is imported (noticeable CPU, see bench/RESULTS.md) only when an
    event will be shown: in the background when the first action starts, so neither the
    observation before it (slower when it is imported at once) nor the first event waits."""
    global _logger, _loading
    _settings.update(verbose=verbose, fmt=fmt)
    _logger = None
    _loading = False


def _load_soon() -> None:
    global _loading
    with _lock:
        if _loading or _logger is not None:
            return
        _loading = True
    threading.Thread(target=_get, name="pgtopo-log", daemon=True).start()


def _level() -> int:
    if _settings["verbose"]:
        return logging.DEBUG
    return logging.INFO if _settings["fmt"] == "json" else logging.WARNING


def _get() -> Any:
    global _logger
    with _lock:
        if _logger is None:
            import structlog

            fmt = _settings["fmt"]
            renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                        else structlog.dev.ConsoleRenderer(colors=False))
            structlog.configure(
                processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                            renderer],
                wrapper_class=structlog.make_filtering_bound_logger(_level()),
                logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
                cache_logger_on_first_use=False,
            )
            _logger = structlog.get_logger("pgtopo")
        return _logger


def _fields(cluster: str, action: Action) -> dict[str, object]:
    return {"cluster": cluster, "node": action.node or None, "action": action.kind.value, "reason": action.reason}


def action_started(cluster: str, action: Action) -> None:
    if _level() <= logging.DEBUG:
        _get().debug("action started", **_fields(cluster, action))
    elif _level() <= logging.INFO:
        _load_soon()  # for the "action done" event


def action_done(cluster: str, action: Action, seconds: float, note: str | None = None) -> None:
    if _level() <= logging.INFO:
        extra = {"note": note} if note else {}
        _get().info("action done", duration=round(seconds, 3), **_fields(cluster, action), **extra)
