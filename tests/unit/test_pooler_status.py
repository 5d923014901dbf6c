"""The pooler's line in `status` and its part of the status document."""

from __future__ import annotations

from dataclasses import replace

import jsonschema

from pgtopo import documents, render
from pgtopo.plan import plan
from pgtopo.schema import document_schema

from .test_plan import converged, topo
from .test_pooler_plan import POOLER, T, pooler_container, with_pooler


def test_a_file_without_a_pooler_and_none_found_has_no_pooler_entry() -> None:
    assert documents.status_document(topo(), converged(topo())).pooler is None


def test_the_pooler_line_says_endpoint_target_and_connections() -> None:
    doc = documents.status_document(T, with_pooler(converged(T), clients=12, servers=2))
    assert doc.pooler is not None
    assert render.pooler_line(doc.pooler) == "pooler 127.0.0.1:6432 → primary · running · 12 clients, 2 server connections"
    jsonschema.validate(doc.model_dump(mode="json"), document_schema("status"))


def test_a_paused_pooler_says_so_and_its_drift_names_the_resume() -> None:
    obs = with_pooler(converged(T), paused=True)
    doc = documents.status_document(T, obs, plan(T, obs))
    assert doc.pooler is not None and doc.pooler.drift == ("resume-pooler",)
    assert "PAUSED" in render.pooler_line(doc.pooler) and "drift: resume-pooler" in render.pooler_line(doc.pooler)
    assert doc.in_sync is False


def test_a_missing_pooler_and_one_whose_console_is_silent() -> None:
    missing = documents.status_document(T, converged(T)).pooler
    assert missing is not None and render.pooler_line(missing) == "pooler no port · missing"
    silent = documents.status_document(T, with_pooler(converged(T), paused=None, target=None, error="refused")).pooler
    assert silent is not None and render.pooler_line(silent) == "pooler 127.0.0.1:6432 · running, refused"


def test_a_pooler_the_file_dropped_is_shown_as_not_in_file() -> None:
    obs = replace(with_pooler(converged(topo())), pooler=replace(with_pooler(converged(T)).pooler,
                                                                container=pooler_container(T)))
    line = render.pooler_line(documents.status_document(topo(), obs).pooler)
    assert line.endswith("(not in file)")
    assert POOLER["port"] == 6432
