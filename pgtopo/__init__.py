"""pgtopo: a declarative topology reconciler for PostgreSQL streaming replication on plain Docker."""

__version__ = "0.1.0"
