"""The capacity planner: Erlang C's replica counts, where they saturate, and what no count meets."""

from __future__ import annotations

import math

import pytest

from spillway.scaling.queueing import replicas_for_latency, replicas_for_mean_latency
from spillway.sim.plan import CONCURRENCIES, MOST_REPLICAS, meets, objective_limit, plan


@pytest.mark.parametrize(("rate", "service", "objective", "concurrency"),
                         [(120, 0.1, 0.3, 8), (2000, 0.1, 0.25, 200), (5, 2.0, 5.0, 1), (900, 0.05, 0.08, 16)])
def test_replicas_agree_with_the_scaling_engines_model(rate: float, service: float, objective: float,
                                                       concurrency: int) -> None:
    result = plan(rate, service, objective, concurrency, quantile=0.95)
    assert result.replicas == replicas_for_latency(rate, service, concurrency, objective, 0.95, MOST_REPLICAS)
    for row in result.rows:
        assert row.replicas == replicas_for_latency(rate, service, row.concurrency, objective, 0.95, MOST_REPLICAS)


def test_a_mean_objective_uses_the_mean_response_model() -> None:
    result = plan(2000, 0.1, 0.12, 200, kind="mean")
    assert result.replicas == replicas_for_mean_latency(2000, 0.1, 200, 0.12, MOST_REPLICAS)
    assert result.aim == "mean response under 120ms"
    assert plan(2000, 0.1, 0.12, 200).aim == "p95 response under 120ms"


def test_the_table_covers_the_usual_concurrencies_and_the_given_one() -> None:
    result = plan(300, 0.1, 0.4, 12)
    assert [row.concurrency for row in result.rows] == sorted({*CONCURRENCIES, 12})
    given = next(row for row in result.rows if row.concurrency == 12)
    assert given.replicas == result.replicas
    assert given.utilization == pytest.approx(300 * 0.1 / (result.replicas * 12))


def test_saturation_is_where_the_worker_pools_are_all_busy() -> None:
    result = plan(120, 0.1, 0.3, 8)
    assert result.replicas is not None
    assert result.saturation_rps == pytest.approx(result.replicas * 8 / 0.1)


def test_the_objective_limit_is_the_highest_rate_the_proposed_count_still_meets() -> None:
    result = plan(120, 0.1, 0.3, 8)
    n, limit = result.replicas, result.objective_limit_rps
    assert n is not None and limit is not None and result.saturation_rps is not None
    assert 120 <= limit < result.saturation_rps
    assert replicas_for_latency(limit * (1 - 1e-6), 0.1, 8, 0.3, 0.95, MOST_REPLICAS) == n
    assert replicas_for_latency(limit * (1 + 1e-4), 0.1, 8, 0.3, 0.95, MOST_REPLICAS) == n + 1


def test_the_limit_is_monotone_in_the_count() -> None:
    limits = [objective_limit(n, 8, 0.1, 0.3, 0.95, "quantile") for n in (1, 2, 4, 8)]
    assert all(a is not None and b is not None and a < b for a, b in zip(limits, limits[1:], strict=False))
    assert not meets(1e9, 0.1, 16, 0.3, 0.95, "quantile")


def test_an_objective_at_or_below_the_service_time_is_unreachable_by_any_count() -> None:
    result = plan(100, 0.5, 0.3, 8)
    assert result.replicas is None and not result.within_max
    assert result.unreachable is not None and "no replica count can meet it" in result.unreachable
    assert result.saturation_rps is None and result.objective_limit_rps is None
    assert all(row.replicas is None for row in result.rows)
    assert plan(100, 0.3, 0.3, 8).unreachable is not None  # at: the budget for waiting is zero


def test_an_objective_below_the_services_own_quantile_is_flagged() -> None:
    # exponential, mean 100 ms: the service alone has p95 = -ln(0.05) * 100 ms = 300 ms
    assert plan(100, 0.1, 0.2, 8).caveat is not None
    assert plan(100, 0.1, 0.35, 8).caveat is None
    assert plan(100, 0.1, 0.2, 8, kind="mean").caveat is None


def test_the_bound_says_whether_the_count_fits() -> None:
    assert plan(100, 0.1, 0.3, 4, max_replicas=100).within_max
    assert not plan(1000, 0.1, 0.3, 4, max_replicas=2).within_max


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_rates_and_times_that_are_no_numbers_are_refused(bad: float) -> None:
    for args in ((bad, 0.1, 0.3), (10, bad, 0.3), (10, 0.1, bad)):
        with pytest.raises(ValueError, match="positive finite"):
            plan(*args, concurrency=8)
