"""SharedAnswers: one fetch per key and freshness window, however many threads ask."""

from __future__ import annotations

import threading
import time

import pytest

from spillway.metrics.sharing import SharedAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_while_fresh_and_fetched_again_after() -> None:
    clock, fetched = Clock(), []
    answers: SharedAnswers[int] = SharedAnswers(keep_seconds=1.0, clock=clock)

    def fetch() -> int:
        fetched.append(clock.now)
        return len(fetched)

    assert answers.get("q", fetch, fresh_seconds=1.0, wait_seconds=5) == (1, False)
    clock.now += 0.9
    assert answers.get("q", fetch, fresh_seconds=1.0, wait_seconds=5) == (1, True)
    clock.now += 0.2  # 1.1 s after the fetch started
    assert answers.get("q", fetch, fresh_seconds=1.0, wait_seconds=5) == (2, False)


def test_each_asker_decides_how_old_an_answer_it_accepts_within_the_cache_bound() -> None:
    clock = Clock()
    answers: SharedAnswers[str] = SharedAnswers(keep_seconds=1.0, clock=clock)
    answers.get("q", lambda: "first", fresh_seconds=1.0, wait_seconds=5)
    clock.now += 0.4
    assert answers.get("q", lambda: "second", fresh_seconds=0.5, wait_seconds=5) == ("first", True)
    assert answers.get("q", lambda: "third", fresh_seconds=0.25, wait_seconds=5) == ("third", False)
    clock.now += 0.5
    assert answers.get("q", lambda: "fourth", fresh_seconds=60, wait_seconds=5) == ("third", True)  # capped at 1 s


def test_keys_do_not_share() -> None:
    answers: SharedAnswers[str] = SharedAnswers(keep_seconds=1.0)
    assert answers.get("a", lambda: "A", 1.0, 5) == ("A", False)
    assert answers.get("b", lambda: "B", 1.0, 5) == ("B", False)


def test_many_threads_asking_at_once_cause_one_fetch() -> None:
    answers: SharedAnswers[int] = SharedAnswers(keep_seconds=1.0)
    calls, started = [], threading.Event()
    results: list[tuple[int, bool]] = []

    def fetch() -> int:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return 42

    def ask() -> None:
        results.append(answers.get("q", fetch, fresh_seconds=1.0, wait_seconds=5))

    first = threading.Thread(target=ask)
    first.start()
    started.wait(5)
    others = [threading.Thread(target=ask) for _ in range(50)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)
    assert len(calls) == 1
    assert sorted(results) == [(42, False)] + [(42, True)] * 50


def test_a_failed_fetch_reaches_its_waiters_and_is_not_kept() -> None:
    answers: SharedAnswers[int] = SharedAnswers(keep_seconds=1.0)
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def failing() -> int:
        started.set()
        release.wait(5)
        raise RuntimeError("boom")

    def ask(fetch: object) -> None:
        try:
            answers.get("q", fetch, 1.0, 5)  # type: ignore[arg-type]
        except RuntimeError as err:
            errors.append(err)

    leader = threading.Thread(target=ask, args=(failing,))
    leader.start()
    started.wait(5)
    waiter = threading.Thread(target=ask, args=(lambda: 0,))
    waiter.start()
    time.sleep(0.05)
    release.set()
    leader.join(5)
    waiter.join(5)
    assert [str(e) for e in errors] == ["boom", "boom"]
    assert answers.get("q", lambda: 7, 1.0, 5) == (7, False)  # tried again at once


def test_a_waiter_gives_up_after_its_own_bound() -> None:
    answers: SharedAnswers[int] = SharedAnswers(keep_seconds=1.0)
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 1

    leader = threading.Thread(target=lambda: answers.get("q", slow, 1.0, 5))
    leader.start()
    started.wait(5)
    with pytest.raises(TimeoutError, match="did not answer within 0.1s"):
        answers.get("q", lambda: 2, 1.0, wait_seconds=0.1)
    release.set()
    leader.join(5)


def test_old_answers_are_dropped_so_the_cache_stays_small() -> None:
    clock = Clock()
    answers: SharedAnswers[int] = SharedAnswers(keep_seconds=1.0, clock=clock)
    for i in range(100):
        answers.get(f"q{i}", lambda: 0, 1.0, 5)
        clock.now += 0.1
    assert len(answers) <= 11
