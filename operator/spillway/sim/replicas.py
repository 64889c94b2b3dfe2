"""What the simulated replicas are: the `Service` every replica runs, one replica's running state
inside the simulation (its workers, wait queue and time integrals), the `Pod` a metrics pipeline
sees of it at an instant, and the `Outcome` of every request sent to them.

Plain values and bookkeeping shared by the simulation (`spillway.sim.model`), the balancer
(`spillway.sim.balancers`) and the node slots (`spillway.sim.nodes`). It never decides anything:
no event, no pick, no placement, no random draw happens here. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from spillway.sim.distributions import ServiceTime, exponential


@dataclass(frozen=True)
class Service:
    concurrency: int = 8
    queue_limit: int = 100
    timeout: float = 30.0
    service_time: ServiceTime = field(default=exponential(0.1))
    startup: float = 0.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue_limit < 0:
            raise ValueError("concurrency must be at least 1 and queue_limit at least 0")
        if not self.timeout > 0 or not self.startup >= 0 or math.isinf(self.startup):
            raise ValueError("timeout must be positive and startup a finite number of seconds")


@dataclass
class Outcome:
    """What happened to every request: latencies of those answered in time, and the counts."""

    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    refused: int = 0
    arrived: int = 0
    waited: int = 0  # requests that waited in a queue before a worker took them
    rebalanced: int = 0  # session requests sent off the replica that held their session (sticky runs)

    @property
    def answered(self) -> int:
        return len(self.latencies)


# Compared by identity: replicas sit in lists and maps, and two idle replicas are not one.
@dataclass(eq=False, slots=True)
class Replica:
    index: int
    ready_at: float  # infinite while Pending (no node slot yet)
    concurrency: int
    speed: float = 1.0
    weight: int = 1
    flavor: int = 0
    busy: int = 0
    waiting: int = 0  # requests queued and not given up
    # (request id, arrival time, its work); entries of requests given up stay until reached, and
    # are skipped
    queue: deque[tuple[int, float, float]] = field(default_factory=deque)
    draining: bool = False
    # Time integrals up to `touched`: busy workers (CPU a resource metric sees) and busy plus
    # waiting (the concurrency a sidecar such as Knative's queue-proxy sees).
    busy_area: float = 0.0
    inflight_area: float = 0.0
    touched: float = 0.0
    requests: int = 0  # sent to it by the balancer, taken or refused (HAProxy's stot counts these)
    current_weight: int = 0  # smooth weighted round robin's running score
    placed: bool = True  # holds a node slot (always, without Nodes)

    def touch(self, now: float) -> None:
        elapsed = now - self.touched
        if elapsed > 0:
            self.busy_area += self.busy * elapsed
            self.inflight_area += (self.busy + self.waiting) * elapsed
            self.touched = now


@dataclass(frozen=True)
class Pod:
    """One replica as a metrics pipeline sees it at an instant."""

    index: int
    ready: bool
    draining: bool
    busy: int
    waiting: int
    busy_area: float  # busy-worker-seconds since the replica was made
    inflight_area: float  # (busy + waiting)-seconds since the replica was made
    flavor: int = 0  # index into the simulation's flavors
    pending: bool = False  # waiting for a node slot
    requests: int = 0  # sent to it by the balancer so far
