"""waits.wait_until against a fake clock: every sleep and every reading of the clock is counted,
none is real."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pgtopo import waits


class Clock:
    """A monotonic clock that moves only when slept on, or when a check takes time."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.calls: list[float] = []  # the time of each call of the check

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def check(self, answers: list[object], takes: float = 0.0) -> Callable[[], object]:
        """A check that returns `answers` one by one (then None for ever), each taking `takes` s."""
        pending = iter(answers)

        def ask() -> object:
            self.calls.append(self.now)
            self.now += takes
            return next(pending, None)

        return ask


def wait(clock: Clock, check: Callable[[], object], deadline: float, interval: float) -> object:
    return waits.wait_until(check, deadline, interval, clock=clock, sleep=clock.sleep)


def test_returns_the_first_answer_that_is_not_none() -> None:
    clock = Clock()
    assert wait(clock, clock.check([None, None, "up", "later"]), deadline=110.0, interval=0.5) == "up"
    assert clock.calls == [100.0, 100.5, 101.0]
    assert clock.sleeps == [0.5, 0.5]


@pytest.mark.parametrize("answer", [False, 0, "", []], ids=["False", "0", "empty string", "empty list"])
def test_a_falsy_answer_is_an_answer(answer: object) -> None:
    clock = Clock()
    assert wait(clock, clock.check([answer]), deadline=110.0, interval=0.5) == answer
    assert clock.sleeps == []


def test_an_answer_at_once_never_sleeps() -> None:
    clock = Clock()
    assert wait(clock, clock.check([1]), deadline=110.0, interval=0.5) == 1
    assert clock.sleeps == [] and clock.calls == [100.0]


@pytest.mark.parametrize("deadline", [99.0, 100.0], ids=["past", "now"])
def test_a_deadline_already_reached_still_gets_one_call(deadline: float) -> None:
    clock = Clock()
    assert wait(clock, clock.check([]), deadline=deadline, interval=0.5) is None
    assert clock.calls == [100.0] and clock.sleeps == []
    clock = Clock()
    assert wait(clock, clock.check(["up"]), deadline=deadline, interval=0.5) == "up"


def test_stops_once_the_deadline_has_passed_after_a_call() -> None:
    clock = Clock()
    assert wait(clock, clock.check([]), deadline=101.0, interval=0.25) is None
    assert clock.calls == [100.0, 100.25, 100.5, 100.75, 101.0]
    assert clock.now == 101.0  # not a moment past it


def test_never_sleeps_past_the_deadline() -> None:
    """The interval does not divide the time left: the last sleep is shortened, and the last call
    comes at the deadline."""
    clock = Clock()
    assert wait(clock, clock.check([]), deadline=101.0, interval=0.4) is None
    assert clock.sleeps == pytest.approx([0.4, 0.4, 0.2])
    assert clock.calls[-1] == pytest.approx(101.0)


def test_time_a_check_takes_counts_against_the_deadline() -> None:
    clock = Clock()
    assert wait(clock, clock.check([], takes=0.1), deadline=101.0, interval=0.5) is None
    # after the second call (100.6 to 100.7) the deadline is 0.3 s away: the third call comes at it
    assert clock.sleeps == pytest.approx([0.5, 0.3])
    assert clock.calls == pytest.approx([100.0, 100.6, 101.0])


def test_the_interval_is_kept_between_calls() -> None:
    clock = Clock()
    wait(clock, clock.check([None] * 9 + ["up"]), deadline=200.0, interval=0.05)
    assert clock.sleeps == pytest.approx([0.05] * 9)
    gaps = [b - a for a, b in zip(clock.calls, clock.calls[1:], strict=False)]
    assert gaps == pytest.approx([0.05] * 9)


def test_an_error_of_the_check_ends_the_wait() -> None:
    clock = Clock()
    calls = []

    def check() -> None:
        calls.append(clock.now)
        if len(calls) == 3:
            raise RuntimeError("gone")

    with pytest.raises(RuntimeError, match="gone"):
        wait(clock, check, deadline=110.0, interval=1.0)
    assert calls == [100.0, 101.0, 102.0]

