"""Replicas, a balancer, clients and the nodes under them, as discrete events.

Each replica has `concurrency` workers and a FIFO wait queue of at most `queue_limit` requests;
a request arriving at a full queue is refused. A client waits at most `timeout` seconds for its
answer: a request still queued at its deadline is given up (a timeout, and it frees its queue
place), one in service past its deadline is a timeout too but keeps its worker until done (the
server does not know the client left). A replica added takes traffic only after its start-up
delay; a replica removed stops taking traffic at once and finishes what it holds.

Replicas may come in flavors (the seed's "Ratio" case: servers of different specs) that differ
in speed, concurrency and balancer weight. With sticky sessions a session's requests follow the
replica that took its last one until that replica drains, as a balancer's affinity cookie
does. With `Nodes`, a replica needs a pod slot on a node: without one it is Pending until the
cluster autoscaler's new node is up, unless it can preempt a headroom placeholder.

Events are kept in a heap of (time, sequence, kind, payload): the sequence breaks ties in the
order events were made, so a run is a function of its inputs and its seed alone. Pure: no I/O,
no clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from spillway.sim.distributions import ServiceTime, exponential

__all__ = ["ALGORITHMS", "RECENT_SAMPLES", "Flavor", "Nodes", "Outcome", "Pod", "Service", "ServiceTime",
           "Simulation", "exponential", "poisson_arrivals"]

ALGORITHMS = ("RoundRobin", "Random", "LeastConnection", "WeightedRatio")


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


@dataclass(frozen=True)
class Flavor:
    """One kind of replica: `share` of the replicas are of it, each serving a request in its
    service time divided by `speed`, with `concurrency` workers (the service's when None), and
    taking `weight` parts of the traffic under WeightedRatio."""

    share: float = 1.0
    speed: float = 1.0
    weight: int = 1
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if not self.share > 0 or math.isinf(self.share):
            raise ValueError(f"share must be a positive finite number, not {self.share!r}")
        if not self.speed > 0 or math.isinf(self.speed):
            raise ValueError(f"speed must be a positive finite factor, not {self.speed!r}")
        if self.weight < 1:
            raise ValueError(f"weight must be at least 1, not {self.weight!r}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency!r}")


@dataclass(frozen=True)
class Nodes:
    """The cluster under the replicas: `nodes` nodes of `pods_per_node` pod slots at the start;
    the cluster autoscaler adds nodes for Pending pods, each ready `provision_seconds` after it
    is asked for. `headroom_pods` low-priority placeholders hold slots that a replica takes at
    once by preempting one (the placeholder then goes Pending and brings a node of its own).
    Every pod, of any flavor, takes one slot. Nodes are never removed: the cluster autoscaler's
    scale-down of idle nodes is not modelled, so node-seconds are an upper bound after a peak."""

    pods_per_node: int
    nodes: int
    provision_seconds: float
    headroom_pods: int = 0

    def __post_init__(self) -> None:
        if self.pods_per_node < 1:
            raise ValueError(f"pods_per_node must be at least 1, not {self.pods_per_node!r}")
        if self.nodes < 0 or self.headroom_pods < 0:
            raise ValueError(f"nodes and headroom_pods must be 0 or more, not {self.nodes!r} and "
                             f"{self.headroom_pods!r}")
        if not self.provision_seconds >= 0 or math.isinf(self.provision_seconds):
            raise ValueError(f"provision_seconds must be a finite number of seconds, 0 or more, "
                             f"not {self.provision_seconds!r}")


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
class _Replica:
    index: int
    ready_at: float  # infinite while Pending (no node slot yet)
    concurrency: int
    speed: float = 1.0
    weight: int = 1
    flavor: int = 0
    busy: int = 0
    waiting: int = 0  # requests queued and not given up
    # (request id, arrival time); entries of requests given up stay until reached, and are skipped
    queue: deque[tuple[int, float]] = field(default_factory=deque)
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


# HAProxy's TIME_STATS_SAMPLES: its time averages span the last 1024 requests.
RECENT_SAMPLES = 1024


class _Cluster:
    """Pod slots on nodes, kept as the scheduler and the cluster autoscaler keep them: a pod runs
    only on a slot; the service's pods come before the headroom placeholders, whose priority is
    lower, so a replica preempts a placeholder rather than wait; nodes are asked for when pods
    are Pending and no node on its way has room for them. Nodes are never removed."""

    def __init__(self, spec: Nodes) -> None:
        self.spec = spec
        self.up = spec.nodes
        self.ordered = 0  # asked of the cloud, not up yet
        self.free = spec.nodes * spec.pods_per_node
        self.placeholders_running = 0
        self.placeholders_pending = spec.headroom_pods
        self.pending: deque[_Replica] = deque()  # the service's pods waiting for a slot, in the order made
        self.node_area = 0.0  # node-seconds, nodes provisioning included
        self.touched = 0.0

    def admit(self, replica: _Replica) -> None:
        """A new replica: a free slot, else a placeholder's (evicted at once), else Pending."""
        if self.free > 0:
            self.free -= 1
        elif self.placeholders_running > 0:
            self.placeholders_running -= 1
            self.placeholders_pending += 1
        else:
            replica.placed, replica.ready_at = False, math.inf
            self.pending.append(replica)

    def release(self, replica: _Replica) -> None:
        if replica.placed:
            self.free += 1
        else:
            self.pending.remove(replica)

    def fill(self) -> list[_Replica]:
        """Give free slots to the Pending, the service's pods first; the replicas placed."""
        placed = []
        while self.free > 0 and self.pending:
            replica = self.pending.popleft()
            replica.placed = True
            self.free -= 1
            placed.append(replica)
        placeholders = min(self.free, self.placeholders_pending)
        self.free -= placeholders
        self.placeholders_pending -= placeholders
        self.placeholders_running += placeholders
        return placed

    def nodes_short(self) -> int:
        """How many more nodes the Pending pods need beyond those already on their way."""
        short = len(self.pending) + self.placeholders_pending - self.ordered * self.spec.pods_per_node
        return max(0, math.ceil(short / self.spec.pods_per_node))

    def order(self, count: int, now: float) -> None:
        self.touch(now)
        self.ordered += count

    def join(self, count: int, now: float) -> None:
        self.touch(now)
        self.ordered -= count
        self.up += count
        self.free += count * self.spec.pods_per_node

    def touch(self, now: float) -> None:
        self.node_area += (self.up + self.ordered) * (now - self.touched)
        self.touched = now


_ARRIVAL, _DONE, _DEADLINE, _NODES_READY = 0, 1, 2, 3


class Simulation:
    def __init__(self, service: Service, replicas: int, algorithm: str = "RoundRobin", seed: int = 0, *,
                 flavors: tuple[Flavor, ...] = (Flavor(),), sticky: bool = False, nodes: Nodes | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
        if replicas < 1:
            raise ValueError("a simulation starts with at least one replica")
        if not flavors:
            raise ValueError("flavors must name at least one flavor, not none")
        self.service, self.algorithm, self.flavors, self.sticky, self.nodes = (
            service, algorithm, flavors, sticky, nodes)
        self.rng = random.Random(seed)
        self.now = 0.0
        self.replicas: list[_Replica] = []  # every replica ever made; a Pod's index points here
        self.outcome = Outcome()
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        self._next_id = 0
        self._turn = 0
        self._waiting: dict[int, _Replica] = {}  # queued request id -> its replica
        self._in_service: dict[int, tuple[_Replica, float]] = {}  # request id -> (replica, arrival time)
        self.completed = 0  # requests whose service ended, in time or late (a counter, as a scrape reads it)
        self._recent: deque[float] = deque(maxlen=RECENT_SAMPLES)  # total times of the last completions
        self._recent_sum = 0.0
        self._affinity: dict[int, _Replica] = {}  # session id -> the replica its cookie names
        # Replicas not yet drained empty, in the order made: all the per-request paths and the
        # metrics read only these, so a long run's scale-downs cost nothing later.
        self._live: list[_Replica] = []
        # The balancer's ready set, rebuilt only when it may have changed: after a scale, or
        # once the clock passes the earliest start-up still to come.
        self._ready: list[_Replica] = []
        self._ready_stale = True
        self._next_ready_at = math.inf
        self._total_share = sum(f.share for f in flavors)
        self._cluster = _Cluster(nodes) if nodes else None
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
        never the last: the flavor furthest over its share loses its least advanced replica
        first (a Pending one, then one still starting, then the newest), as a ReplicaSet picks
        pods to delete."""
        active = [r for r in self._live if not r.draining]
        for _ in range(count - len(active)):
            self._add_replica(ready_after=self.service.startup)
        for _ in range(len(active) - max(count, 1)):
            victim = self._next_to_drain(active)
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
        counts = [0] * len(self.flavors)
        for r in self._live:
            if not r.draining:
                counts[r.flavor] += 1
        total = sum(counts) + 1
        # The flavor furthest below its share once this one exists; the first on a tie.
        chosen = max(range(len(self.flavors)),
                     key=lambda f: (self.flavors[f].share / self._total_share * total - counts[f], -f))
        flavor = self.flavors[chosen]
        replica = _Replica(index=len(self.replicas), ready_at=self.now + ready_after,
                           concurrency=flavor.concurrency or self.service.concurrency, speed=flavor.speed,
                           weight=flavor.weight, flavor=chosen, touched=self.now)
        self.replicas.append(replica)
        self._live.append(replica)
        if self._cluster is not None:
            self._cluster.admit(replica)

    def _next_to_drain(self, active: list[_Replica]) -> _Replica:
        counts = [0] * len(self.flavors)
        for r in active:
            counts[r.flavor] += 1
        remaining = len(active) - 1

        def least_advanced(flavor: int) -> _Replica:
            return max((r for r in active if r.flavor == flavor), key=lambda r: (r.ready_at, r.index))

        def excess(flavor: int) -> tuple[float, float, int]:
            candidate = least_advanced(flavor)
            over = counts[flavor] - self.flavors[flavor].share / self._total_share * remaining
            return over, candidate.ready_at, candidate.index

        return least_advanced(max((f for f in range(len(self.flavors)) if counts[f]), key=excess))

    def _retire(self, replica: _Replica) -> None:
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

    def _ready_set(self) -> list[_Replica]:
        if self._ready_stale or self.now >= self._next_ready_at:
            now = self.now
            self._ready = [r for r in self._live if not r.draining and r.ready_at <= now]
            self._next_ready_at = min((r.ready_at for r in self._live if not r.draining and r.ready_at > now),
                                      default=math.inf)
            self._ready_stale = False
        return self._ready

    def _pick(self) -> _Replica | None:
        ready = self._ready_set()
        if not ready:
            return None
        algorithm = self.algorithm
        if algorithm == "RoundRobin":
            self._turn += 1
            return ready[self._turn % len(ready)]
        if algorithm == "LeastConnection":
            # The first (oldest) of the least loaded, as `min` keeps the first of equals.
            best, least = ready[0], ready[0].busy + ready[0].waiting
            for replica in ready:
                load = replica.busy + replica.waiting
                if load < least:
                    best, least = replica, load
            return best
        if algorithm == "Random":
            return self.rng.choice(ready)
        # Smooth weighted round robin, as nginx's: each turn every replica gains its weight, the
        # highest score is picked and pays back the total, so weights 3:1 go a,a,b,a not a,a,a,b.
        total, best = 0, ready[0]
        for replica in ready:
            replica.current_weight += replica.weight
            total += replica.weight
            if replica.current_weight > best.current_weight:
                best = replica
        best.current_weight -= total
        return best

    def _arrival(self, session: int) -> None:
        request = self._next_id
        self._next_id += 1
        self.outcome.arrived += 1
        home = self._affinity.get(session) if self.sticky and session >= 0 else None
        # A replica once ready stays ready until it drains, so not draining is enough here.
        if home is not None and not home.draining:
            replica: _Replica | None = home
        else:
            replica = self._pick()
            if replica is not None and self.sticky and session >= 0:
                if home is not None:
                    self.outcome.rebalanced += 1
                self._affinity[session] = replica
        if replica is None:
            self.outcome.refused += 1
            return
        replica.requests += 1
        replica.touch(self.now)
        if replica.busy < replica.concurrency:
            self._start(replica, request, self.now)
        elif replica.waiting < self.service.queue_limit:
            replica.queue.append((request, self.now))
            replica.waiting += 1
            self._waiting[request] = replica
            self._push(self.now + self.service.timeout, _DEADLINE, request)
        else:
            self.outcome.refused += 1

    def _start(self, replica: _Replica, request: int, arrived: float) -> None:
        replica.busy += 1
        self._in_service[request] = (replica, arrived)
        duration = max(0.0, float(self.service.service_time(self.rng))) / replica.speed
        self._push(self.now + duration, _DONE, request)

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
            queued, at = replica.queue.popleft()
            if self._waiting.pop(queued, None) is None:
                continue  # given up at its deadline
            replica.waiting -= 1
            self.outcome.waited += 1
            self._start(replica, queued, at)
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
