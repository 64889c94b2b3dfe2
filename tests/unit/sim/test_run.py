"""A whole simulated run: a trace, an autoscaler reading its pipeline, and what users got."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.sim import traces
from spillway.sim.model import Service, exponential
from spillway.sim.policy import Observatory
from spillway.sim.run import Scenario, quantile, run
from spillway.sim.spillway import SpillwayPolicy
from tests.unit.conftest import minimal_spec

SERVICE = Service(concurrency=8, queue_limit=50, timeout=5.0, service_time=exponential(0.1), startup=10.0)


def _spec(**scaling: object) -> ScalableServiceSpec:
    return parse_spec(minimal_spec(replicas={"min": 2, "max": 40},
                                   capacity={"concurrency": 8, "queueLimit": 50, "timeout": "5s"},
                                   scaling={"prometheus": {"url": "http://prometheus:9090"},
                                            "targets": {"latency": {"objective": "300ms"}}, **scaling}))


@dataclass
class Fixed:
    count: int
    name: str = "fixed"
    tick_seconds: float = 15.0

    def decide(self, observatory: Observatory, current: int) -> int:
        return self.count


def test_a_run_is_a_function_of_its_scenario_and_seed() -> None:
    scenario = Scenario(traces.step(50, 200, at=60, duration=180), SERVICE, 0.3, 2, 40, seed=4)
    first, second = run(scenario, SpillwayPolicy(_spec())), run(scenario, SpillwayPolicy(_spec()))
    assert first == second and first.timeline == second.timeline
    other = run(Scenario(traces.step(50, 200, at=60, duration=180), SERVICE, 0.3, 2, 40, seed=5),
                SpillwayPolicy(_spec()))
    assert other.arrived != first.arrived


def test_every_request_is_decided_and_counted_once() -> None:
    result = run(Scenario(traces.spike(60, factor=8, at=30, rise=5, hold=30, duration=120), SERVICE, 0.3, 2, 40),
                 Fixed(2))
    assert result.arrived == result.answered + result.timeouts + result.refused
    assert 0 <= result.within_objective <= result.answered
    assert result.refused > 0  # two replicas cannot take 480 req/s


def test_replica_seconds_integrate_the_pods_that_exist() -> None:
    result = run(Scenario(traces.step(20, 20, at=0, duration=100), SERVICE, 0.3, 3, 3), Fixed(3))
    # three pods for the trace's 100 s and the drain that follows it
    assert result.seconds > 100 and result.replica_seconds == 3 * result.seconds


def test_spillway_scales_out_on_a_step_and_meets_the_objective_after_it() -> None:
    # p95 within 500 ms: the service alone takes 300 ms at its p95 (exponential, mean 100 ms)
    scenario = Scenario(traces.step(40, 400, at=60, duration=300), SERVICE, 0.5, 2, 40, seed=1)
    result = run(scenario, SpillwayPolicy(_spec(targets={"latency": {"objective": "500ms"}})))
    assert result.scale_events and result.scale_events[0].after > result.scale_events[0].before
    first = result.scale_events[0].time
    assert 60 < first <= 60 + 2 * 15 + 15  # within two intervals and a scrape of the step
    late = [p for p in result.timeline if 180 < p.time <= 300 and p.p95_seconds is not None]
    assert late and all(p.p95_seconds is not None and p.p95_seconds < 0.5 for p in late)


def test_nearest_rank_quantile() -> None:
    assert quantile([], 0.5) is None
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_scenario_refuses_an_objective_that_is_no_duration(bad: float) -> None:
    with pytest.raises(ValueError, match="objective"):
        Scenario(traces.step(1, 2, at=1, duration=10), SERVICE, bad)
