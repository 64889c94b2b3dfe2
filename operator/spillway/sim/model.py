"""Replicas, a balancer and clients, as discrete events.

Each replica has `concurrency` workers and a FIFO wait queue of at most `queue_limit` requests;
a request arriving at a full queue is refused. A client waits at most `timeout` seconds for its
answer: a request still queued at its deadline is given up (a timeout, and it frees its queue
place), one in service past its deadline is a timeout too but keeps its worker until done (the
server does not know the client left). A replica added takes traffic only after its start-up
delay; a replica removed stops taking traffic at once and finishes what it holds.

Events are kept in a heap of (time, sequence, kind, payload): the sequence breaks ties in the
order events were made, so a run is a function of its inputs and its seed alone.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

ServiceTime = Callable[[random.Random], float]
ALGORITHMS = ("RoundRobin", "Random", "LeastConnection")


def exponential(mean_seconds: float) -> ServiceTime:
    if not mean_seconds > 0 or math.isinf(mean_seconds):
        raise ValueError(f"a mean service time must be a positive number of seconds, not {mean_seconds!r}")
    return lambda rng: rng.expovariate(1.0 / mean_seconds)


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

    @property
    def answered(self) -> int:
        return len(self.latencies)


@dataclass
class _Replica:
    ready_at: float
    busy: int = 0
    waiting: int = 0  # requests queued and not given up
    # (request id, arrival time); entries of requests given up stay until reached, and are skipped
    queue: deque[tuple[int, float]] = field(default_factory=deque)
    draining: bool = False


_ARRIVAL, _DONE, _DEADLINE = 0, 1, 2


class Simulation:
    def __init__(self, service: Service, replicas: int, algorithm: str = "RoundRobin", seed: int = 0) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
        if replicas < 1:
            raise ValueError("a simulation starts with at least one replica")
        self.service, self.algorithm = service, algorithm
        self.rng = random.Random(seed)
        self.now = 0.0
        self.replicas = [_Replica(ready_at=0.0) for _ in range(replicas)]
        self.outcome = Outcome()
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        self._next_id = 0
        self._turn = 0
        self._waiting: dict[int, int] = {}  # queued request id -> replica index
        self._in_service: dict[int, tuple[int, float]] = {}  # request id -> (replica index, arrival time)

    # --- driving ----------------------------------------------------------------------------

    def _push(self, at: float, kind: int, payload: int) -> None:
        heapq.heappush(self._events, (at, self._sequence, kind, payload))
        self._sequence += 1

    def arrive_at(self, times: Iterable[float]) -> None:
        for at in times:
            self._push(at, _ARRIVAL, -1)

    def run_until(self, end: float) -> None:
        """Process every event up to `end` (inclusive); the clock stops at `end`."""
        while self._events and self._events[0][0] <= end:
            at, _, kind, payload = heapq.heappop(self._events)
            self.now = at
            if kind == _ARRIVAL:
                self._arrival()
            elif kind == _DONE:
                self._done(payload)
            else:
                self._deadline(payload)
        self.now = max(self.now, end)

    def scale_to(self, count: int) -> None:
        """Add replicas (taking traffic after the start-up delay) or drain the newest ones."""
        active = [r for r in self.replicas if not r.draining]
        for _ in range(count - len(active)):
            self.replicas.append(_Replica(ready_at=self.now + self.service.startup))
        for replica in reversed(active[max(count, 1):] if count < len(active) else []):
            replica.draining = True

    # --- what the metrics pipeline reads ----------------------------------------------------

    def ready_replicas(self) -> int:
        return sum(1 for r in self.replicas if not r.draining and r.ready_at <= self.now)

    def busy_workers(self) -> int:
        return sum(r.busy for r in self.replicas)

    def queued(self) -> int:
        return sum(r.waiting for r in self.replicas)

    def in_flight(self) -> int:
        """Requests arrived and not yet decided: in service or queued."""
        return self.busy_workers() + self.queued()

    # --- events -----------------------------------------------------------------------------

    def _pick(self) -> int | None:
        ready = [i for i, r in enumerate(self.replicas) if not r.draining and r.ready_at <= self.now]
        if not ready:
            return None
        if self.algorithm == "Random":
            return self.rng.choice(ready)
        if self.algorithm == "LeastConnection":
            return min(ready, key=lambda i: (self.replicas[i].busy + self.replicas[i].waiting, i))
        self._turn += 1
        return ready[self._turn % len(ready)]

    def _arrival(self) -> None:
        request = self._next_id
        self._next_id += 1
        self.outcome.arrived += 1
        index = self._pick()
        if index is None:
            self.outcome.refused += 1
            return
        replica = self.replicas[index]
        if replica.busy < self.service.concurrency:
            self._start(index, request, self.now)
        elif replica.waiting < self.service.queue_limit:
            replica.queue.append((request, self.now))
            replica.waiting += 1
            self._waiting[request] = index
            self._push(self.now + self.service.timeout, _DEADLINE, request)
        else:
            self.outcome.refused += 1

    def _start(self, index: int, request: int, arrived: float) -> None:
        self.replicas[index].busy += 1
        self._in_service[request] = (index, arrived)
        duration = max(0.0, float(self.service.service_time(self.rng)))
        self._push(self.now + duration, _DONE, request)

    def _done(self, request: int) -> None:
        index, arrived = self._in_service.pop(request)
        latency = self.now - arrived
        if latency > self.service.timeout:
            self.outcome.timeouts += 1
        else:
            self.outcome.latencies.append(latency)
        replica = self.replicas[index]
        replica.busy -= 1
        while replica.queue:
            queued, at = replica.queue.popleft()
            if self._waiting.pop(queued, None) is None:
                continue  # given up at its deadline
            replica.waiting -= 1
            self.outcome.waited += 1
            self._start(index, queued, at)
            break

    def _deadline(self, request: int) -> None:
        index = self._waiting.pop(request, None)
        if index is None:
            return  # started in time (its own completion decides), or long gone
        self.outcome.timeouts += 1
        self.replicas[index].waiting -= 1  # its place is free now; its entry is skipped when reached


def poisson_arrivals(rate: Callable[[float], float], start: float, end: float, peak: float,
                     rng: random.Random) -> list[float]:
    """Arrival times of a Poisson process whose rate at time t is `rate(t)` (at most `peak`),
    by thinning: candidates at the peak rate, each kept with probability rate(t) / peak."""
    if not peak > 0 or math.isinf(peak):
        return []
    times: list[float] = []
    t = start
    while True:
        t += rng.expovariate(peak)
        if t > end:
            return times
        value = rate(t)
        if value > 0 and rng.random() * peak < min(value, peak):
            times.append(t)
