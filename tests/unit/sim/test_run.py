"""A whole simulated run: a trace, an autoscaler reading its pipeline, and what users got."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.sim import traces
from spillway.sim.model import Flavor, Nodes, Service, exponential
from spillway.sim.policy import Observatory
from spillway.sim.run import Result, Scenario, quantile, run
from spillway.sim.spillway import SpillwayPolicy
from tests.unit.conftest import minimal_spec
from tests.unit.sim.policies import Fixed

SERVICE = Service(concurrency=8, queue_limit=50, timeout=5.0, service_time=exponential(0.1), startup=10.0)


def _spec(**scaling: object) -> ScalableServiceSpec:
    return parse_spec(minimal_spec(replicas={"min": 2, "max": 40},
                                   capacity={"concurrency": 8, "queueLimit": 50, "timeout": "5s"},
                                   scaling={"prometheus": {"url": "http://prometheus:9090"},
                                            "targets": {"latency": {"objective": "300ms"}}, **scaling}))


@dataclass
class Scripted:
    """`before` replicas until `at` seconds, `after` from then on."""

    before: int
    after: int
    at: float
    name: str = "scripted"
    tick_seconds: float = 15.0

    def decide(self, observatory: Observatory, current: int) -> int:
        return self.after if observatory.now >= self.at else self.before


def test_a_run_is_a_function_of_its_scenario_and_seed() -> None:
    scenario = Scenario(traces.step(50, 200, at=60, duration=180), SERVICE, 0.3, 2, 40, seed=4)
    first, second = run(scenario, SpillwayPolicy(_spec())), run(scenario, SpillwayPolicy(_spec()))
    assert first == second and first.timeline == second.timeline
    other = run(Scenario(traces.step(50, 200, at=60, duration=180), SERVICE, 0.3, 2, 40, seed=5),
                SpillwayPolicy(_spec()))
    assert other.arrived != first.arrived


def test_where_the_decisions_fall_in_their_interval_is_drawn_per_seed_and_shared_by_policies() -> None:
    """A policy that asks for one more replica at every decision: its scale events fall on one
    offset within its 15 s interval, the same for two policies of one seed, and not the same
    for every seed."""
    @dataclass
    class Growing:
        name: str = "growing"
        tick_seconds: float = 15.0

        def decide(self, observatory: Observatory, current: int) -> int:
            return current + 1

    def offsets(seed: int) -> set[int]:
        scenario = Scenario(traces.step(10, 10, at=60, duration=120), SERVICE, 0.3, 2, 40, seed=seed)
        return {round(event.time) % 15 for event in run(scenario, Growing()).scale_events}

    found = [offsets(seed) for seed in range(8)]
    assert all(len(offset) == 1 for offset in found), found
    assert offsets(3) == found[3]
    assert len(set(map(frozenset, found))) > 1, found


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


def test_the_progress_bar_ends_full_once_the_run_is_over() -> None:
    seen: list[tuple[float, float]] = []
    run(Scenario(traces.step(10, 10, at=0, duration=90), SERVICE, 0.3, 2, 2), Fixed(2),
        lambda done, total: seen.append((done, total)))
    # the run ends at 96 s, before the minute's report at 120 s: the last call fills the bar anyway
    assert seen == [(60.0, 90.0), (90.0, 90.0)]


def test_a_scenario_left_at_its_defaults_has_one_flavor_no_sessions_and_no_nodes() -> None:
    scenario = Scenario(traces.step(10, 10, at=0, duration=60), SERVICE, 0.3, 2, 2)
    assert (scenario.flavors, scenario.sticky, scenario.sessions, scenario.nodes) == ((Flavor(),), False, 0, None)
    result = run(scenario, Fixed(2))
    assert (result.node_seconds, result.rebalanced, result.flavor_requests) == (0.0, 0, (result.arrived,))


@pytest.mark.parametrize(("fields", "problem"), [
    ({"sticky": True}, "sticky run needs sessions"), ({"sessions": -1}, "sessions must be 0 or more"),
    ({"flavors": ()}, "at least one flavor")])
def test_a_scenario_refuses_sessions_and_flavors_that_cannot_run(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Scenario(traces.step(1, 2, at=1, duration=10), SERVICE, 0.3, **fields)  # type: ignore[arg-type]


def test_weighted_ratio_sends_each_flavor_its_weights_share_of_the_traffic() -> None:
    flavors = (Flavor(share=1, weight=3), Flavor(share=1, weight=1))
    steady = traces.step(50, 50, at=0, duration=120)
    weighted = run(Scenario(steady, SERVICE, 0.3, 4, 4, algorithm="WeightedRatio", flavors=flavors), Fixed(4))
    heavy, light = weighted.flavor_requests
    assert weighted.refused == 0 and heavy + light == weighted.arrived
    assert heavy / light == pytest.approx(3.0, rel=0.02)
    # the weights are WeightedRatio's alone: round robin splits evenly between two replicas of each
    even = run(Scenario(steady, SERVICE, 0.3, 4, 4, algorithm="RoundRobin", flavors=flavors), Fixed(4))
    assert even.flavor_requests[0] / even.flavor_requests[1] == pytest.approx(1.0, rel=0.02)


def test_a_sticky_run_counts_the_sessions_moved_off_replicas_drained_by_a_scale_in() -> None:
    steady = traces.step(40, 40, at=0, duration=180)

    def scenario(sticky: bool) -> Scenario:
        return Scenario(steady, SERVICE, 0.3, 1, 10, initial_replicas=6, seed=2, sticky=sticky, sessions=200)

    scaled_in = run(scenario(True), Scripted(6, 2, at=90))
    assert [(e.before, e.after) for e in scaled_in.scale_events] == [(6, 2)]
    # the sessions held by the four replicas drained come back within 90 s and move, each once:
    # the two replicas left never drain
    assert 50 < scaled_in.rebalanced <= 200
    assert run(scenario(True), Fixed(6)).rebalanced == 0  # no replica drained, no session moved
    loose = run(scenario(False), Scripted(6, 2, at=90))
    assert loose.rebalanced == 0 and loose.arrived == scaled_in.arrived  # the same users, unpinned


def test_nodes_still_provisioning_cost_attainment_that_headroom_buys_back_on_a_step() -> None:
    step = traces.step(40, 300, at=120, duration=300)

    def on(nodes: Nodes | None) -> Result:
        return run(Scenario(step, SERVICE, 0.3, 2, 40, seed=3, nodes=nodes), SpillwayPolicy(_spec()))

    unbounded, waiting, headroom = on(None), on(Nodes(2, 1, 90.0)), on(Nodes(2, 1, 90.0, headroom_pods=8))
    assert waiting.slo_attainment < headroom.slo_attainment - 0.2
    # eight placeholders up before the step: the new replicas preempt them at once, as if nodes were unbounded
    assert headroom.slo_attainment == unbounded.slo_attainment
    assert headroom.node_seconds > waiting.node_seconds > 0 and unbounded.node_seconds == 0.0


def test_the_seconds_replicas_wait_for_a_node_and_the_requests_missed_in_them_are_counted() -> None:
    step = traces.step(40, 300, at=120, duration=300)

    def on(nodes: Nodes | None) -> Result:
        return run(Scenario(step, SERVICE, 0.3, 2, 40, seed=3, nodes=nodes), SpillwayPolicy(_spec()))

    unbounded, waiting, headroom = on(None), on(Nodes(2, 1, 90.0)), on(Nodes(2, 1, 90.0, headroom_pods=8))
    assert (unbounded.node_wait_seconds, unbounded.missed_in_node_waits) == (0.0, 0)
    # the step's new replicas wait about one provisioning for their node, and most of what the
    # run misses is missed then
    assert 80.0 <= waiting.node_wait_seconds <= 200.0
    missed = waiting.arrived - waiting.within_objective
    assert 0.5 * missed < waiting.missed_in_node_waits <= missed
    assert headroom.node_wait_seconds < waiting.node_wait_seconds
    assert [p.pending for p in waiting.timeline if p.time == 150.0] != [0]
    assert max(p.nodes for p in waiting.timeline) > 1
