"""The latency model: how many replicas an M/M/(n·c) queue needs to meet a latency objective.

Each replica serves `c` requests at once (capacity.concurrency), so n replicas are k = n·c
servers. With arrival rate λ and mean service time S the offered load is a = λ·S. For an
M/M/k queue the probability that a request waits is Erlang C, C(k, a), and the wait is
exponential beyond that: P(W > t) = C(k, a) · exp(−(k − a) · t / S). A response is the wait
plus the service; we give the service its mean S and ask the wait to fit in the rest of the
objective: P(W > objective − S) ≤ 1 − quantile. That sees saturation coming: as a nears k,
C climbs to 1 long before the mean latency bends. The engine always sizes for the quantile;
`replicas_for_mean_latency` (the smallest n whose mean response S + C(k, a)·S/(k − a) fits in
the objective) serves `spillway plan --mean`. Either way an objective at or below S is out of
reach of any replica count: only a faster service can meet it.

Erlang C comes from Erlang B by the stable recursion B(k) = a·B(k−1) / (k + a·B(k−1)),
C = k·B / (k − a·(1 − B)). For large loads the recursion starts near the knee, at
k₀ = a − 8√a with B(k₀) ≈ 1 − k₀/a (its fixed point there); the recursion contracts errors
by k/a per step, so by k = a the start's error has shrunk by about e^−32. That keeps a
decision for 40 replicas of 200 workers to about a thousand steps. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

_EXACT_BELOW = 64.0  # loads under this start the recursion at k = 0, exactly


def _erlang_b_steps(load: float) -> Iterator[tuple[int, float]]:
    """(k, B(k, load)) for k from the recursion's start upward, forever."""
    if load <= 0:
        k = 0
        while True:
            k += 1
            yield k, 0.0
    start = 0 if load < _EXACT_BELOW else max(0, int(load - 8 * math.sqrt(load)))
    b = 1.0 if start == 0 else 1.0 - start / load
    k = start
    while True:
        k += 1
        b = load * b / (k + load * b)
        yield k, b


def erlang_b(servers: int, load: float) -> float:
    """Probability that an arrival finds all `servers` busy in a loss system (Erlang B)."""
    if servers <= 0:
        return 1.0
    for k, b in _erlang_b_steps(load):
        if k >= servers:
            return b
    raise AssertionError("unreachable")  # pragma: no cover


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in an M/M/k queue (Erlang C); 1 when unstable."""
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1 - b))


def _c_from_b(servers: int, load: float, b: float) -> float:
    return 1.0 if load >= servers else servers * b / (servers - load * (1 - b))


def wait_tail(servers: int, load: float, service_seconds: float, wait_seconds: float) -> float:
    """P(wait > wait_seconds) in an M/M/k queue."""
    if load >= servers:
        return 1.0
    return erlang_c(servers, load) * math.exp(-(servers - load) * wait_seconds / service_seconds)


def mean_response(servers: int, load: float, service_seconds: float) -> float:
    """Mean response time of an M/M/k queue: S + C(k, a) · S / (k − a); infinite when unstable."""
    if load >= servers:
        return math.inf
    return service_seconds + erlang_c(servers, load) * service_seconds / (servers - load)


def replicas_for_latency(arrival_rate: float, service_seconds: float, concurrency: int,
                         objective_seconds: float, quantile: float, most: int) -> int | None:
    """The smallest n ≤ `most` whose n·concurrency servers keep P(response > objective) within
    1 − quantile; None when even `most` cannot (or the objective is below the service time)."""
    budget = objective_seconds - service_seconds
    allowed = 1.0 - quantile
    load = arrival_rate * service_seconds

    def fits(servers: int, waits: float) -> bool:
        return waits * math.exp(-(servers - load) * budget / service_seconds) <= allowed

    return _smallest(load, budget, concurrency, most, fits)


def replicas_for_mean_latency(arrival_rate: float, service_seconds: float, concurrency: int,
                              objective_seconds: float, most: int) -> int | None:
    """The smallest n ≤ `most` whose n·concurrency servers keep the mean response time
    S + C(k, a)·S/(k − a) within the objective; None when even `most` cannot (or the objective is below the service time)."""
    budget = objective_seconds - service_seconds
    load = arrival_rate * service_seconds

    def fits(servers: int, waits: float) -> bool:
        return waits * service_seconds / (servers - load) <= budget

    return _smallest(load, budget, concurrency, most, fits)


def _smallest(load: float, budget: float, concurrency: int, most: int,
              fits: Callable[[int, float], bool]) -> int | None:
    """The smallest replica count whose servers keep the load stable and `fits(servers, C)`;
    the wait only shrinks as servers are added, so the first that fits is the answer."""
    if budget <= 0 or most < 1 or not math.isfinite(load):
        return None
    if load <= 0:
        return 1
    first = max(1, math.floor(load / concurrency) + 1)  # fewer replicas cannot even keep up
    if first > most:
        return None
    for k, b in _erlang_b_steps(load):
        if k % concurrency or k < first * concurrency:
            continue
        if fits(k, _c_from_b(k, load, b)):
            return k // concurrency
        if k >= most * concurrency:
            return None
    raise AssertionError("unreachable")  # pragma: no cover
