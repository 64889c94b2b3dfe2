"""Erlang C against values computed independently: exact rational sums and published tables."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.scaling.queueing import erlang_b, erlang_c, replicas_for_latency, wait_tail


def exact_erlang_c(k: int, a: Fraction) -> float:
    """C(k, a) = (a^k/k! · k/(k−a)) / (Σ_{i<k} a^i/i! + a^k/k! · k/(k−a)), in exact arithmetic."""
    top = a**k / math.factorial(k) * Fraction(k) / (k - a)
    return float(top / (sum(a**i / math.factorial(i) for i in range(k)) + top))


def log_space_erlang_c(k: int, a: float) -> float:
    """The same formula through log-gamma, for loads too large for exact sums."""
    log_terms = [i * math.log(a) - math.lgamma(i + 1) for i in range(k)]
    log_top = k * math.log(a) - math.lgamma(k + 1) + math.log(k / (k - a))
    peak = max(max(log_terms), log_top)
    top = math.exp(log_top - peak)
    return top / (sum(math.exp(t - peak) for t in log_terms) + top)


# Published values: Gross & Harris, Fundamentals of Queueing Theory, and the common call-centre
# tables (e.g. a = 10 Erlangs on 12 agents waits with probability 0.4493).
@pytest.mark.parametrize(("k", "a", "expected"), [
    (1, 0.5, 0.5), (2, 1.0, 1 / 3), (10, 8.0, 0.4092), (12, 10.0, 0.4493), (5, 4.0, 0.5541),
])
def test_erlang_c_matches_published_values(k: int, a: float, expected: float) -> None:
    assert erlang_c(k, a) == pytest.approx(expected, abs=5e-4)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 60), st.fractions(min_value=Fraction(1, 10), max_value=60))
def test_erlang_c_equals_the_exact_rational_formula(k: int, a: Fraction) -> None:
    if a >= k:
        assert erlang_c(k, float(a)) == 1.0
    else:
        assert erlang_c(k, float(a)) == pytest.approx(exact_erlang_c(k, a), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("k", "a"), [(200, 150.0), (1000, 900.0), (8000, 7800.0), (5000, 4000.0)])
def test_large_systems_start_near_the_knee_without_losing_accuracy(k: int, a: float) -> None:
    assert erlang_c(k, a) == pytest.approx(log_space_erlang_c(k, a), rel=1e-7, abs=1e-12)


def test_erlang_b_of_one_server_is_a_over_one_plus_a() -> None:
    assert erlang_b(1, 3.0) == pytest.approx(0.75)


def test_wait_tail_decays_with_time_and_is_certain_when_unstable() -> None:
    assert wait_tail(10, 8.0, 0.1, 0.0) == pytest.approx(erlang_c(10, 8.0))
    assert wait_tail(10, 8.0, 0.1, 0.5) < wait_tail(10, 8.0, 0.1, 0.1)
    assert wait_tail(10, 10.0, 0.1, 1.0) == 1.0


def test_replicas_for_latency_is_the_smallest_that_meets_the_objective() -> None:
    # 30,000 req/s at 200 ms on 200 workers a replica: 30 replicas are saturated, 31 suffice.
    n = replicas_for_latency(30000, 0.2, 200, 0.25, 0.95, 100)
    assert n == 31
    assert wait_tail(31 * 200, 6000, 0.2, 0.05) <= 0.05 < wait_tail(30 * 200, 6000, 0.2, 0.05)


def test_unreachable_objectives_are_reported() -> None:
    assert replicas_for_latency(100, 0.3, 10, 0.25, 0.95, 50) is None  # objective below service time
    assert replicas_for_latency(10000, 0.2, 10, 0.25, 0.99, 5) is None  # max too small
    assert replicas_for_latency(0, 0.2, 10, 0.25, 0.99, 5) == 1
