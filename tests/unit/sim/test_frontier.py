"""A peer's frontier over its configurations, and a subject held against it seed by seed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim.frontier import Point, frontier, matched
from spillway.sim.run import Result

ARRIVED = 100_000


def _run(name: str, attainment: float, cost: float, seed: int = 0) -> Result:
    within = round(attainment * ARRIVED)
    return Result(policy=name, trace="t", arrived=ARRIVED + seed, answered=within, within_objective=within,
                  timeouts=0, refused=ARRIVED + seed - within, p50_seconds=None, p95_seconds=None,
                  p99_seconds=None, replica_seconds=cost, seconds=100.0, scale_events=(), timeline=())


def _seeds(name: str, attainment: float, cost: float, jitter: float = 0.001, n: int = 8) -> list[Result]:
    """n seeds around (attainment, cost), with a small spread alike for every policy of a seed."""
    return [_run(name, attainment + jitter * ((s % 3) - 1), cost * (1 + jitter * ((s % 4) - 1.5)), s)
            for s in range(n)]


PEER = {
    "cheap": _seeds("cheap", 0.90, 1000),
    "middle": _seeds("middle", 0.96, 1500),
    "costly": _seeds("costly", 0.99, 2500),
    "wasteful": _seeds("wasteful", 0.95, 3000),  # beaten by middle on both: off the frontier
}


def test_the_frontier_drops_configurations_beaten_on_both_and_rises_with_cost() -> None:
    points = [Point("a", 100, 0.9), Point("b", 200, 0.95), Point("c", 300, 0.93), Point("d", 200, 0.94),
              Point("e", 400, 0.99)]
    assert [p.name for p in frontier(points)] == ["a", "b", "e"]


def test_a_frontier_refuses_points_that_are_not_numbers() -> None:
    with pytest.raises(ValueError, match="finite"):
        frontier([Point("a", math.nan, 0.9)])


def test_on_the_frontier_between_two_configurations_is_no_difference() -> None:
    # Halfway between two configurations on both axes (what picking either by turns gives), with
    # a spread of its own across seeds around that point.
    peer = {"middle": _seeds("middle", 0.96, 1500, jitter=0), "costly": _seeds("costly", 0.99, 2500, jitter=0)}
    subject = [_run("s", 0.975 + 0.002 * (-1) ** i, 2000 * (1 + 0.01 * (-1) ** (i // 2)), i) for i in range(8)]
    found = matched(subject, peer)
    assert found.peer_cost == pytest.approx(2000, rel=1e-3)
    assert found.peer_attainment == pytest.approx(0.975, abs=1e-4)
    assert found.cost is not None and found.cost.low < 1 < found.cost.high
    assert found.verdict == "no difference"


def test_the_same_attainment_for_less_is_outside_the_frontier() -> None:
    subject = [_run("s", r.slo_attainment, r.replica_seconds * 0.8, i) for i, r in enumerate(PEER["middle"])]
    found = matched(subject, PEER)
    assert found.cost is not None and found.cost.mean == pytest.approx(0.8, rel=1e-3) and found.cost.high < 1
    assert found.verdict == "dominates"


def test_more_attainment_at_the_same_cost_is_outside_and_less_is_inside() -> None:
    better = [_run("s", r.slo_attainment + 0.01, r.replica_seconds, i) for i, r in enumerate(PEER["middle"])]
    worse = [_run("s", r.slo_attainment - 0.01, r.replica_seconds, i) for i, r in enumerate(PEER["middle"])]
    assert matched(better, PEER).verdict == "dominates"
    assert matched(worse, PEER).verdict == "dominated"
    assert matched(worse, PEER).attainment.mean == pytest.approx(-0.01, abs=1e-4)  # type: ignore[union-attr]


def test_beyond_every_configurations_attainment_has_no_matched_cost() -> None:
    subject = [_run("s", 0.999, 3500, i) for i in range(8)]
    found = matched(subject, PEER)
    assert found.cost is None and found.peer_cost is None
    assert (found.attainment_side, found.cost_side) == ("above", "above")
    assert found.peer_attainment == pytest.approx(0.99, abs=1e-3)  # the best configuration, costlier than none
    assert found.verdict == "dominates"


def test_cheaper_and_lower_than_every_configuration_is_a_trade_not_a_win() -> None:
    subject = [_run("s", 0.80, 500, i) for i in range(8)]
    found = matched(subject, PEER)
    assert (found.cost, found.attainment, found.matched) == (None, None, False)
    assert (found.attainment_side, found.cost_side) == ("below", "below")
    assert found.verdict == "trades"


def test_less_attainment_than_the_cheapest_at_more_cost_is_dominated() -> None:
    subject = [_run("s", 0.85, 1200, i) for i in range(8)]
    assert matched(subject, PEER).verdict == "dominated"


def test_runs_of_different_seeds_are_refused() -> None:
    subject = [_run("s", 0.95, 1500, i + 100) for i in range(8)]
    with pytest.raises(ValueError, match="different seeds"):
        matched(subject, PEER)
    with pytest.raises(ValueError, match="runs against"):
        matched(subject[:3], PEER)


shares = st.floats(0.5, 1.0, allow_nan=False)
costs = st.floats(1.0, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(points=st.lists(st.tuples(costs, shares), min_size=1, max_size=12))
def test_no_point_of_the_frontier_is_beaten_and_every_dropped_point_is(points: list[tuple[float, float]]) -> None:
    given_points = [Point(str(i), c, a) for i, (c, a) in enumerate(points)]
    front = frontier(given_points)
    assert front and all(a.cost <= b.cost and a.attainment < b.attainment for a, b in zip(front, front[1:], strict=False))
    for p in given_points:
        beaten = any(q.cost <= p.cost and q.attainment >= p.attainment and (q.cost, q.attainment) != (p.cost, p.attainment)
                     for q in given_points)
        if p not in front:
            assert beaten or any((q.cost, q.attainment) == (p.cost, p.attainment) for q in front)


@settings(max_examples=100, deadline=None)
@given(attainment=shares, cost=costs, seeds=st.integers(2, 12))
def test_a_subject_equal_to_one_configuration_is_never_judged_apart_from_it(attainment: float, cost: float,
                                                                          seeds: int) -> None:
    runs = [_run("p", attainment, cost, s) for s in range(seeds)]
    subject = [_run("s", attainment, cost, s) for s in range(seeds)]
    assert matched(subject, {"p": runs}).verdict == "no difference"
