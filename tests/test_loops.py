"""`BackgroundLoop`: steps at start and every interval, pokes, a failing step, stop (prompt, joined, last step).

No fixed sleeps: each test waits on a condition with a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest

from feeds.core.loops import BackgroundLoop

DEADLINE = 10.0  # seconds: generous for a loaded machine; a passing test never waits this long
HOUR = timedelta(hours=1)


class Steps:
    """A step that counts its calls (with the thread and time of each) and can be told to fail or to block."""

    def __init__(self, *, failures: int = 0) -> None:
        self.calls: list[tuple[str, float]] = []
        self.failures = failures
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self._changed = threading.Condition()

    def __call__(self) -> None:
        self.entered.set()
        assert self.release.wait(DEADLINE)
        with self._changed:
            self.calls.append((threading.current_thread().name, time.monotonic()))
            self._changed.notify_all()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is away")

    @property
    def count(self) -> int:
        return len(self.calls)

    def wait_for(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.calls) >= count, DEADLINE), \
                f"{len(self.calls)} steps, not {count}, within {DEADLINE}s"


@pytest.fixture
def loops():  # type: ignore[no-untyped-def]
    made: list[BackgroundLoop] = []

    def make(step, interval, **options):  # type: ignore[no-untyped-def]
        loop = BackgroundLoop("test-loop", step, interval, failure="the step failed", **options)
        made.append(loop)
        return loop

    yield make
    for loop in made:
        loop.stop()


def test_steps_at_start_then_every_interval(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, timedelta(milliseconds=20))
    loop.start()
    steps.wait_for(3)
    loop.stop()
    assert {name for name, _ in steps.calls} == {"test-loop"}
    first, _, third = (at for _, at in steps.calls[:3])
    assert third - first >= 0.04 - 0.001  # two intervals apart at least (monotonic clock, some rounding)


def test_a_poke_wakes_the_loop_before_its_interval(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, HOUR)
    loop.start()
    steps.wait_for(1)
    loop.poke()
    steps.wait_for(2)
    loop.poke()
    steps.wait_for(3)


def test_a_poke_made_during_a_step_is_not_lost(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    steps.release.clear()
    loop = loops(steps, HOUR)
    loop.start()
    assert steps.entered.wait(DEADLINE)
    loop.poke()  # while the first step is under way: it asks for one more
    steps.release.set()
    steps.wait_for(2)


def test_a_delayed_poke_waits_its_delay(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, None)
    loop.start()
    steps.wait_for(1)
    poked_at = time.monotonic()
    loop.poke(after=0.05)
    steps.wait_for(2)
    assert steps.calls[1][1] - poked_at >= 0.05 - 0.001


def test_without_an_interval_it_steps_only_when_poked(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, None)
    loop.start()
    steps.wait_for(1)
    loop.poke()
    steps.wait_for(2)
    loop.stop()
    assert steps.count == 2


def test_a_failing_step_is_logged_and_the_loop_goes_on(loops, caplog) -> None:  # type: ignore[no-untyped-def]
    steps = Steps(failures=2)
    logger = logging.getLogger("tests.loops")
    loop = loops(steps, timedelta(milliseconds=10), logger=logger)
    with caplog.at_level(logging.ERROR, logger="tests.loops"):
        loop.start()
        steps.wait_for(3)
        loop.stop()
    failed = [r for r in caplog.records if r.name == "tests.loops"]
    assert [r.getMessage() for r in failed] == ["the step failed"] * 2
    assert all(r.exc_info and "the database is away" in str(r.exc_info[1]) for r in failed)


def test_stop_is_prompt_and_joins(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, HOUR)
    loop.start()
    steps.wait_for(1)
    started = time.monotonic()
    loop.stop()
    assert time.monotonic() - started < DEADLINE / 2  # not the hour's interval
    assert not loop._thread.is_alive()
    assert loop.is_stopping
    assert steps.count == 1  # no last step unless asked


def test_stop_waits_for_the_step_under_way(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, HOUR)
    loop.start()
    steps.wait_for(1)
    steps.release.clear()
    steps.entered.clear()
    loop.poke()
    assert steps.entered.wait(DEADLINE)
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    stopper.join(0.05)
    assert stopper.is_alive()  # held by the step under way
    steps.release.set()
    stopper.join(DEADLINE)
    assert not stopper.is_alive() and steps.count == 2


def test_the_last_step_runs_in_the_loop_at_stop(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, HOUR, last_step=True)
    loop.start()
    steps.wait_for(1)
    loop.stop()
    assert [name for name, _ in steps.calls] == ["test-loop", "test-loop"]
    loop.stop()  # again: nothing more
    assert steps.count == 2


def test_a_loop_never_started_runs_its_last_step_in_the_caller_once(loops) -> None:  # type: ignore[no-untyped-def]
    steps = Steps()
    loop = loops(steps, HOUR, last_step=True)
    loop.stop()
    loop.stop()
    assert [name for name, _ in steps.calls] == [threading.current_thread().name]


def test_a_failing_last_step_is_logged_not_raised(loops, caplog) -> None:  # type: ignore[no-untyped-def]
    steps = Steps(failures=1)
    loop = loops(steps, HOUR, last_step=True)
    with caplog.at_level(logging.ERROR):
        loop.stop()
    assert [r.getMessage() for r in caplog.records] == ["the step failed"]


def test_a_long_step_sees_the_stop(loops) -> None:  # type: ignore[no-untyped-def]
    seen = threading.Event()
    entered = threading.Event()
    holder: list[BackgroundLoop] = []

    def step() -> None:
        entered.set()
        deadline = time.monotonic() + DEADLINE
        while not holder[0].is_stopping and time.monotonic() < deadline:
            time.sleep(0.001)  # a batch of work items, each checking whether to go on
        if holder[0].is_stopping:
            seen.set()

    loop = loops(step, HOUR)
    holder.append(loop)
    loop.start()
    assert entered.wait(DEADLINE)
    loop.stop()
    assert seen.is_set()
