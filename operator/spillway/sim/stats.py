"""Figures over seeds: a mean with its confidence interval, and verdicts only where a paired
difference's interval excludes zero. Pure.

Runs of one seed share their random numbers (each request's arrival and work, the scrapes' and
decisions' phases: `spillway.sim.model`, `spillway.sim.run`), so two policies are compared seed
by seed: the interval is the paired difference's, Student's t over the seeds, which is far
narrower than two separate intervals and is the one a verdict may rest on.

A cost is compared as a ratio (the subject's replica-seconds over the other's, per seed): its
interval is taken on the logarithm and reported back as a ratio, so that 0.8× and 1.25× are as
far from 1 as each other. An attainment is compared as a difference of shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean over `n` seeds and its two-sided interval; with one seed the interval is unbounded.
    `null` is the value meaning "no change": 0 for a difference, 1 for a ratio."""

    mean: float
    low: float
    high: float
    n: int
    null: float = 0.0

    @property
    def sign(self) -> int:
        """+1 when the whole interval lies above `null`, -1 below, 0 when it holds it."""
        return 1 if self.low > self.null else -1 if self.high < self.null else 0


def estimate(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Student's t interval of the mean of `values` (one per seed)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")
    if not values:
        raise ValueError("an estimate needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"an estimate needs finite values, not {[v for v in values if not math.isfinite(v)]}")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, -math.inf, math.inf, 1)
    from scipy.stats import t as student_t  # the sim extra's; needed only over several seeds

    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(variance / n)
    # A spread of rounding size around identical values is no spread.
    if half <= 1e-12 * max(1.0, abs(mean)):
        half = 0.0
    return Estimate(mean, mean - half, mean + half, n)


def paired_difference(subject: Sequence[float], other: Sequence[float],
                      confidence: float = CONFIDENCE) -> Estimate:
    """The interval of the mean of subject - other, seed by seed."""
    if len(subject) != len(other):
        raise ValueError(f"paired values need one of each per seed: {len(subject)} and {len(other)}")
    return estimate([a - b for a, b in zip(subject, other, strict=True)], confidence)


def paired_ratio(subject: Sequence[float], other: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The geometric mean of subject / other, seed by seed, with its interval (taken on the
    logarithm); its `sign` is +1 when the subject is significantly larger."""
    if any(not v > 0 for v in (*subject, *other)):
        raise ValueError("a ratio needs positive values on both sides")
    logs = paired_difference([math.log(v) for v in subject], [math.log(v) for v in other], confidence)
    return Estimate(math.exp(logs.mean), math.exp(logs.low), math.exp(logs.high), logs.n, null=1.0)


Verdict = Literal["dominates", "no difference", "trades", "dominated"]


def verdict(attainment: Estimate, cost: Estimate) -> Verdict:
    """The subject against another from the paired attainment difference (higher is better) and
    the paired cost ratio (lower is better): it dominates when significantly better on one and
    not significantly worse on the other; "no difference" when both intervals hold "no change"."""
    return verdict_of(attainment.sign, -cost.sign)


def verdict_of(better_attainment: int, better_cost: int) -> Verdict:
    """The verdict from two signs, +1 where the subject is significantly better, -1 worse, 0
    neither: better on one and not worse on the other dominates."""
    better = (better_attainment, better_cost)
    if max(better) > 0 and min(better) >= 0:
        return "dominates"
    if min(better) < 0 and max(better) <= 0:
        return "dominated"
    if better == (0, 0):
        return "no difference"
    return "trades"

