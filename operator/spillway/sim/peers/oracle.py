"""The oracle: the limit the autoscalers are measured against, not a policy anyone can run. It
reads the true offered load ahead of time (`Foresight`) and, every tick, asks for the fewest
replicas that meet the latency objective (queueing.replicas_for_latency at the true mean service
time) for the highest rate between now and now + start-up + tick, the last moment a pod asked
for at the next tick could be ready; at most max, also when even max cannot meet it. Pure.

`Oracle(..., ahead=False)` is the reactive reference: the same sizing for the true rate of the
present second only (no metric delay, no look-ahead, the same start-up). No reactive policy,
which can only learn of a rise after it happened, does better than it on a rise; what it loses
there is the price of reacting at all.

Departure from an exact peak: the rate is sampled every `sample_seconds` (1 s, the traces'
resolution) and at both ends of the look-ahead, so a burst shorter than a sample step that
starts and ends inside it can be missed. A rate that is not a number is read as unbounded (max).
"""

from __future__ import annotations

import math
from typing import Any

from spillway.scaling.queueing import replicas_for_latency
from spillway.sim.peers.hpa import variant_name
from spillway.sim.policy import Foresight, Observatory

__all__ = ["Oracle", "tuned_grid"]

TICK_SECONDS = 1.0
SAMPLE_SECONDS = 1.0


class Oracle:
    def __init__(self, foresight: Foresight, objective_seconds: float, quantile: float, min_replicas: int,
                 max_replicas: int, *, tick_seconds: float = TICK_SECONDS,
                 sample_seconds: float = SAMPLE_SECONDS, ahead: bool = True) -> None:
        if not 1 <= min_replicas <= max_replicas or not (tick_seconds > 0 and sample_seconds > 0):
            raise ValueError("the oracle needs 1 <= min <= max and positive tick and sample periods")
        self.foresight = foresight
        self.objective_seconds, self.quantile = objective_seconds, quantile
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.tick_seconds, self.sample_seconds = tick_seconds, sample_seconds
        self.ahead = ahead
        self.name = variant_name("Oracle" if ahead else "Reactive reference",
                                 {"tick": (tick_seconds, TICK_SECONDS), "sample": (sample_seconds, SAMPLE_SECONDS)})
        self._needed: dict[float, int] = {}  # replicas per peak rate: a trace repeats its rates

    def decide(self, observatory: Observatory, current: int) -> int:
        now = observatory.now
        if not math.isfinite(now):
            return max(self.min_replicas, min(self.max_replicas, current))
        peak = (self.peak(now, now + self.foresight.startup_seconds + self.tick_seconds) if self.ahead
                else self.peak(now, now))
        return max(self.min_replicas, min(self.max_replicas, self.needed(peak)))

    def peak(self, start: float, end: float) -> float:
        """The highest rate over [start, end], sampled."""
        steps = max(0, math.ceil((end - start) / self.sample_seconds))
        rates = [self.foresight.rate(min(end, start + i * self.sample_seconds)) for i in range(steps + 1)]
        return max((math.inf if math.isnan(rate) else rate) for rate in rates)

    def needed(self, rate: float) -> int:
        if rate not in self._needed:
            found = replicas_for_latency(max(0.0, rate), self.foresight.mean_service_seconds,
                                         self.foresight.concurrency, self.objective_seconds, self.quantile,
                                         self.max_replicas)
            self._needed[rate] = self.max_replicas if found is None else found
        return self._needed[rate]


def tuned_grid() -> list[dict[str, Any]]:
    """Tick periods to compare the limit at; the first is the default."""
    return [{}, {"tick_seconds": 2.0}, {"tick_seconds": 5.0}, {"tick_seconds": 15.0}]
