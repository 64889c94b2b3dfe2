"""A lower bound on the replica-seconds any policy needs to reach a given SLO attainment on one
run's requests, knowing them all in advance. Pure; solves a linear program with scipy's HiGHS
(the sim extra), imported only when asked.

The requests are the run's own: the same arrivals and the same work per request that
`spillway.sim.run.run` draws for that scenario and seed (`workload`). What any policy must pay,
whatever it decides:

- a request counts only when answered within the objective O of its arrival, so its work is
  done within [arrival, arrival + O]: work arriving in second t is done in seconds t .. t + ceil(O);
- a ready replica does at most `concurrency` seconds of work per second;
- reaching attainment A leaves at most (1 - A) * N requests unanswered in time; their work is at
  most the sum of the (1 - A) * N largest works of the run, so at least the total work minus
  that sum is done in time;
- a replica that becomes ready was starting for the `startup` seconds before, counted as the run
  counts them, and at every second at least `min_replicas` pods are starting or ready;
- the initial replicas are ready at 0; after the trace the run drains with at least
  `min_replicas` pods until its last second (`drain_seconds`), and the work of the trace's last
  seconds may be done then.

The run counts each second's pods at its end; a draining pod retired within a second did work
in it uncounted, so a run may come in under the bound by up to a replica-second per pod it
removed (a few dozen replica-seconds in runs of tens of thousands).

The program: minimise the sum over seconds of ready + starting pods, subject to the above, with
pods and work as real numbers. Every run of every policy is a feasible point of it (its ready
count, its starts, the work it did in time per arrival second), so the optimum is at most the
run's replica-seconds: a bound, not a policy. It is optimistic in everything it leaves out
(queueing, the balancer's choices, whole pods, not knowing the future), so a policy's cost over
it says how much all of those cost together, not how far any policy could get.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from spillway.sim.model import poisson_arrivals
from spillway.sim.run import Scenario


@dataclass(frozen=True)
class Workload:
    """A run's requests, second by second: the work (seconds of one worker) of each arrival."""

    works: tuple[tuple[float, ...], ...]  # per arrival second, in arrival order

    @property
    def count(self) -> int:
        return sum(len(second) for second in self.works)


def workload(scenario: Scenario) -> Workload:
    """The arrivals and works `spillway.sim.run.run` draws for `scenario` (the same streams)."""
    if scenario.sessions:
        raise ValueError("the bound is for runs without sessions (a sticky run's cost depends on the sessions)")
    trace = scenario.trace
    arrivals = random.Random(scenario.seed + 1)
    work = random.Random(f"{scenario.seed}:work")
    seconds = []
    for second in range(math.ceil(trace.duration)):
        times = poisson_arrivals(trace.rate, second, second + 1, trace.peak_between(second, second + 1), arrivals)
        seconds.append(tuple(max(0.0, float(scenario.service.service_time(work))) for _ in times))
    return Workload(tuple(seconds))


def lower_bound(scenario: Scenario, load: Workload, attainment: float, drain_seconds: int = 0) -> float:
    """The fewest replica-seconds reaching `attainment` (a share) on `load`, per the module's
    program; `drain_seconds` after the trace cost `min_replicas` each."""
    if not 0 <= attainment <= 1 or math.isnan(attainment):
        raise ValueError(f"attainment is a share in [0, 1], not {attainment!r}")
    if drain_seconds < 0:
        raise ValueError(f"drain_seconds cannot be negative: {drain_seconds}")
    service = scenario.service
    seconds = len(load.works)
    floor = scenario.min_replicas
    if seconds == 0:
        return float(floor * drain_seconds)
    lags = math.ceil(scenario.objective_seconds) + 1  # the seconds a request's work may fall in
    per_second = [math.fsum(s) for s in load.works]
    every = sorted((w for s in load.works for w in s), reverse=True)
    spared = len(every) - math.ceil(attainment * len(every) - 1e-9)  # requests that may miss
    needed = math.fsum(per_second) - math.fsum(every[:max(0, spared)])
    if needed <= 1e-12:
        return float(floor * (seconds + drain_seconds))
    return _solve(per_second, needed, lags, service.concurrency, math.ceil(service.startup), floor,
                  scenario.initial) + floor * drain_seconds


def _solve(per_second: Sequence[float], needed: float, lags: int, concurrency: int, startup: int, floor: int,
           initial: int) -> float:
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n = len(per_second)
    # Variables: ready[t] (n), starts[t] (n: pods becoming ready at t), work[t][k] (n * lags: work
    # arriving in second t done in second t + k).
    ready, starts, work = 0, n, 2 * n
    size = 2 * n + n * lags
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    upper: list[float] = []
    row = 0

    def add(entries: list[tuple[int, float]], bound: float) -> None:
        nonlocal row
        for col, value in entries:
            rows.append(row)
            cols.append(col)
            vals.append(value)
        upper.append(bound)
        row += 1

    for t in range(n):
        # work done in time of second t's arrivals <= what arrived
        add([(work + t * lags + k, 1.0) for k in range(lags)], per_second[t])
        # work done in second t <= concurrency * ready[t]
        add([(work + (t - k) * lags + k, 1.0) for k in range(lags) if t - k >= 0]
            + [(ready + t, -float(concurrency))], 0.0)
        # ready[t] - ready[t-1] <= starts[t] (ready[-1] = initial)
        add([(ready + t, 1.0), (starts + t, -1.0)] + ([(ready + t - 1, -1.0)] if t else []),
            0.0 if t else float(initial))
        # ready[t] + starting[t] >= floor, starting[t] = starts in (t, t + startup]
        add([(ready + t, -1.0)] + [(starts + u, -1.0) for u in range(t + 1, min(n, t + startup + 1))], -float(floor))
    # all work done in time >= needed
    add([(work + i, -1.0) for i in range(n * lags)], -needed)
    cost = np.zeros(size)
    cost[ready:ready + n] = 1.0
    # each start costs its start-up seconds of a pod, those within the run (a pod ready at t < startup
    # started before the run began)
    cost[starts:starts + n] = [min(startup, t) for t in range(n)]
    # Work that falls after the trace's last second is done in the drain, whose pods are counted
    # apart (drain_seconds): no capacity row holds it.
    bounds = [(0.0, None)] * size
    matrix = coo_matrix((vals, (rows, cols)), shape=(row, size)).tocsr()
    # HiGHS' interior point: about twice as fast as its simplex on these banded programs (14 s
    # against 24-39 s for a 2-hour trace of 570,000 requests, measured on 2 cores).
    found = linprog(cost, A_ub=matrix, b_ub=np.array(upper), bounds=bounds, method="highs-ipm")
    if found.status != 0:
        raise ValueError(f"the bound's program found no solution: {found.message}")
    return float(found.fun)
