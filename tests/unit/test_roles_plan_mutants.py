"""The roles' and databases' actions word for word, as `pgtopo diff` shows them, with the settings
apply runs them with; and when they wait for a later round."""

from __future__ import annotations

from pgtopo.actions import Action, Kind
from pgtopo.observed import DataFacts, NodeFacts, Observed
from pgtopo.plan import plan
from pgtopo.roles.planning import MARK, WAVE

from .test_plan import SYSID, container, converged, topo, volume
from .test_roles_plan import APP, T, app, appdb, catalog, seen


def test_a_new_role_s_attributes_are_all_named() -> None:
    t = topo(roles={"owner": {"login": False, "createdb": True, "inherit": False,
                              "valid_until": "2030-01-01T00:00:00+00:00"}})
    assert catalog(plan(t, seen(t))) == [
        ("create-db-role", "owner: not on the server: create it (nologin, createdb, noinherit, "
                           "valid_until 2030-01-01T00:00:00+00:00, no password)")]


def test_a_new_cluster_s_database_is_made_by_its_name() -> None:
    create = plan(T, Observed(cluster="pg")).actions[-1]
    assert create == Action(Kind.CREATE_DATABASE, "primary", "appdb: not on the server: create it (owner app)",
                            wave=WAVE, target="appdb")


def test_a_database_as_the_file_says_gets_no_creation_note() -> None:
    p = plan(T, seen(roles=(app(),), databases=(appdb(),)))
    assert p.notes[-1:] == ("roles and databases: as the file says (1 role(s), 1 database(s))",)
    assert not any("creation only" in n for n in p.notes)


def test_encoding_and_locale_both_differing_are_said_together() -> None:
    t = topo(roles={"app": APP}, databases={"appdb": {"owner": "app", "encoding": "UTF8", "locale": "en_US.UTF-8"}})
    p = plan(t, seen(t, roles=(app(),), databases=(appdb(encoding="LATIN1", locale="C"),)))
    assert p.empty
    assert ("database appdb: encoding is LATIN1, the file says UTF8; locale is C, the file says en_US.UTF-8: used at "
            "creation only, not changed") in p.notes


def test_a_database_s_owner_and_mark_are_set_by_name() -> None:
    p = plan(T, seen(roles=(app(),), databases=(appdb(owner="postgres", managed=False),)))
    [alter] = p.actions
    assert alter.kind is Kind.ALTER_DATABASE and alter.target == "appdb" and alter.node == "primary"
    assert alter.settings == (("owner", "app"), ("mark", MARK))


def test_memberships_are_set_as_one_comma_separated_list() -> None:
    t = topo(roles={"app": {**APP, "in_roles": ["pg_read_all_data", "pg_monitor"]}})
    [alter] = plan(t, seen(t, roles=(app(),))).actions
    assert alter.reason == "app: in_roles +pg_monitor +pg_read_all_data"
    assert alter.settings == (("in_roles", "pg_monitor,pg_read_all_data"),)


def test_a_primary_that_is_started_again_gets_its_roles_in_a_later_round() -> None:
    """Not read (its server is down): only a new cluster's init makes them in the same plan."""
    stopped = NodeFacts("primary", container=container(T, "primary", state="exited"), volume=volume(T, "primary"),
                        data=DataFacts(True, SYSID, state=1, wal_end=0x4000000, wal_timeline=1))
    p = plan(T, converged(T, primary=stopped))
    assert any(a.kind is Kind.START and a.node == "primary" for a in p.actions)
    assert catalog(p) == []
    assert "roles and databases: compared once primary takes writes, in a later round of apply" in p.notes
