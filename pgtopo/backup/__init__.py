"""Backups: WAL archiving, base backups with retention, and new clusters restored from them
(docs/backup.md).

`spec` (the file's `backup:` and `bootstrap:` blocks) and `layout` (where things sit in a
repository, and the archive command) are pure; `take`, `listing` and `restore` touch Docker.
"""
