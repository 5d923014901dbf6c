"""Follow, rewind or re-clone: the timeline/LSN rules on plain positions."""

from __future__ import annotations

import pytest

from pgtopo.timelines import Position, Verdict, decide, lsn_int, lsn_text, parse_history, shared_end

HISTORY_2 = "1\t0/3000148\tno recovery target specified\n"
HISTORY_3 = "1\t0/3000148\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n"

CASES = [
    pytest.param(Position(1, 100), Position(1, 200), Verdict.FOLLOW, id="same timeline, behind"),
    pytest.param(Position(1, 200), Position(1, 200), Verdict.FOLLOW, id="same timeline, level"),
    pytest.param(Position(1, 300), Position(1, 200), Verdict.RECLONE, id="same timeline, ahead"),
    pytest.param(Position(2, 0x3000200, parse_history(HISTORY_2)), Position(1, 0x4000000), Verdict.REWIND,
                 id="promoted replica: own timeline the upstream does not know"),
    pytest.param(Position(1, 0x3000100), Position(2, 0x4000000, parse_history(HISTORY_2)), Verdict.FOLLOW,
                 id="old primary stopped before the switch point: follow the new timeline"),
    pytest.param(Position(1, 0x3000200), Position(2, 0x4000000, parse_history(HISTORY_2)), Verdict.REWIND,
                 id="old primary wrote past the switch point: rewind"),
    pytest.param(Position(3, 0x6000000, parse_history(HISTORY_3)), Position(2, 0x7000000, parse_history(HISTORY_2)),
                 Verdict.REWIND, id="forked from timeline 2"),
    pytest.param(Position(5, 10, ((4, 5),)), Position(1, 100), Verdict.RECLONE, id="no common timeline"),
    pytest.param(Position(1, 0x3000148), Position(2, 0x4000000, parse_history(HISTORY_2)), Verdict.FOLLOW,
                 id="old primary ends exactly at the switch point (a clean switchover): follow"),
    pytest.param(Position(2, 0x3000300, ((1, 0x3000200),)), Position(2, 0x4000000, ((1, 0x3000148),)),
                 Verdict.REWIND, id="two separate promotions, both timeline 2: diverged at the earlier fork"),
    pytest.param(Position(2, 0x3000100, ((1, 0x3000100),)), Position(2, 0x4000000, ((1, 0x3000148),)),
                 Verdict.FOLLOW, id="two separate promotions, both timeline 2, this one wrote nothing past the fork"),
]


@pytest.mark.parametrize(("node", "upstream", "verdict"), CASES)
def test_decide(node: Position, upstream: Position, verdict: Verdict) -> None:
    assert decide(node, upstream)[0] is verdict


def test_shared_end_follows_histories_not_numbers() -> None:
    a = Position(2, 0x3000300, ((1, 0x3000200),))
    b = Position(2, 0x4000000, ((1, 0x3000148),))
    assert shared_end(a, b) == 0x3000148
    assert shared_end(Position(1, 100), Position(1, 200)) == 100
    assert shared_end(Position(1, 0x3000200), Position(2, 0x4000000, ((1, 0x3000148),))) == 0x3000148


def test_reason_names_the_divergence_point() -> None:
    _, why = decide(Position(3, 0x6000000, parse_history(HISTORY_3)), Position(2, 0x7000000, parse_history(HISTORY_2)))
    assert why == "timeline 3 diverged from the upstream at 0/5000000"


def test_lsn_round_trip_and_history_parsing() -> None:
    assert lsn_text(lsn_int("16/B374D848")) == "16/B374D848"
    assert parse_history("# comment\n1\t0/3000148\treason\n\n") == ((1, 0x3000148),)


def test_a_history_line_without_a_reason_still_counts() -> None:
    assert parse_history("1\t0/3000148\n2\t0/5000000\tno recovery target specified\n") == (
        (1, 0x3000148), (2, 0x5000000))


def test_two_separate_promotions_are_named_in_the_reason() -> None:
    _, why = decide(Position(2, 0x3000300, ((1, 0x3000200),)), Position(2, 0x4000000, ((1, 0x3000148),)), "replica")
    assert why == ("timeline 2 diverged from replica at 0/3000148 "
                   "(same timeline number, another history: two separate promotions)")
