"""Service-time distributions for the simulator: how long one request holds a worker.

Each is a small frozen value, called with the simulation's random generator to draw one service
time in seconds, and states its `mean_seconds` so a caller (the oracle, a report) can reason
about capacity without sampling. Exponential is the queueing textbook's; lognormal is what
measured web latencies usually look like (a long right tail); bimodal is "most requests are
quick, some are slow" (a report, a search), each mode exponential; empirical replays measured
service times from a `seconds` CSV. Pure: the CSV is text the caller passes in; every draw
comes from the generator passed in, so a run stays a function of its seed.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

ServiceTime = Callable[[random.Random], float]


def _positive_seconds(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


@dataclass(frozen=True)
class Exponential:
    """Memoryless service: the M in M/M/k, the model the scaling engine's Erlang C assumes."""

    mean_seconds: float

    def __post_init__(self) -> None:
        _positive_seconds("mean_seconds", self.mean_seconds)

    def __call__(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_seconds)


@dataclass(frozen=True)
class Lognormal:
    """A lognormal whose mean is `mean_seconds` exactly: mu = ln(mean) - sigma^2 / 2, so `sigma`
    only widens the tail (the median is mean * exp(-sigma^2 / 2))."""

    mean_seconds: float
    sigma: float
    mu: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive_seconds("mean_seconds", self.mean_seconds)
        if not self.sigma > 0 or math.isinf(self.sigma):
            raise ValueError(f"sigma must be a positive finite number, not {self.sigma!r}")
        object.__setattr__(self, "mu", math.log(self.mean_seconds) - self.sigma ** 2 / 2)

    def __call__(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


@dataclass(frozen=True)
class Bimodal:
    """A share `slow_share` of requests is slow (exponential around `slow_mean`), the rest fast
    (exponential around `fast_mean`)."""

    fast_mean: float
    slow_mean: float
    slow_share: float

    def __post_init__(self) -> None:
        _positive_seconds("fast_mean", self.fast_mean)
        _positive_seconds("slow_mean", self.slow_mean)
        if not 0 <= self.slow_share <= 1:
            raise ValueError(f"slow_share must be a share between 0 and 1, not {self.slow_share!r}")

    @property
    def mean_seconds(self) -> float:
        return (1 - self.slow_share) * self.fast_mean + self.slow_share * self.slow_mean

    def __call__(self, rng: random.Random) -> float:
        # One draw picks the mode, then one the time: two draws whatever the mode, so a change of
        # slow_share moves no other request's random numbers out of step.
        slow = rng.random() < self.slow_share
        return rng.expovariate(1.0 / (self.slow_mean if slow else self.fast_mean))


@dataclass(frozen=True)
class Empirical:
    """Measured service times, each drawn with equal probability."""

    samples: tuple[float, ...]
    mean_seconds: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("samples must hold at least one measured service time, not none")
        for row, value in enumerate(self.samples, start=1):
            # Zero is allowed: a request faster than the clock's resolution is measured as 0.
            if not value >= 0 or math.isinf(value):
                raise ValueError(f"seconds on row {row} must be a finite number of seconds, 0 or more, not {value!r}")
        mean = math.fsum(self.samples) / len(self.samples)
        if not mean > 0:
            raise ValueError(f"samples must not all be 0 seconds (mean_seconds {mean!r})")
        object.__setattr__(self, "mean_seconds", mean)

    def __call__(self, rng: random.Random) -> float:
        return self.samples[int(rng.random() * len(self.samples))]


def exponential(mean_seconds: float) -> Exponential:
    return Exponential(mean_seconds)


def lognormal(mean_seconds: float, sigma: float) -> Lognormal:
    return Lognormal(mean_seconds, sigma)


def bimodal(fast_mean: float, slow_mean: float, slow_share: float) -> Bimodal:
    return Bimodal(fast_mean, slow_mean, slow_share)


def empirical(text: str) -> Empirical:
    """Service times from a CSV with a `seconds` column (header required), one sample per row."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "seconds" not in [name.strip() for name in reader.fieldnames]:
        raise ValueError(f"text must be a CSV with the header seconds, not one starting {text[:40]!r}")
    column = next(name for name in reader.fieldnames if name.strip() == "seconds")
    samples = []
    for row, record in enumerate(reader, start=1):
        raw = record.get(column)
        try:
            samples.append(float(raw if raw is not None else ""))
        except ValueError:
            raise ValueError(f"seconds on row {row} must be a number of seconds, not {raw!r}") from None
    return Empirical(tuple(samples))
