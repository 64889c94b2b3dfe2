"""The Knative baseline against autoscaler.go and target.go: the target per pod, panic entry,
panic's ratchet and exit, and the scale-down rate."""

from __future__ import annotations

import pytest

from spillway.sim.peers.knative import Knative, tuned_grid
from tests.unit.sim.peers.fakes import FakeObservatory


def _reading(now: float, ready: int, stable: float, panic: float) -> FakeObservatory:
    return FakeObservatory(now=now, ready=ready, averages={60.0: stable, 6.0: panic})


@pytest.mark.parametrize(("container_concurrency", "target", "expected"), [
    (10, None, 7.0),  # 0.7 × containerConcurrency
    (0, None, 70.0),  # 0.7 × container-concurrency-target-default 100
    (10, 5.0, 3.5),  # the annotation, below containerConcurrency
    (10, 50.0, 7.0),  # the annotation, capped by containerConcurrency
    (1, None, 1.0),  # never below 1
])
def test_target_per_pod(container_concurrency: int, target: float | None, expected: float) -> None:
    assert Knative(1, 10, container_concurrency=container_concurrency, target=target).target == expected


def test_panic_window_is_a_tenth_of_the_stable_window() -> None:
    assert Knative(1, 10).panic_window == 6.0
    assert Knative(1, 10, stable_window_seconds=6).panic_window == 1.0  # at least one second


def test_panic_begins_when_the_panic_count_reaches_twice_the_ready_pods() -> None:
    knative = Knative(1, 100, container_concurrency=10)  # target 7
    assert knative.decide(_reading(0, 1, 7, 7), 1) == 1
    assert knative.decide(_reading(2, 2, 14, 20), 1) == 2 and knative.panic_time is None  # ceil(20/7) = 3: 150 %
    assert knative.decide(_reading(4, 2, 14, 27), 2) == 4 and knative.panic_time == 4  # ceil(27/7) = 4: 200 %


def test_no_scale_down_in_panic_and_exit_a_stable_window_after_the_last_surge() -> None:
    knative = Knative(1, 100, container_concurrency=10)
    knative.decide(_reading(0, 1, 7, 7), 1)
    assert knative.decide(_reading(2, 2, 14, 27), 2) == 4  # panic at 2 s
    assert knative.decide(_reading(10, 4, 14, 56), 4) == 8  # still over (8 / 4): panic time moves to 10 s
    for now in range(12, 71, 2):  # the surge is over; the stable count (2) would halve the pods
        assert knative.decide(_reading(now, 8, 14, 7), 8) == 8
    assert knative.panic_time == 10
    assert knative.decide(_reading(72, 8, 14, 7), 8) == 4  # 10 + 60 < 72: stable mode, at most halved


def test_scale_down_is_at_most_halving_per_tick() -> None:
    knative = Knative(1, 100, container_concurrency=10)
    knative.decide(_reading(0, 1, 0, 0), 1)
    assert knative.decide(_reading(2, 10, 0, 0), 10) == 5  # floor(10 / max-scale-down-rate 2)


def test_an_autoscaler_created_over_one_pod_starts_in_panic() -> None:
    knative = Knative(1, 100, container_concurrency=10)
    assert knative.decide(_reading(0, 6, 7, 7), 6) == 6 and knative.panic_time == 0
    assert knative.decide(_reading(60, 6, 7, 7), 6) == 6
    assert knative.decide(_reading(62, 6, 7, 7), 6) == 3


def test_no_stable_data_holds_the_count() -> None:
    knative = Knative(1, 100, container_concurrency=10)
    assert knative.decide(FakeObservatory(ready=1, concurrency=None), 3) == 3


def test_scale_down_delay_keeps_the_highest_recent_answer() -> None:
    knative = Knative(1, 100, container_concurrency=10, scale_down_delay_seconds=10)
    knative.decide(_reading(0, 1, 70, 7), 1)  # 10 pods wanted (no panic: 1 ready at creation, 7 in panic)
    assert knative.decide(_reading(8, 10, 0, 0), 10) == 10
    assert knative.decide(_reading(10, 10, 0, 0), 10) == 5


def test_names_and_grid() -> None:
    assert Knative(1, 10).name == "Knative"
    assert Knative(1, 10, target_utilization=0.5).name == "Knative(utilization=0.5)"
    grid = tuned_grid()
    assert grid[0] == {} and 4 <= len(grid) <= 9
    assert len({Knative(1, 10, **knobs).name for knobs in grid}) == len(grid)
