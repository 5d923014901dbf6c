"""The roles' and databases' part of a plan (pure): what the file names is made or changed to the
file's attributes; what pgtopo made that the file no longer names is reported, and dropped only
with --prune-roles / --prune-databases.

Called by plan.py once the nodes' and the pooler's actions are ordered.  Everything here runs on
the primary, in the plan's last phase (Phase.CATALOG), once it takes writes: never in a plan that
promotes another node or upgrades the primary (the next round of apply does it then).  pgtopo
knows what it made by a comment, MARK, on the role or database (COMMENT ON ROLE / DATABASE): a
role or database without it that the file does not name is never touched.
"""

from __future__ import annotations

from typing import NamedTuple

from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import DatabaseFacts, Observed, RoleFacts
from pgtopo.spec import Database, Role, Topology

MARK = "managed by pgtopo"  # the comment on every role and database pgtopo made or adopted
WAVE = Wave(Phase.CATALOG, 0)
# Steps after which the primary is another server (or another cluster): roles wait for the next round.
MOVES_THE_PRIMARY = (Kind.SWITCHOVER, Kind.FAILOVER, Kind.UPGRADE)
PASSWORD = "password"  # in an action's settings: set the file's password (its value is never in a plan)


class Part(NamedTuple):
    actions: list[Action]
    notes: list[str]
    warnings: list[str]


def part(topo: Topology, obs: Observed, planned: list[Action], prune_roles: bool = False,
         prune_databases: bool = False) -> Part:
    """The actions on the file's roles and databases, and what to tell about the rest."""
    wanted = bool(topo.roles or topo.databases)
    later = f"roles and databases: compared once {topo.primary} takes writes, in a later round of apply"
    if (moving := next((a for a in planned if a.kind in MOVES_THE_PRIMARY), None)) is not None:
        return Part([], [f"roles and databases: after the {moving.kind.value}, in a later round of apply"]
                    if wanted else [], [])
    if obs.roles is None or obs.databases is None:
        if wanted and any(a.kind is Kind.INIT and a.node == topo.primary for a in planned):
            return Part(_create_all(topo), [], [])  # a new cluster: none of them exists yet
        return Part([], [later] if wanted else [], [])
    roles = {r.name: r for r in obs.roles}
    databases = {d.name: d for d in obs.databases}
    actions = [a for name in _ordered(topo) if (a := _role(topo, name, roles.get(name))) is not None]
    actions += [a for name, db in topo.databases.items() if (a := _database(topo, name, db, databases.get(name)))]
    notes = [n for name, db in topo.databases.items() if (n := _creation_only(name, db, databases.get(name)))]
    gone_dbs = sorted(d.name for d in obs.databases if d.managed and d.name not in topo.databases)
    gone_roles = sorted(r.name for r in obs.roles if r.managed and r.name not in topo.roles)
    warnings = [_left(topo, "database", name, "--prune-databases") for name in gone_dbs if not prune_databases]
    warnings += [_left(topo, "role", name, "--prune-roles") for name in gone_roles if not prune_roles]
    if prune_databases:
        actions += [_drop(topo, Kind.DROP_DATABASE, name, "--prune-databases: DROP DATABASE with everything in it "
                          "(its open connections are ended)") for name in gone_dbs]
    if prune_roles:
        actions += [_drop(topo, Kind.DROP_DB_ROLE, name, "--prune-roles: DROP ROLE (the server refuses while it "
                          "still owns objects or holds privileges)") for name in gone_roles]
    if wanted and not actions:
        notes.append(f"roles and databases: as the file says ({len(topo.roles)} role(s), "
                     f"{len(topo.databases)} database(s))")
    return Part(actions, notes, warnings)


def _ordered(topo: Topology) -> list[str]:
    """The file's roles, each after the roles of the file it is a member of (the model refuses cycles)."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out or name not in topo.roles:
            return
        for group in topo.roles[name].in_roles:
            if group != name:
                visit(group)
        out.append(name)

    for name in topo.roles:
        visit(name)
    return out


def _create_all(topo: Topology) -> list[Action]:
    return ([_create_role(topo, name) for name in _ordered(topo)]
            + [_create_database(topo, name, db) for name, db in topo.databases.items()])


def _attributes(role: Role) -> str:
    parts = ["login" if role.login else "nologin"]
    parts += ["createdb"] if role.createdb else []
    parts += [] if role.inherit else ["noinherit"]
    parts += [f"connection_limit {role.connection_limit}"] if role.connection_limit != -1 else []
    parts += [f"valid_until {role.valid_until}"] if role.valid_until != "infinity" else []
    parts += [f"in_roles {', '.join(role.in_roles)}"] if role.in_roles else []
    parts += ["password from the file"] if role.password is not None else ["no password"]
    return ", ".join(parts)


def _create_role(topo: Topology, name: str) -> Action:
    return Action(Kind.CREATE_DB_ROLE, topo.primary, f"{name}: not on the server: create it ({_attributes(topo.roles[name])})",
                  wave=WAVE, target=name)


def _role(topo: Topology, name: str, have: RoleFacts | None) -> Action | None:
    if have is None:
        return _create_role(topo, name)
    want = topo.roles[name]
    changes: list[tuple[str, str, str | None]] = []  # (what, how it reads, the new value for settings)
    for key, old, new in (("login", have.login, want.login), ("createdb", have.createdb, want.createdb),
                          ("inherit", have.inherit, want.inherit)):
        if old != new:
            changes.append((key, f"{key} {_bool(old)} → {_bool(new)}", _bool(new)))
    if have.connection_limit != want.connection_limit:
        changes.append(("connection_limit", f"connection_limit {have.connection_limit} → {want.connection_limit}",
                        str(want.connection_limit)))
    if have.valid_until != want.valid_until:
        changes.append(("valid_until", f"valid_until {have.valid_until} → {want.valid_until}", want.valid_until))
    granted, revoked = sorted(set(want.in_roles) - set(have.in_roles)), sorted(set(have.in_roles) - set(want.in_roles))
    if granted or revoked:
        listed = " ".join([f"+{g}" for g in granted] + [f"-{r}" for r in revoked])
        changes.append(("in_roles", f"in_roles {listed}", ",".join(sorted(want.in_roles))))
    if want.password is not None and have.password is False:
        changes.append((PASSWORD, "password", None))  # never a value, not even the verifier
    if not have.managed:
        changes.append(("mark", "made without pgtopo: mark it as pgtopo's (COMMENT ON ROLE)", MARK))
    if not changes:
        return None
    return Action(Kind.ALTER_DB_ROLE, topo.primary, f"{name}: " + "; ".join(text for _, text, _ in changes),
                  wave=WAVE, target=name, settings=tuple((key, value) for key, _, value in changes))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _create_database(topo: Topology, name: str, db: Database) -> Action:
    extra = "".join(f", {key} {value}" for key, value in (("encoding", db.encoding), ("locale", db.locale)) if value)
    return Action(Kind.CREATE_DATABASE, topo.primary, f"{name}: not on the server: create it (owner {db.owner}{extra})",
                  wave=WAVE, target=name)


def _database(topo: Topology, name: str, db: Database, have: DatabaseFacts | None) -> Action | None:
    if have is None:
        return _create_database(topo, name, db)
    changes: list[tuple[str, str, str | None]] = []
    if have.owner != db.owner:
        changes.append(("owner", f"owner {have.owner} → {db.owner}", db.owner))
    if not have.managed:
        changes.append(("mark", "made without pgtopo: mark it as pgtopo's (COMMENT ON DATABASE)", MARK))
    if not changes:
        return None
    return Action(Kind.ALTER_DATABASE, topo.primary, f"{name}: " + "; ".join(text for _, text, _ in changes),
                  wave=WAVE, target=name, settings=tuple((key, value) for key, _, value in changes))


def _creation_only(name: str, db: Database, have: DatabaseFacts | None) -> str | None:
    """The file's encoding or locale differs from the database's: said, never changed (a database
    gets them when it is made)."""
    if have is None:
        return None
    differ = [f"{key} is {old}, the file says {new}" for key, old, new in
              (("encoding", have.encoding, db.encoding), ("locale", have.locale, db.locale))
              if new is not None and old is not None and _spelling(old) != _spelling(new)]
    return f"database {name}: {'; '.join(differ)}: used at creation only, not changed" if differ else None


def _spelling(name: str) -> str:
    """UTF8, utf-8 and UTF-8 name one encoding (and C.UTF-8, C.utf8 one locale)."""
    return name.lower().replace("-", "")


def _left(topo: Topology, what: str, name: str, flag: str) -> str:
    return (f"{what} {name} was made by pgtopo and is no longer in the file: left as it is on {topo.primary}; "
            f"apply {flag} drops it")


def _drop(topo: Topology, kind: Kind, name: str, how: str) -> Action:
    return Action(kind, topo.primary, f"{name}: made by pgtopo, no longer in the file, and {how}", wave=WAVE,
                  target=name, destructive=True)
