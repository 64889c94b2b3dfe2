"""Replicas, a balancer, clients and the nodes under them, as discrete events.

Each replica has `concurrency` workers and a FIFO wait queue of at most `queue_limit` requests;
a request arriving at a full queue is refused. A client waits at most `timeout` seconds for its
answer: a request still queued at its deadline is given up (a timeout, and it frees its queue
place), one in service past its deadline is a timeout too but keeps its worker until done (the
server does not know the client left). A replica added takes traffic only after its start-up
delay; a replica removed stops taking traffic at once and finishes what it holds.

The balancer's picks, flavors and sticky sessions are in `spillway.sim.balancers`; with `Nodes`,
a replica needs a pod slot (`spillway.sim.nodes`) and is Pending until it has one. The values a
run is made of are in `spillway.sim.replicas`; their public names are importable from here too.

Events are kept in a heap of (time, sequence, kind, payload): the sequence breaks ties in the
order events were made, so a run is a function of its inputs and its seed alone. Common random
numbers: each request's work (its service time on a replica of speed 1) is drawn from a stream of
its own, in arrival order, when it arrives, whatever happens to it then; so under the same seed
and arrivals the n-th request needs the same work whichever policy scales the replicas, and two
policies' difference is theirs, not the draws'. The balancer's random picks use another stream.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable

from spillway.sim.balancers import ALGORITHMS, Balancer, Flavor, FlavorMix
from spillway.sim.distributions import ServiceTime, exponential
from spillway.sim.nodes import Cluster, Nodes
from spillway.sim.replicas import Outcome, Pod, Replica, Service

__all__ = ["ALGORITHMS", "RECENT_SAMPLES", "Flavor", "Nodes", "Outcome", "Pod", "Service", "ServiceTime",
           "Simulation", "exponential", "poisson_arrivals"]

# HAProxy's TIME_STATS_SAMPLES: its time averages span the last 1024 requests.
RECENT_SAMPLES = 1024

_ARRIVAL, _DONE, _DEADLINE, _NODES_READY = 0, 1, 2, 3


class Simulation:
    def __init__(self, service: Service, replicas: int, algorithm: str = "RoundRobin", seed: int = 0, *,
                 flavors: tuple[Flavor, ...] = (Flavor(),), sticky: bool = False, nodes: Nodes | None = None) -> None:
        self.rng = random.Random(seed)
        self._work = random.Random(f"{seed}:work")  # each request's work, in arrival order
        self._balancer = Balancer(algorithm, self.rng)  # refuses an unknown algorithm
        if replicas < 1:
            raise ValueError("a simulation starts with at least one replica")
        if not flavors:
            raise ValueError("flavors must name at least one flavor, not none")
        self.service, self.algorithm, self.flavors, self.sticky, self.nodes = (
            service, algorithm, flavors, sticky, nodes)
        self.now = 0.0
        self.replicas: list[Replica] = []  # every replica ever made; a Pod's index points here
        self.outcome = Outcome()
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        self._next_id = 0
        self._waiting: dict[int, Replica] = {}  # queued request id -> its replica
        self._in_service: dict[int, tuple[Replica, float]] = {}  # request id -> (replica, arrival time)
        self.completed = 0  # requests whose service ended, in time or late (a counter, as a scrape reads it)
        self._recent: deque[float] = deque(maxlen=RECENT_SAMPLES)  # total times of the last completions
        self._recent_sum = 0.0
        # Replicas not yet drained empty, in the order made: all the per-request paths and the
        # metrics read only these, so a long run's scale-downs cost nothing later.
        self._live: list[Replica] = []
        # The balancer's ready set, rebuilt only when it may have changed: after a scale, or
        # once the clock passes the earliest start-up still to come.
        self._ready: list[Replica] = []
        self._ready_stale = True
        self._next_ready_at = math.inf
        self._mix = FlavorMix(flavors)
        self._cluster = Cluster(nodes, replicas) if nodes else None
        for _ in range(replicas):
            self._add_replica(ready_after=0.0)  # the first replicas are up when the run starts
        self._schedule()

    # --- driving ----------------------------------------------------------------------------

    def _push(self, at: float, kind: int, payload: int) -> None:
        heapq.heappush(self._events, (at, self._sequence, kind, payload))
        self._sequence += 1

    def arrive_at(self, times: Iterable[float], sessions: Iterable[int | None] | None = None) -> None:
        """Requests arriving at `times`; `sessions`, when given, names each one's session (a
        number 0 or more, or None for a request without one), which matters in sticky runs."""
        if sessions is None:
            for at in times:
                self._push(at, _ARRIVAL, -1)
            return
        times, sessions = list(times), list(sessions)
        if len(times) != len(sessions):
            raise ValueError(f"sessions must name one session per arrival: {len(sessions)} for {len(times)}")
        if any(s is not None and s < 0 for s in sessions):
            raise ValueError("sessions must be numbers 0 or more (or None)")
        for at, session in zip(times, sessions, strict=True):
            self._push(at, _ARRIVAL, -1 if session is None else session)

    def run_until(self, end: float) -> None:
        """Process every event up to `end` (inclusive); the clock stops at `end`."""
        events, pop = self._events, heapq.heappop
        arrival, done, deadline = self._arrival, self._done, self._deadline
        while events and events[0][0] <= end:
            at, _, kind, payload = pop(events)
            self.now = at
            if kind == _ARRIVAL:
                arrival(payload)
            elif kind == _DONE:
                done(payload)
            elif kind == _DEADLINE:
                deadline(payload)
            else:
                self._nodes_ready(payload)
        self.now = max(self.now, end)

    def scale_to(self, count: int) -> None:
        """Add replicas (taking traffic after the start-up delay, and a node slot) or drain some,
        never the last, chosen as a ReplicaSet picks pods to delete (`FlavorMix.to_drain`). The
        headroom placeholders follow the new count when they are a share of it."""
        if self._cluster is not None:
            self._cluster.ask(max(count, 1))
        active = [r for r in self._live if not r.draining]
        for _ in range(count - len(active)):
            self._add_replica(ready_after=self.service.startup)
        for _ in range(len(active) - max(count, 1)):
            victim = self._mix.to_drain(active)
            active.remove(victim)
            victim.draining = True
            if victim.busy == 0 and victim.waiting == 0:
                self._retire(victim)
        self._ready_stale = True
        self._schedule()

    # --- what the metrics pipeline reads ----------------------------------------------------

    def ready_replicas(self) -> int:
        return len(self._ready_set())

    def busy_workers(self) -> int:
        return sum(r.busy for r in self._live)

    def queued(self) -> int:
        return sum(r.waiting for r in self._live)

    def in_flight(self) -> int:
        """Requests arrived and not yet decided: in service or queued."""
        return self.busy_workers() + self.queued()

    def recent_mean_seconds(self) -> float | None:
        """The mean total time (queue and service) of the last `RECENT_SAMPLES` completed
        requests, as HAProxy's `total_time_average`: it freezes when traffic stops; None before
        the first completion."""
        if not self._recent:
            return None
        return self._recent_sum / len(self._recent)

    def pods(self) -> tuple[Pod, ...]:
        """Every replica not yet drained empty (Pending ones too), with its time integrals
        brought up to now."""
        found = []
        for replica in self._live:
            replica.touch(self.now)
            found.append(Pod(replica.index, not replica.draining and replica.ready_at <= self.now,
                             replica.draining, replica.busy, replica.waiting, replica.busy_area,
                             replica.inflight_area, replica.flavor, not replica.placed, replica.requests))
        return tuple(found)

    def pending_pods(self) -> int:
        """The service's pods waiting for a node slot (placeholders not counted)."""
        return len(self._cluster.pending) if self._cluster else 0

    def pending_placeholders(self) -> int:
        return self._cluster.placeholders_pending if self._cluster else 0

    def running_placeholders(self) -> int:
        """Headroom placeholders holding a node slot (a replica may preempt each)."""
        return self._cluster.placeholders_running if self._cluster else 0

    def node_count(self) -> int:
        """Nodes up (0 without `nodes`); the ones still provisioning are not counted."""
        return self._cluster.up if self._cluster else 0

    def node_seconds(self) -> float:
        """The time integral of nodes up or provisioning: what a cloud bills, since it bills a
        machine from its launch, before it joins the cluster."""
        if self._cluster is None:
            return 0.0
        self._cluster.touch(self.now)
        return self._cluster.node_area

    # --- replicas and node slots ------------------------------------------------------------

    def _add_replica(self, ready_after: float) -> None:
        chosen = self._mix.to_add(self._live)
        flavor = self.flavors[chosen]
        replica = Replica(index=len(self.replicas), ready_at=self.now + ready_after,
                          concurrency=flavor.concurrency or self.service.concurrency, speed=flavor.speed,
                          weight=flavor.weight, flavor=chosen, touched=self.now)
        self.replicas.append(replica)
        self._live.append(replica)
        if self._cluster is not None:
            self._cluster.admit(replica)

    def _retire(self, replica: Replica) -> None:
        """A draining replica holding nothing more: it leaves, and its node slot is free."""
        self._live.remove(replica)
        if self._cluster is not None:
            self._cluster.release(replica)
            self._schedule()

    def _schedule(self) -> None:
        """Start the pods given a slot, and ask for the nodes the ones still Pending need."""
        if self._cluster is None:
            return
        for replica in self._cluster.fill():
            replica.ready_at = self.now + self.service.startup
            self._next_ready_at = min(self._next_ready_at, replica.ready_at)
        more = self._cluster.nodes_short()
        if more:
            self._cluster.order(more, self.now)
            self._push(self.now + self._cluster.spec.provision_seconds, _NODES_READY, more)

    def _nodes_ready(self, count: int) -> None:
        assert self._cluster is not None
        self._cluster.join(count, self.now)
        self._schedule()

    # --- events -----------------------------------------------------------------------------

    def _ready_set(self) -> list[Replica]:
        if self._ready_stale or self.now >= self._next_ready_at:
            now = self.now
            self._ready = [r for r in self._live if not r.draining and r.ready_at <= now]
            self._next_ready_at = min((r.ready_at for r in self._live if not r.draining and r.ready_at > now),
                                      default=math.inf)
            self._ready_stale = False
        return self._ready

    def _arrival(self, session: int) -> None:
        request = self._next_id
        self._next_id += 1
        self.outcome.arrived += 1
        work = max(0.0, float(self.service.service_time(self._work)))  # drawn even if refused
        if self.sticky and session >= 0:
            replica, rebalanced = self._balancer.follow(session, self._ready_set)
            if rebalanced:
                self.outcome.rebalanced += 1
        else:
            replica = self._balancer.pick(self._ready_set())
        if replica is None:
            self.outcome.refused += 1
            return
        replica.requests += 1
        replica.touch(self.now)
        if replica.busy < replica.concurrency:
            self._start(replica, request, self.now, work)
        elif replica.waiting < self.service.queue_limit:
            replica.queue.append((request, self.now, work))
            replica.waiting += 1
            self._waiting[request] = replica
            self._push(self.now + self.service.timeout, _DEADLINE, request)
        else:
            self.outcome.refused += 1

    def _start(self, replica: Replica, request: int, arrived: float, work: float) -> None:
        replica.busy += 1
        self._in_service[request] = (replica, arrived)
        self._push(self.now + work / replica.speed, _DONE, request)

    def _done(self, request: int) -> None:
        replica, arrived = self._in_service.pop(request)
        latency = self.now - arrived
        if latency > self.service.timeout:
            self.outcome.timeouts += 1
        else:
            self.outcome.latencies.append(latency)
        self.completed += 1
        if len(self._recent) == RECENT_SAMPLES:
            self._recent_sum -= self._recent[0]
        self._recent.append(latency)
        self._recent_sum += latency
        replica.touch(self.now)
        replica.busy -= 1
        while replica.queue:
            queued, at, work = replica.queue.popleft()
            if self._waiting.pop(queued, None) is None:
                continue  # given up at its deadline
            replica.waiting -= 1
            self.outcome.waited += 1
            self._start(replica, queued, at, work)
            break
        if replica.draining and replica.busy == 0 and replica.waiting == 0:
            self._retire(replica)

    def _deadline(self, request: int) -> None:
        replica = self._waiting.pop(request, None)
        if replica is None:
            return  # started in time (its own completion decides), or long gone
        self.outcome.timeouts += 1
        replica.touch(self.now)
        replica.waiting -= 1  # its place is free now; its entry is skipped when reached
        if replica.draining and replica.busy == 0 and replica.waiting == 0:
            self._retire(replica)


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
