"""A fixed host port something else holds is a refusal: nothing is planned."""

from __future__ import annotations

from dataclasses import replace

from pgtopo.plan import plan

from .test_plan import T, converged


def test_a_taken_port_refuses_the_whole_plan() -> None:
    obs = replace(converged(T), ports_taken=(("replica", 15433, "another process on this host"),))
    result = plan(T, obs)
    assert result.actions == ()
    assert result.refusals == ("replica: host port 15433 is taken by another process on this host; free it or "
                               "change nodes.replica.port in the file, then apply again",)


def test_no_taken_port_no_refusal() -> None:
    assert plan(T, converged(T)).refusals == ()
