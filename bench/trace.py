"""Run the pgtopo CLI with every Docker, PostgreSQL and pipeline call timed (a diagnostic for
the benchmark: where does a command spend its time between and inside apply's actions?).

  .venv/bin/python bench/trace.py apply FILE --yes
  .venv/bin/python bench/trace.py switchover FILE --to replica

Nothing in pgtopo is changed: after the pgtopo modules are imported, the traced functions are
replaced, in every pgtopo module that holds them, by wrappers that print one line to stderr when
the call returns:  start (s since the tracer started) · duration · thread · module.function.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

T0 = time.monotonic()

TRACED = {
    "pgtopo.loader": ["load_topology"],
    "pgtopo.docker_ops": ["connect", "list_containers", "list_volumes", "inspect_network", "create_network",
                          "create_volume", "create_container", "start", "stop", "remove_container", "remove_volume",
                          "inspect_container", "host_port", "run_job", "read_file", "read_dir", "write_files"],
    "pgtopo.pg_ops": ["connect", "probe", "create_slot", "drop_slot", "alter_system", "ensure_replication_role",
                      "receiver", "streams_from", "wait_streaming", "checkpoint", "replay_lsn", "promote",
                      "wait_replayed_past", "wait_ready"],
    "pgtopo.probe": ["probe"],
    "pgtopo.state": ["read", "read_from", "write", "write_history", "read_history_from", "read_history"],
    "pgtopo.observe": ["observe", "_early_state", "_import_psycopg", "_read_state", "_probe_node", "_read_data"],
    "pgtopo.lock": ["_try_acquire", "_release"],
    "pgtopo.plan": ["plan"],
    "pgtopo.execute": ["execute", "_check_source"],
    "pgtopo.nodes": ["await_server", "stop"],
    "pgtopo.switch": ["switchover", "_shutdown_checkpoint", "_restart_as_standby"],
    "pgtopo.reconcile": ["diff", "wait_streaming", "_converge"],
}


def _short(args: tuple[Any, ...]) -> str:
    shown = []
    for a in args:
        text = getattr(a, "name", None) or getattr(a, "node", None) or getattr(a, "kind", None)
        if text is None and isinstance(a, (str, int, float)):
            text = a
        if text is not None:
            shown.append(str(getattr(text, "value", text))[:40])
    return ", ".join(shown)


def traced(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.monotonic()
            print(f"{start - T0:7.3f} {end - start:7.3f}  {threading.current_thread().name[:14]:<14} "
                  f"{label}({_short(args)})", file=sys.stderr, flush=True)

    return wrapper


def install() -> None:
    """Wrap each traced function and rebind it wherever a pgtopo module imported it by name
    (names a given pgtopo version does not have are skipped)."""
    replacements: dict[int, Callable[..., Any]] = {}
    for name, functions in TRACED.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for fn_name in functions:
            original = getattr(module, fn_name, None)
            if original is None:
                continue
            replacements[id(original)] = traced(f"{name.split('.')[-1]}.{fn_name}", original)
    for mod_name, module in list(sys.modules.items()):
        if mod_name == "pgtopo" or mod_name.startswith("pgtopo."):
            for attr, value in list(vars(module).items()):
                if id(value) in replacements:
                    setattr(module, attr, replacements[id(value)])


def main() -> None:
    install()
    print(f"{time.monotonic() - T0:7.3f}         tracer installed (pgtopo modules imported)", file=sys.stderr)
    from pgtopo.cli import main as cli_main

    sys.argv = ["pgtopo", *sys.argv[1:]]
    try:
        cli_main()
    finally:
        print(f"{time.monotonic() - T0:7.3f}         exit", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
