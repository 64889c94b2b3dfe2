"""Service-time distributions: each draws around the mean it states, is a function of the
generator it is handed, and refuses parameters that are not numbers of seconds."""

from __future__ import annotations

import math
import random

import pytest

from spillway.sim import model
from spillway.sim.distributions import (
    Bimodal, Empirical, Exponential, Lognormal, bimodal, empirical, exponential, lognormal,
)

SAMPLES = 100_000


def _sample_mean(draw: model.ServiceTime, seed: int = 11) -> float:
    rng = random.Random(seed)
    return math.fsum(draw(rng) for _ in range(SAMPLES)) / SAMPLES


@pytest.mark.parametrize(("distribution", "tolerance"), [
    (exponential(0.1), 0.02),
    (lognormal(0.2, 0.5), 0.02),
    (lognormal(0.2, 1.5), 0.08),  # a heavy tail: sd 2.9x the mean, so 100k draws wander more
    (bimodal(0.01, 1.0, 0.05), 0.06),
    (bimodal(0.05, 0.5, 0.0), 0.02),
    (bimodal(0.05, 0.5, 1.0), 0.02),
    (empirical("seconds\n0.010\n0.020\n0.300\n0\n1.5\n"), 0.03),
])
def test_the_sample_mean_is_near_the_stated_mean(distribution: Exponential | Lognormal | Bimodal | Empirical,
                                                 tolerance: float) -> None:
    assert _sample_mean(distribution) == pytest.approx(distribution.mean_seconds, rel=tolerance)


def test_stated_means() -> None:
    assert lognormal(0.25, 0.8).mean_seconds == 0.25
    assert bimodal(0.01, 1.0, 0.1).mean_seconds == pytest.approx(0.9 * 0.01 + 0.1 * 1.0)
    assert empirical("seconds\n1\n2\n6\n").mean_seconds == 3.0


def test_lognormal_median_sits_below_its_mean_by_the_spread() -> None:
    rng = random.Random(3)
    draws = sorted(lognormal(1.0, 1.0)(rng) for _ in range(20_001))
    assert draws[10_000] == pytest.approx(math.exp(-0.5), rel=0.03)


def test_exponential_is_the_model_modules_and_still_a_plain_callable() -> None:
    assert model.exponential is exponential
    first, second = random.Random(5), random.Random(5)
    assert exponential(0.3)(first) == second.expovariate(1 / 0.3)


def test_draws_are_a_function_of_the_generator() -> None:
    for distribution in (lognormal(0.1, 1.0), bimodal(0.01, 1.0, 0.2), empirical("seconds\n0.1\n0.2\n0.4\n")):
        first, second = random.Random(9), random.Random(9)
        assert [distribution(first) for _ in range(50)] == [distribution(second) for _ in range(50)]


def test_bimodal_draws_from_both_modes_in_the_stated_share() -> None:
    rng = random.Random(4)
    draws = [bimodal(0.001, 10.0, 0.25)(rng) for _ in range(20_000)]
    # A fast draw over 0.05 s is e^-50 away; a slow one under it has probability 0.5 %.
    assert sum(d > 0.05 for d in draws) / len(draws) == pytest.approx(0.25 * 0.995, abs=0.015)


def test_empirical_draws_only_measured_values_each_about_equally() -> None:
    rng = random.Random(8)
    draws = [empirical("seconds\n0.1\n0.2\n0.3\n0.4\n")(rng) for _ in range(40_000)]
    assert set(draws) == {0.1, 0.2, 0.3, 0.4}
    assert all(draws.count(v) / len(draws) == pytest.approx(0.25, abs=0.01) for v in (0.1, 0.2, 0.3, 0.4))


def test_empirical_reads_a_seconds_column_among_others() -> None:
    assert empirical("path,seconds\n/a,0.5\n/b, 1.5\n").samples == (0.5, 1.5)
    assert empirical("seconds\r\n0.5\r\n\r\n1.5\r\n").samples == (0.5, 1.5)  # blank lines skipped


NOT_POSITIVE = [0.0, -1.0, float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", NOT_POSITIVE)
def test_a_mean_that_is_not_a_positive_number_of_seconds_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=rf"mean_seconds must be a positive number of seconds, not {bad!r}"):
        exponential(bad)
    with pytest.raises(ValueError, match=rf"mean_seconds must be .*, not {bad!r}"):
        lognormal(bad, 1.0)
    with pytest.raises(ValueError, match=rf"fast_mean must be .*, not {bad!r}"):
        bimodal(bad, 1.0, 0.1)
    with pytest.raises(ValueError, match=rf"slow_mean must be .*, not {bad!r}"):
        bimodal(0.1, bad, 0.1)


@pytest.mark.parametrize("bad", NOT_POSITIVE)
def test_a_lognormal_spread_that_is_not_a_positive_number_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=rf"sigma must be .*, not {bad!r}"):
        lognormal(0.1, bad)


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan"), float("inf")])
def test_a_slow_share_outside_zero_to_one_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=rf"slow_share must be a share between 0 and 1, not {bad!r}"):
        Bimodal(0.1, 1.0, bad)


@pytest.mark.parametrize(("text", "message"), [
    ("", "header seconds"),
    ("seconds\n", "at least one measured service time"),
    ("t,rate\n1,2\n", "header seconds"),
    ("seconds\n0.1\nslow\n", r"seconds on row 2 must be a number of seconds, not 'slow'"),
    ("seconds\n0.1\n\n-0.2\n", r"seconds on row 2 must be .* 0 or more, not -0.2"),
    ("seconds\nnan\n", r"seconds on row 1 must be .*, not nan"),
    ("seconds\n0.1\ninf\n", r"seconds on row 2 must be .*, not inf"),
    ("seconds,path\n,/a\n", r"seconds on row 1 must be a number of seconds, not ''"),
    ("seconds\n0\n0\n", "must not all be 0 seconds"),
])
def test_an_empty_or_unreadable_service_time_csv_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        empirical(text)


def test_empirical_samples_given_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Empirical(())
    with pytest.raises(ValueError, match="not -1.0"):
        Empirical((0.5, -1.0))
