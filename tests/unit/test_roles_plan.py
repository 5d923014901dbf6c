"""The roles' and databases' part of a plan, on plain values: (file, roles and databases observed on
the primary) -> the actions, their reasons, and what is reported instead of done."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pgtopo.actions import Kind, Phase
from pgtopo.observed import DatabaseFacts, NodeFacts, Observed, RoleFacts
from pgtopo.plan import plan
from pgtopo.roles.planning import MARK, PASSWORD
from pgtopo.spec import Topology

from .test_plan import container, converged, pg_replica, topo, volume

APP = {"password": {"env": "APP_PASSWORD"}, "connection_limit": 50}
T = topo(roles={"app": APP}, databases={"appdb": {"owner": "app"}})


def app(**facts: Any) -> RoleFacts:
    """Role app on the server exactly as T says, marked as pgtopo's, its password the file's."""
    base: dict[str, Any] = dict(name="app", managed=True, connection_limit=50, password=True)
    base.update(facts)
    return RoleFacts(**base)


def appdb(**facts: Any) -> DatabaseFacts:
    base: dict[str, Any] = dict(name="appdb", owner="app", managed=True, encoding="UTF8", locale="C.UTF-8")
    base.update(facts)
    return DatabaseFacts(**base)


def seen(t: Topology = T, roles: tuple[RoleFacts, ...] = (), databases: tuple[DatabaseFacts, ...] = (),
         **nodes: NodeFacts) -> Observed:
    return replace(converged(t, **nodes), roles=roles, databases=databases)


def catalog(p) -> list[tuple[str, str]]:
    """(kind, reason) of the plan's actions on roles and databases."""
    return [(a.kind.value, a.reason) for a in p.actions if a.wave.phase is Phase.CATALOG]


def test_in_sync_nothing_to_do() -> None:
    p = plan(T, seen(roles=(app(),), databases=(appdb(),)))
    assert p.empty and p.warnings == ()
    assert "roles and databases: as the file says (1 role(s), 1 database(s))" in p.notes


def test_missing_ones_are_made_on_the_primary_roles_first_groups_before_members() -> None:
    t = topo(roles={"app": {**APP, "in_roles": ["readers", "pg_read_all_data"]}, "readers": {"login": False}},
             databases={"appdb": {"owner": "app", "encoding": "UTF8", "locale": "C.UTF-8"}})
    p = plan(t, seen(t))
    assert catalog(p) == [
        ("create-db-role", "readers: not on the server: create it (nologin, no password)"),
        ("create-db-role", "app: not on the server: create it (login, connection_limit 50, in_roles readers, "
                           "pg_read_all_data, password from the file)"),
        ("create-database", "appdb: not on the server: create it (owner app, encoding UTF8, locale C.UTF-8)"),
    ]
    assert {(a.node, a.target) for a in p.actions} == {("primary", "readers"), ("primary", "app"), ("primary", "appdb")}
    assert not p.destructive
    assert [a.kind.symbol for a in p.actions] == ["+", "+", "+"]


def test_a_new_cluster_makes_them_after_everything_else() -> None:
    p = plan(T, Observed(cluster="pg"))
    assert [a.kind for a in p.actions[-2:]] == [Kind.CREATE_DB_ROLE, Kind.CREATE_DATABASE]
    assert all(a.wave.phase is Phase.CATALOG for a in p.actions[-2:])
    assert max(a.wave for a in p.actions) == p.actions[-1].wave


@pytest.mark.parametrize("facts, reason, settings", [
    pytest.param(dict(connection_limit=20), "app: connection_limit 20 → 50", {"connection_limit": "50"},
                 id="connection_limit"),
    pytest.param(dict(login=False), "app: login false → true", {"login": "true"}, id="login"),
    pytest.param(dict(createdb=True), "app: createdb true → false", {"createdb": "false"}, id="createdb"),
    pytest.param(dict(inherit=False), "app: inherit false → true", {"inherit": "true"}, id="inherit"),
    pytest.param(dict(valid_until="2020-01-01T00:00:00+00:00"), "app: valid_until 2020-01-01T00:00:00+00:00 → infinity",
                 {"valid_until": "infinity"}, id="valid_until"),
    pytest.param(dict(in_roles=("pg_monitor",)), "app: in_roles -pg_monitor", {"in_roles": ""},
                 id="a-membership-granted-by-hand"),
    pytest.param(dict(password=False), "app: password", {PASSWORD: None}, id="password-drift"),
    pytest.param(dict(managed=False), "app: made without pgtopo: mark it as pgtopo's (COMMENT ON ROLE)",
                 {"mark": MARK}, id="adopted"),
    pytest.param(dict(connection_limit=-1, password=False), "app: connection_limit -1 → 50; password",
                 {"connection_limit": "50", PASSWORD: None}, id="two-at-once"),
])
def test_each_attribute_that_differs_is_changed(facts: dict[str, Any], reason: str, settings: dict[str, Any]) -> None:
    p = plan(T, seen(roles=(app(**facts),), databases=(appdb(),)))
    assert catalog(p) == [("alter-db-role", reason)]
    [action] = p.actions
    assert dict(action.settings) == settings and action.target == "app" and action.node == "primary"
    assert action.kind.symbol == "~" and not action.destructive


def test_a_membership_the_file_adds_is_granted() -> None:
    t = topo(roles={"app": {**APP, "in_roles": ["pg_read_all_data"]}})
    assert catalog(plan(t, seen(t, roles=(app(in_roles=("pg_monitor",)),)))) == [
        ("alter-db-role", "app: in_roles +pg_read_all_data -pg_monitor")]


def test_a_password_not_compared_is_left_alone() -> None:
    """The file's password could not be read (diff warns): the role is not changed for it."""
    assert plan(T, seen(roles=(app(password=None),), databases=(appdb(),))).empty


def test_a_role_without_a_password_in_the_file_keeps_its_own() -> None:
    t = topo(roles={"app": {"connection_limit": 50}})
    assert plan(t, seen(t, roles=(app(password=None),))).empty


def test_the_password_never_shows_in_a_plan() -> None:
    p = plan(T, seen(roles=(app(password=False),), databases=(appdb(),)))
    assert "APP_PASSWORD" not in repr(p) and "secret" not in repr(p)


def test_a_managed_role_removed_from_the_file_is_reported_and_kept() -> None:
    p = plan(T, seen(roles=(app(), app(name="old")), databases=(appdb(),)))
    assert p.empty
    assert p.warnings == ("role old was made by pgtopo and is no longer in the file: left as it is on primary; "
                          "apply --prune-roles drops it",)


def test_with_prune_roles_it_is_dropped_destructively() -> None:
    p = plan(T, seen(roles=(app(), app(name="old")), databases=(appdb(),)), prune_roles=True)
    assert catalog(p) == [("drop-db-role", "old: made by pgtopo, no longer in the file, and --prune-roles: DROP ROLE "
                                           "(the server refuses while it still owns objects or holds privileges)")]
    assert p.destructive == p.actions and p.actions[0].kind.symbol == "-" and p.warnings == ()


def test_a_role_pgtopo_did_not_make_is_never_touched() -> None:
    """Not in the file, not marked: not even --prune-roles drops it, nor is it reported."""
    hand_made = app(name="alice", managed=False, connection_limit=3, password=None)
    for prune in (False, True):
        p = plan(T, seen(roles=(app(), hand_made), databases=(appdb(), appdb(name="theirs", managed=False))),
                 prune_roles=prune, prune_databases=prune)
        assert p.empty and p.warnings == ()


def test_databases_owner_adoption_and_prune() -> None:
    p = plan(T, seen(roles=(app(),), databases=(appdb(owner="postgres", managed=False), appdb(name="olddb"))))
    assert catalog(p) == [("alter-database", "appdb: owner postgres → app; made without pgtopo: mark it as pgtopo's "
                                             "(COMMENT ON DATABASE)")]
    assert p.warnings == ("database olddb was made by pgtopo and is no longer in the file: left as it is on primary; "
                          "apply --prune-databases drops it",)
    pruned = plan(T, seen(roles=(app(),), databases=(appdb(), appdb(name="olddb"))), prune_databases=True)
    assert catalog(pruned) == [("drop-database", "olddb: made by pgtopo, no longer in the file, and --prune-databases: "
                                                 "DROP DATABASE with everything in it (its open connections are ended)")]
    assert pruned.destructive == pruned.actions


def test_a_database_is_dropped_before_the_role_that_owned_it() -> None:
    t = topo()
    p = plan(t, seen(t, roles=(app(),), databases=(appdb(),)), prune_roles=True, prune_databases=True)
    assert [(a.kind, a.target) for a in p.actions] == [(Kind.DROP_DATABASE, "appdb"), (Kind.DROP_DB_ROLE, "app")]
    assert len({a.wave for a in p.actions}) == 1 and {a.node for a in p.actions} == {"primary"}  # one chain, in order


def test_encoding_and_locale_are_for_creation_only() -> None:
    t = topo(roles={"app": APP}, databases={"appdb": {"owner": "app", "encoding": "utf-8", "locale": "en_US.UTF-8"}})
    p = plan(t, seen(t, roles=(app(),), databases=(appdb(),)))
    assert p.empty
    assert "database appdb: locale is C.UTF-8, the file says en_US.UTF-8: used at creation only, not changed" in p.notes


def test_nothing_while_the_file_promotes_another_node() -> None:
    t = topo(primary="replica", roles={"app": APP}, nodes={"primary": {}, "replica": {}, "replica2": {}})
    caught_up = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                          pg=pg_replica(T, "replica", lsn=0x4000000))
    obs = replace(converged(topo(nodes={"primary": {}, "replica": {}, "replica2": {}}), replica=caught_up), roles=(),
                  databases=())
    p = plan(t, obs)
    assert any(a.kind is Kind.SWITCHOVER for a in p.actions)
    assert catalog(p) == []
    assert "roles and databases: after the switchover, in a later round of apply" in p.notes


def test_not_read_on_the_primary_nothing_is_planned() -> None:
    """The primary did not answer, or does not take writes: a later round compares them."""
    p = plan(T, converged(T))
    assert catalog(p) == []
    assert "roles and databases: compared once primary takes writes, in a later round of apply" in p.notes


def test_a_file_without_roles_plans_nothing_and_says_nothing() -> None:
    t = topo()
    p = plan(t, seen(t))
    assert p.empty and not any("roles" in n for n in p.notes)


def test_a_saved_plan_with_every_new_kind_matches_the_schema_and_reads_back() -> None:
    from pgtopo import documents

    from .test_documents import validator

    t = topo(roles={"app": APP, "new": {}}, databases={"appdb": {"owner": "app"}, "newdb": {}})
    obs = seen(t, roles=(app(password=False), app(name="old")), databases=(appdb(owner="postgres"), appdb(name="olddb")))
    p = plan(t, obs, prune_roles=True, prune_databases=True)
    assert {a.kind for a in p.actions} == {Kind.CREATE_DB_ROLE, Kind.ALTER_DB_ROLE, Kind.DROP_DB_ROLE,
                                           Kind.CREATE_DATABASE, Kind.ALTER_DATABASE, Kind.DROP_DATABASE}
    doc = documents.plan_document(t, "t.yaml", "text", obs, p)
    validator("plan").validate(json.loads(doc.to_json()))
    assert documents.plan_from_json(doc.to_json()).plan() == p
    assert doc.summary.destructive == 2
    assert doc.fingerprint.state["roles"]["app"][-1] is False  # whether the password matches; never a value


def test_the_fingerprint_names_roles_only_when_there_are_some() -> None:
    from pgtopo import documents

    before = documents.fingerprint(converged(T))
    assert documents.fingerprint(seen()) == before  # read, none there: a plan saved before roles existed still fits
    assert documents.fingerprint(seen(roles=(app(),)))[0] != before[0]
    assert documents.fingerprint(seen(roles=(app(),)))[0] != documents.fingerprint(seen(roles=(app(password=False),)))[0]
