"""Means over seeds with their intervals, and verdicts resting only on paired intervals that
exclude "no change"."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim.stats import Estimate, estimate, paired_difference, paired_ratio, verdict

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def test_the_interval_is_students_t_over_the_seeds() -> None:
    # mean 2, sample standard deviation 1, n 4: half-width t(0.975, 3) * 1 / 2 = 3.182446 / 2
    values = [1.0, 3.0, 1.0, 3.0]  # mean 2, sample variance 4/3
    found = estimate(values)
    half = 3.182446305284263 * math.sqrt((4 / 3) / 4)
    assert found.mean == 2.0 and found.n == 4
    assert found.low == pytest.approx(2.0 - half, rel=1e-9) and found.high == pytest.approx(2.0 + half, rel=1e-9)


def test_one_seed_says_nothing_about_the_spread() -> None:
    one = estimate([0.97])
    assert (one.mean, one.low, one.high, one.sign) == (0.97, -math.inf, math.inf, 0)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [math.inf, 1.0], [-math.inf]])
def test_no_estimate_from_nothing_or_from_values_that_are_not_numbers(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="at least one value|finite values"):
        estimate(bad)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, math.nan])
def test_a_confidence_outside_the_open_unit_interval_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        estimate([1.0, 2.0], confidence)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=2, max_size=40))
def test_the_interval_holds_the_mean_and_is_symmetric_about_it(values: list[float]) -> None:
    found = estimate(values)
    assert found.low <= found.mean <= found.high
    assert found.high - found.mean == pytest.approx(found.mean - found.low, rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(value=finite, n=st.integers(2, 30))
def test_identical_values_have_no_spread(value: float, n: int) -> None:
    found = estimate([value] * n)
    assert found.low == found.mean == found.high == pytest.approx(value)


@settings(max_examples=100, deadline=None)
@given(subject=st.lists(finite, min_size=2, max_size=20), shift=finite)
def test_a_paired_difference_swapped_is_the_same_interval_negated(subject: list[float], shift: float) -> None:
    other = [v + shift * (i % 3) for i, v in enumerate(subject)]
    forward, backward = paired_difference(subject, other), paired_difference(other, subject)
    assert forward.mean == pytest.approx(-backward.mean, abs=1e-6)
    assert forward.low == pytest.approx(-backward.high, abs=1e-6)
    assert forward.sign == -backward.sign


def test_pairing_sees_a_small_steady_edge_that_two_separate_intervals_would_hide() -> None:
    """Seeds move both policies a lot and together; the subject is 1 % cheaper on every seed."""
    rng = random.Random(5)
    other = [1000.0 * (1 + rng.uniform(-0.2, 0.2)) for _ in range(10)]
    subject = [v * 0.99 for v in other]
    assert estimate(subject).high > estimate(other).low  # the separate intervals overlap
    ratio = paired_ratio(subject, other)
    assert ratio.mean == pytest.approx(0.99) and ratio.high < 1 and ratio.sign == -1


def test_paired_values_must_pair_and_a_ratio_needs_positive_values() -> None:
    with pytest.raises(ValueError, match="one of each per seed"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0])


def _at(sign: int, null: float = 0.0) -> Estimate:
    """An interval above (+1), below (-1) or around (0) `null`."""
    return Estimate(null + sign, null + sign - 0.5, null + sign + 0.5, 10, null)


@pytest.mark.parametrize(("attainment", "cost", "expected"), [
    (1, 0, "dominates"), (0, -1, "dominates"), (1, -1, "dominates"),
    (-1, 0, "dominated"), (0, 1, "dominated"), (-1, 1, "dominated"),
    (1, 1, "trades"), (-1, -1, "trades"), (0, 0, "no difference"),
])
def test_a_verdict_rests_only_on_intervals_that_exclude_no_change(attainment: int, cost: int, expected: str) -> None:
    """Attainment: higher is better (a difference, null 0). Cost: lower is better (a ratio, null 1)."""
    assert verdict(_at(attainment), _at(cost, 1.0)) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 1.0), st.floats(1.0, 1e5), st.floats(0.5, 1.0), st.floats(1.0, 1e5)),
                min_size=2, max_size=15))
def test_verdicts_are_antisymmetric(seeds: list[tuple[float, float, float, float]]) -> None:
    a_att, a_cost, b_att, b_cost = (list(column) for column in zip(*seeds, strict=True))
    forward = verdict(paired_difference(a_att, b_att), paired_ratio(a_cost, b_cost))
    backward = verdict(paired_difference(b_att, a_att), paired_ratio(b_cost, a_cost))
    mirror = {"dominates": "dominated", "dominated": "dominates", "trades": "trades", "no difference": "no difference"}
    assert backward == mirror[forward]
