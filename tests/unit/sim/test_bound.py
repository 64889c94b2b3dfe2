"""The lower bound on replica-seconds: under every policy's cost at that policy's own attainment,
rising with the attainment asked, exact where the answer is known."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim import traces
from spillway.sim.bound import lower_bound, workload
from spillway.sim.model import Service, exponential
from spillway.sim.peers import hpa, knative
from spillway.sim.run import Scenario, run
from tests.unit.sim.policies import Fixed

SERVICE = Service(concurrency=4, queue_limit=20, timeout=5.0, service_time=exponential(0.2), startup=10.0)
DRAIN = math.ceil(SERVICE.timeout) + 1


def _scenario(trace: traces.Trace, seed: int = 3, initial: int = 2) -> Scenario:
    return Scenario(trace, SERVICE, objective_seconds=1.0, min_replicas=1, max_replicas=30,
                    initial_replicas=initial, seed=seed)


def test_the_workload_is_the_runs_own_requests() -> None:
    scenario = _scenario(traces.step(10, 60, at=60, duration=180))
    load = workload(scenario)
    assert load.count == run(scenario, Fixed(10)).arrived
    assert len(load.works) == 180 and sum(len(s) for s in load.works[:60]) < sum(len(s) for s in load.works[60:120])


@pytest.mark.parametrize("seed", [1, 2])
def test_no_policy_costs_less_than_the_bound_at_its_own_attainment(seed: int) -> None:
    scenario = _scenario(traces.step(10, 80, at=60, duration=240), seed=seed)
    load = workload(scenario)
    policies = [Fixed(2), Fixed(6), Fixed(12), hpa.HPA(1, 30), knative.Knative(1, 30, container_concurrency=4)]
    ratios = []
    for policy in policies:
        result = run(scenario, policy)
        bound = lower_bound(scenario, load, result.slo_attainment, DRAIN)
        assert bound <= result.replica_seconds, (policy.name, result.slo_attainment, result.replica_seconds, bound)
        ratios.append((result.slo_attainment, result.replica_seconds / bound))
    # Not vacuous: a steady count sized for the surge comes within about twice the bound.
    assert min(ratio for attained, ratio in ratios if attained > 0.9) < 2.5, ratios


def test_an_idle_trace_costs_the_minimum_throughout() -> None:
    scenario = _scenario(traces.step(0, 0, at=10, duration=100), initial=1)
    assert lower_bound(scenario, workload(scenario), 1.0, DRAIN) == pytest.approx(100 + DRAIN)


def test_a_steady_load_needs_its_work_spread_over_the_seconds() -> None:
    # About 40 req/s of 0.2 s work on 4 workers per pod: 2 pods' worth of work every second.
    scenario = _scenario(traces.step(40, 40, at=10, duration=300), initial=2)
    load = workload(scenario)
    work = sum(sum(s) for s in load.works)
    bound = lower_bound(scenario, load, 1.0, 0)
    assert work / 4 <= bound <= work / 4 * 1.2 + 10


def test_a_surge_beyond_the_start_pays_for_the_start_up() -> None:
    # From 1 pod's work to 10 pods' at 60 s: the 9 new pods start 10 s each, known in advance.
    flat = _scenario(traces.step(20, 20, at=60, duration=120), initial=1)
    surge = _scenario(traces.step(20, 200, at=60, duration=120), initial=1)
    bound = lower_bound(surge, workload(surge), 1.0, 0)
    work = sum(sum(s) for s in workload(surge).works)
    assert bound >= work / 4 + 5 * SERVICE.startup
    assert lower_bound(flat, workload(flat), 1.0, 0) < bound


@settings(max_examples=15, deadline=None)
@given(low=st.floats(0.0, 0.98), step=st.floats(0.001, 0.02))
def test_the_bound_rises_with_the_attainment_asked(low: float, step: float) -> None:
    scenario = _scenario(traces.spike(10, 5, at=40, rise=5, hold=30, duration=120), seed=5)
    load = workload(scenario)
    assert lower_bound(scenario, load, low, DRAIN) <= lower_bound(scenario, load, min(1.0, low + step), DRAIN) + 1e-6


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_an_attainment_outside_a_share_is_refused(bad: float) -> None:
    scenario = _scenario(traces.step(10, 10, at=10, duration=20))
    with pytest.raises(ValueError, match="share"):
        lower_bound(scenario, workload(scenario), bad)
