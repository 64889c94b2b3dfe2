"""The oracle: the Erlang C count for the highest rate it will have to serve, asked for a start-up
delay (and a tick) ahead."""

from __future__ import annotations

from spillway.scaling.queueing import replicas_for_latency
from spillway.sim.peers.oracle import Oracle, tuned_grid
from spillway.sim.policy import Foresight
from tests.unit.sim.peers.fakes import FakeObservatory

STEP = Foresight(rate=lambda t: 10.0 if t < 100 else 100.0, mean_service_seconds=0.1, concurrency=1,
                 startup_seconds=30.0)


def test_the_oracle_is_ahead_of_a_step_by_the_startup_delay() -> None:
    oracle = Oracle(STEP, objective_seconds=0.5, quantile=0.95, min_replicas=1, max_replicas=50)
    low = replicas_for_latency(10.0, 0.1, 1, 0.5, 0.95, 50)
    high = replicas_for_latency(100.0, 0.1, 1, 0.5, 0.95, 50)
    assert low is not None and high is not None and low < high
    assert oracle.decide(FakeObservatory(now=68.0), 1) == low
    assert oracle.decide(FakeObservatory(now=69.0), low) == high  # 69 + 30 s start-up + 1 s tick reach the step
    assert oracle.decide(FakeObservatory(now=150.0), high) == high


def test_the_reactive_reference_knows_only_the_present_rate() -> None:
    reactive = Oracle(STEP, objective_seconds=0.5, quantile=0.95, min_replicas=1, max_replicas=50, ahead=False)
    low = replicas_for_latency(10.0, 0.1, 1, 0.5, 0.95, 50)
    high = replicas_for_latency(100.0, 0.1, 1, 0.5, 0.95, 50)
    assert reactive.name == "Reactive reference"
    assert reactive.decide(FakeObservatory(now=69.0), 1) == low  # where the oracle already asks for more
    assert reactive.decide(FakeObservatory(now=99.0), low) == low
    assert reactive.decide(FakeObservatory(now=100.0), low) == high  # the second the rate rises


def test_the_oracle_is_capped_at_max_when_even_max_cannot_meet_the_objective() -> None:
    oracle = Oracle(STEP, objective_seconds=0.5, quantile=0.95, min_replicas=1, max_replicas=5)
    assert oracle.decide(FakeObservatory(now=100.0), 5) == 5
    unreachable = Oracle(STEP, objective_seconds=0.05, quantile=0.95, min_replicas=1, max_replicas=7)
    assert unreachable.decide(FakeObservatory(now=0.0), 1) == 7  # below the service time itself


def test_names_and_grid() -> None:
    assert Oracle(STEP, 0.5, 0.95, 1, 10).name == "Oracle"
    grid = tuned_grid()
    assert grid[0] == {} and 4 <= len(grid) <= 9
    assert len({Oracle(STEP, 0.5, 0.95, 1, 10, **knobs).name for knobs in grid}) == len(grid)
