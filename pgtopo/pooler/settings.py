"""The PgBouncer settings the file's `pooler.parameters` may set, and the check of their values.

Read by spec.py (whose `Pooler` is the file's `pooler:`) and pooler/config.py.  Pure.
"""

from __future__ import annotations

from typing import Literal

# The PgBouncer settings the file may set, and the kind of value each takes.  Everything else
# (listen address and port, auth, admin users, the databases section, files) is pgtopo's: a
# user value would break the endpoint or let the pooler authenticate in a way pgtopo does not
# check.  https://www.pgbouncer.org/config.html
SETTINGS: dict[str, Literal["int", "seconds", "bool"]] = {
    "max_client_conn": "int",
    "default_pool_size": "int",
    "min_pool_size": "int",
    "reserve_pool_size": "int",
    "reserve_pool_timeout": "seconds",
    "max_db_connections": "int",
    "max_user_connections": "int",
    "max_prepared_statements": "int",
    "server_idle_timeout": "seconds",
    "server_lifetime": "seconds",
    "server_connect_timeout": "seconds",
    "server_login_retry": "seconds",
    "query_timeout": "seconds",
    "query_wait_timeout": "seconds",
    "client_idle_timeout": "seconds",
    "client_login_timeout": "seconds",
    "idle_transaction_timeout": "seconds",
    "log_connections": "bool",
    "log_disconnections": "bool",
    "log_pooler_errors": "bool",
    "stats_period": "seconds",
    "tcp_keepalive": "bool",
}

def problem(name: str, value: object) -> str | None:
    """Why `parameters.<name>: value` may not be set; None when it may."""
    kind = SETTINGS.get(name)
    if kind is None:
        return (f"pooler setting {name!r} is not one pgtopo passes to PgBouncer; allowed: "
                f"{', '.join(sorted(SETTINGS))}")
    if kind == "bool" and not isinstance(value, bool):
        return f"pooler setting {name!r} takes true or false (got {value!r})"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"pooler setting {name!r} takes a whole number (got {value!r})"
    if kind == "seconds" and isinstance(value, bool):
        return f"pooler setting {name!r} takes a number of seconds (got {value!r})"
    return None
