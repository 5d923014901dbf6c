"""The pooler: one PgBouncer container in front of the cluster, whose read-write pool follows the
primary and is paused around every planned interruption of it (docs/pooler.md).

`settings` (what `pooler.parameters` may set) and `config` (pgbouncer.ini, the auth lookup, the config hash) are
pure; `admin` speaks to PgBouncer's admin console; `run` carries out the pooler's actions and
the pause around a primary's interruption.
"""
