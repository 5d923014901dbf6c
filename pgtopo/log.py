"""structlog set-up, and the events pgtopo logs: at INFO (`--log-format json`) one per action done
(cluster, node, action, reason, duration); with -v also what was observed, every decision of the
plan with its reason, every refusal, each action's start and every wait (what for, how long at
most), so a CI log explains a run without running it again.

Called by the CLI (set-up, actions), reconcile (observation, plan) and nodes/lock (waits).  Logs
go to stderr: console lines for people (warnings only unless -v), JSON lines for CI with
--log-format json.  structlog is imported only when something will be logged
(and then in the background from the start), so commands that log nothing never pay for it.
Nothing secret is ever passed to a log call.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from pgtopo.actions import Action, Plan
from pgtopo.observed import Observed

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


def _debug() -> bool:
    return bool(_level() <= logging.DEBUG)


def observed(cluster: str, obs: Observed) -> None:
    """With -v: one event per node seen (container, server role, data) and the cluster's facts."""
    if not _debug():
        return
    log = _get()
    log.debug("observed", cluster=cluster, network=obs.network is not None, credentials=obs.credentials,
              system_identifier=obs.system_identifier, foreign=list(obs.foreign), leftovers=list(obs.leftovers))
    for name, n in sorted(obs.nodes.items()):
        pg = n.pg
        log.debug("observed node", cluster=cluster, node=name,
                  container=n.container.state if n.container else None,
                  role=None if pg is None else ("replica" if pg.in_recovery else "primary"),
                  upstream=pg.receiver.upstream if pg and pg.receiver else None,
                  timeline=pg.timeline if pg else None, has_data=n.has_data, error=n.pg_error)


def planned(cluster: str, plan: Plan) -> None:
    """With -v: every decision of the plan with its reason, and every refusal."""
    if not _debug():
        return
    log = _get()
    for refusal in plan.refusals:
        log.debug("plan refuses", cluster=cluster, refusal=refusal)
    for a in plan.actions:
        log.debug("plan", wave=f"{a.wave.phase.name.lower()}.{a.wave.rank}", **_fields(cluster, a))
    if plan.empty and not plan.refusals:
        log.debug("plan", cluster=cluster, action=None, reason="the cluster is as the file says")


def waiting(cluster: str, node: str | None, what: str, at_most: float | None) -> None:
    """With -v: a wait begins (what for, its bound in seconds; None: no bound)."""
    if _debug():
        _get().debug("waiting", cluster=cluster, node=node, until=what,
                     at_most=None if at_most is None else round(at_most, 1))
