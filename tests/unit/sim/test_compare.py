"""Choosing a tuned peer and judging one policy against another."""

from __future__ import annotations

import pytest

from spillway.sim.compare import Versus, cheapest_reaching, cost_ratio, paired, tuned
from spillway.sim.run import Result


def _result(name: str, attainment: float, cost: float) -> Result:
    arrived = 100_000
    within = round(attainment * arrived)
    return Result(policy=name, trace="t", arrived=arrived, answered=within, within_objective=within, timeouts=0,
                  refused=arrived - within, p50_seconds=None, p95_seconds=None, p99_seconds=None,
                  replica_seconds=cost, seconds=100.0, scale_events=(), timeline=())


def test_tuned_is_the_cheapest_configuration_meeting_the_goal() -> None:
    runs = [_result("a", 0.999, 900), _result("b", 0.995, 700), _result("c", 0.98, 400)]
    assert tuned(runs).policy == "b"


def test_tuned_without_any_meeting_the_goal_is_the_best_attainment() -> None:
    runs = [_result("a", 0.95, 900), _result("b", 0.97, 1200), _result("c", 0.97, 1000)]
    assert tuned(runs).policy == "c"


def test_tuned_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no run"):
        tuned([])


@pytest.mark.parametrize(("subject", "other", "verdict"), [
    ((0.999, 1000), (0.99, 1000), "dominates"),  # better attainment, same cost
    ((0.999, 900), (0.999, 1000), "dominates"),  # same attainment, cheaper
    ((0.999, 1002), (0.999, 1000), "ties"),  # 0.2 % dearer is within the cost step
    ((0.999, 1200), (0.99, 1000), "trades"),
    ((0.98, 1200), (0.99, 1000), "dominated"),
])
def test_verdicts(subject: tuple[float, float], other: tuple[float, float], verdict: str) -> None:
    assert Versus(_result("s", *subject), _result("o", *other)).verdict == verdict


def test_cost_ratio_to_the_oracle() -> None:
    assert cost_ratio(_result("s", 1, 1250), _result("o", 1, 1000)) == pytest.approx(1.25)


def test_cheapest_reaching_an_attainment() -> None:
    runs = [_result("a", 0.999, 900), _result("b", 0.995, 700), _result("c", 0.98, 400)]
    found = cheapest_reaching(runs, 0.995)
    assert found is not None and found.policy == "b"
    assert cheapest_reaching(runs, 0.9995) is None


def test_paired_runs_judge_seed_by_seed() -> None:
    """Seeds move both a lot, the subject is cheaper on each by 2-4 % at the same attainment."""
    others = [_result("o", 0.99, cost) for cost in (800, 1000, 1200, 900, 1100)]
    subjects = [_result("s", 0.99, cost * (0.96 + 0.005 * k)) for k, cost in enumerate((800, 1000, 1200, 900, 1100))]
    found = paired(subjects, others)
    assert found.verdict == "dominates" and found.cost.high < 1 and found.attainment.sign == 0
    assert paired(others, subjects).verdict == "dominated"
    assert paired(others, others).verdict == "no difference"


def test_runs_of_different_seeds_are_not_paired() -> None:
    with pytest.raises(ValueError, match="one of each per seed"):
        paired([_result("s", 0.99, 900)], [])
    other_seed = _result("o", 0.99, 900)
    other_seed = Result(**{**other_seed.__dict__, "arrived": 99_999})
    with pytest.raises(ValueError, match="different seeds or traces"):
        paired([_result("s", 0.99, 900)], [other_seed])
