"""The file's roles and databases: made on the primary, kept as the file says, and those pgtopo
made that the file no longer names reported (or dropped when asked).

`planning` (the actions) and `scram` (does a password match a stored SCRAM verifier?) are pure;
`read` is observation's query on the primary; `ops` carries the actions out with `psycopg.sql`.
"""
