"""Capacity planning before any traffic: how many replicas of a given concurrency keep a stated
rate within a latency objective, by the same Erlang C model the scaling engine decides with
(`spillway.scaling.queueing`), and where that count stops being enough.

Two limits bound a replica count n of concurrency c at mean service time S: the thread pool is
100 % busy at n·c/S requests per second (beyond it the queue grows without end), and the
objective stops being met somewhat earlier, where the queueing delay eats the objective's
budget. An objective at or below S is out of reach of any count: only a faster service meets
it. Pure: numbers in, a frozen `Plan` out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from spillway.scaling.queueing import erlang_c, replicas_for_latency, replicas_for_mean_latency

LatencyKind = Literal["quantile", "mean"]
CONCURRENCIES = (1, 2, 4, 8, 16, 32, 64, 200)
MOST_REPLICAS = 10000  # the API's bound on replicas.max
_BISECTIONS = 100


@dataclass(frozen=True)
class Row:
    """Replicas of one concurrency needed at the planned rate; None when no count up to the
    search limit meets the objective."""

    concurrency: int
    replicas: int | None
    utilization: float | None  # busy share of the replicas' workers at the planned rate


@dataclass(frozen=True)
class Plan:
    rate_rps: float
    service_seconds: float
    objective_seconds: float
    quantile: float
    kind: LatencyKind
    concurrency: int
    max_replicas: int | None
    replicas: int | None  # at `concurrency`; None when unreachable or beyond MOST_REPLICAS
    rows: tuple[Row, ...]
    saturation_rps: float | None  # replicas · concurrency / service_seconds
    objective_limit_rps: float | None  # the highest rate `replicas` still meet the objective at
    unreachable: str | None  # why no count meets the objective, when none does
    caveat: str | None  # where the model's answer is optimistic

    @property
    def utilization(self) -> float | None:
        return _utilization(self.rate_rps, self.service_seconds, self.concurrency, self.replicas)

    @property
    def within_max(self) -> bool:
        return self.replicas is not None and (self.max_replicas is None or self.replicas <= self.max_replicas)

    @property
    def aim(self) -> str:
        """The objective in words, saying whether it is read as a quantile or a mean."""
        if self.kind == "mean":
            return f"mean response under {self.objective_seconds * 1000:g}ms"
        return f"p{self.quantile * 100:g} response under {self.objective_seconds * 1000:g}ms"


def _utilization(rate: float, service: float, concurrency: int, replicas: int | None) -> float | None:
    return None if replicas is None else rate * service / (replicas * concurrency)


def _needed(rate: float, service: float, concurrency: int, objective: float, quantile: float, kind: LatencyKind,
            most: int) -> int | None:
    if kind == "mean":
        return replicas_for_mean_latency(rate, service, concurrency, objective, most)
    return replicas_for_latency(rate, service, concurrency, objective, quantile, most)


def meets(rate: float, service: float, servers: int, objective: float, quantile: float, kind: LatencyKind) -> bool:
    """Whether `servers` workers keep `rate` within the objective, as the model judges it."""
    load, budget = rate * service, objective - service
    if budget <= 0 or load >= servers:
        return False
    waits = erlang_c(servers, load)
    if kind == "mean":
        return waits * service / (servers - load) <= budget
    return waits * math.exp(-(servers - load) * budget / service) <= 1.0 - quantile


def objective_limit(replicas: int, concurrency: int, service: float, objective: float, quantile: float,
                    kind: LatencyKind) -> float | None:
    """The highest rate at which `replicas` of `concurrency` still meet the objective (found by
    bisection: the wait only grows with the rate); None when they meet it at no rate."""
    servers = replicas * concurrency
    high = servers / service
    if not meets(high * 1e-9, service, servers, objective, quantile, kind):
        return None
    low = 0.0
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if meets(middle, service, servers, objective, quantile, kind):
            low = middle
        else:
            high = middle
        if high - low <= high * 1e-12:
            break
    return low


def _check(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")


def plan(rate_rps: float, service_seconds: float, objective_seconds: float, concurrency: int, *,
         quantile: float = 0.95, kind: LatencyKind = "quantile", max_replicas: int | None = None,
         concurrencies: tuple[int, ...] = CONCURRENCIES) -> Plan:
    _check("the rate", rate_rps)
    _check("the service time", service_seconds)
    _check("the objective", objective_seconds)
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must lie between 0 and 1, not {quantile!r}")
    if concurrency < 1 or (max_replicas is not None and max_replicas < 1):
        raise ValueError("concurrency and max replicas must be at least 1")
    unreachable = None
    if objective_seconds <= service_seconds:
        unreachable = (f"the objective {objective_seconds * 1000:g}ms is at or below the mean service time "
                       f"{service_seconds * 1000:g}ms: a request takes that long once a worker has it, so no "
                       "replica count can meet it; only a faster service can")
    caveat = None
    alone = -math.log(1 - quantile) * service_seconds
    if unreachable is None and kind == "quantile" and objective_seconds < alone:
        caveat = (f"with exponential service times the service alone has p{quantile * 100:g} "
                  f"{alone * 1000:.0f}ms, above the objective: the model counts the service at its mean, so "
                  "these counts keep the queueing delay within budget but the objective will still be missed")

    def needed(c: int) -> int | None:
        return _needed(rate_rps, service_seconds, c, objective_seconds, quantile, kind, MOST_REPLICAS)

    rows = tuple(Row(c, n, _utilization(rate_rps, service_seconds, c, n))
                 for c in sorted({*concurrencies, concurrency}) for n in [needed(c)])
    replicas = next(row.replicas for row in rows if row.concurrency == concurrency)
    saturation = limit = None
    if replicas is not None:
        saturation = replicas * concurrency / service_seconds
        limit = objective_limit(replicas, concurrency, service_seconds, objective_seconds, quantile, kind)
    return Plan(rate_rps=rate_rps, service_seconds=service_seconds, objective_seconds=objective_seconds,
                quantile=quantile, kind=kind, concurrency=concurrency, max_replicas=max_replicas,
                replicas=replicas, rows=rows, saturation_rps=saturation, objective_limit_rps=limit,
                unreachable=unreachable, caveat=caveat)
