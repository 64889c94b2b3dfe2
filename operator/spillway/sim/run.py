"""One simulated run: a trace offered to replicas behind a balancer, an autoscaler deciding from
its metrics pipeline, and what the users got. Pure and deterministic under the scenario's seed.

Time advances one simulated second at a time: that second's Poisson arrivals (thinned from the
trace's highest rate within the second) are handed to the simulation, it runs to the second's
end, the pipelines collect, and on each of the policy's ticks the policy decides from them and
the count moves (new pods take traffic after their start-up delay; removed ones drain). After
the trace ends no request arrives and the run goes on until every request is decided.

What a run is judged on: SLO attainment, the share of arrived requests answered within the
objective (a timed-out or refused one never is); latency quantiles of the answered ones; and
replica-seconds, the integral of pods placed on a node (starting and draining ones cost too;
a Pending one does not); with `nodes`, node-seconds too, what the cloud bills, and what was
missed while replicas waited for a node: the seconds in which at least one of the service's
replicas was Pending for want of a slot, and the requests that missed the objective (timed out,
refused, or answered late) within those seconds.

Left at their defaults, the scenario's flavors, stickiness, sessions and nodes change nothing:
no random number is drawn for them, so a run is the very run it was before they existed. With
`sessions`, each arrival's session is drawn by the arrival generator right after that second's
arrival times, so a sticky run and a non-sticky one of the same seed and sessions see the same
traffic.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from spillway.sim.model import Flavor, Nodes, Service, Simulation, poisson_arrivals
from spillway.sim.pipeline import Pipelines
from spillway.sim.policy import Policy
from spillway.sim.traces import Trace

Progress = Callable[[float, float], None]


@dataclass(frozen=True)
class Scenario:
    trace: Trace
    service: Service
    objective_seconds: float
    min_replicas: int = 1
    max_replicas: int = 100
    initial_replicas: int | None = None  # None: min_replicas
    algorithm: str = "LeastConnection"
    scrape_interval: float = 15.0
    miss_share: float = 0.0
    seed: int = 0
    sample_seconds: float = 5.0
    flavors: tuple[Flavor, ...] = (Flavor(),)  # kinds of replica, kept near their shares
    sticky: bool = False  # a session's requests follow the replica that took its first one
    sessions: int = 0  # users; when > 0 every arrival carries one, drawn uniformly
    nodes: Nodes | None = None  # None: every replica finds a node at once

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError("replicas must satisfy 1 <= min <= max")
        if not self.objective_seconds > 0 or math.isinf(self.objective_seconds):
            raise ValueError(f"the objective must be a positive number of seconds, not {self.objective_seconds!r}")
        if not self.sample_seconds >= 1:
            raise ValueError("the timeline's sample must be at least 1 s")
        if not self.flavors:
            raise ValueError("flavors must name at least one flavor, not none")
        if self.sessions < 0:
            raise ValueError(f"sessions must be 0 or more, not {self.sessions!r}")
        if self.sticky and not self.sessions:
            raise ValueError("a sticky run needs sessions > 0: without them no request has a replica to stick to")

    @property
    def initial(self) -> int:
        count = self.min_replicas if self.initial_replicas is None else self.initial_replicas
        return max(self.min_replicas, min(self.max_replicas, count))


@dataclass(frozen=True)
class Point:
    """One sample of the timeline (truth, not what a pipeline saw)."""

    time: float
    offered_rps: float
    replicas: int  # asked for
    ready: int
    queue: int
    p95_seconds: float | None  # of the requests answered within this sample
    errors: int  # timeouts and refusals within this sample
    answered: int
    pending: int = 0  # the service's replicas waiting for a node slot (with the scenario's nodes)
    nodes: int = 0  # nodes up (with the scenario's nodes)


@dataclass(frozen=True)
class ScaleEvent:
    time: float
    before: int
    after: int


@dataclass(frozen=True)
class Result:
    policy: str
    trace: str
    arrived: int
    answered: int
    within_objective: int
    timeouts: int
    refused: int
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None
    replica_seconds: float
    seconds: float  # simulated: the trace and the drain after it
    scale_events: tuple[ScaleEvent, ...]
    timeline: tuple[Point, ...] = field(repr=False)
    node_seconds: float = 0.0  # nodes up or provisioning, integrated; 0 without the scenario's nodes
    node_wait_seconds: float = 0.0  # seconds in which a replica of the service waited for a node slot
    missed_in_node_waits: int = 0  # requests that missed the objective within those seconds
    rebalanced: int = 0  # session requests sent off the replica that held their session (sticky runs)
    flavor_requests: tuple[int, ...] = ()  # requests the balancer sent to each flavor's replicas

    @property
    def slo_attainment(self) -> float:
        return self.within_objective / self.arrived if self.arrived else 1.0


def quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(scenario: Scenario, policy: Policy, progress: Progress | None = None) -> Result:
    trace, service = scenario.trace, scenario.service
    simulation = Simulation(service, scenario.initial, scenario.algorithm, scenario.seed,
                            flavors=scenario.flavors, sticky=scenario.sticky, nodes=scenario.nodes)
    # Where the scrapes, the samples and the decisions fall against the trace is chance: drawn
    # per seed, the same for every policy of a seed (the decision's offset within each policy's
    # own interval).
    phases = random.Random(f"{scenario.seed}:phases")
    pipelines = Pipelines(service.concurrency, scenario.scrape_interval, scenario.miss_share,
                          seed=scenario.seed + 2, first_scrape=phases.uniform(0, scenario.scrape_interval),
                          first_resolution=phases.uniform(0, 15.0))
    arrivals = random.Random(scenario.seed + 1)
    current = scenario.initial
    tick = max(1, round(policy.tick_seconds))
    decide_offset = math.floor(phases.random() * tick)
    sample = round(scenario.sample_seconds)
    end = math.ceil(trace.duration)
    last = end + math.ceil(service.timeout) + 1
    events: list[ScaleEvent] = []
    timeline: list[Point] = []
    replica_seconds = 0.0
    seen_latencies, seen_errors = 0, 0
    waits = _NodeWaits(scenario.objective_seconds)
    second = 0
    while second < last or simulation.in_flight():
        if second < end:
            peak = trace.peak_between(second, second + 1)
            times = poisson_arrivals(trace.rate, second, second + 1, peak, arrivals)
            if scenario.sessions:
                simulation.arrive_at(times, [arrivals.randrange(scenario.sessions) for _ in times])
            else:
                simulation.arrive_at(times)
        second += 1
        simulation.run_until(float(second))
        pipelines.collect(simulation)
        replica_seconds += sum(1 for pod in simulation.pods() if not pod.pending)  # a Pending pod runs nowhere
        if scenario.nodes is not None:
            waits.count(simulation)
        if second < end and second % tick == decide_offset:
            asked = policy.decide(pipelines, current)
            desired = max(scenario.min_replicas, min(scenario.max_replicas, int(asked)))
            if desired != current:
                events.append(ScaleEvent(float(second), current, desired))
                simulation.scale_to(desired)
                current = desired
        if second % sample == 0:
            outcome = simulation.outcome
            fresh = sorted(outcome.latencies[seen_latencies:])
            errors = outcome.timeouts + outcome.refused
            timeline.append(Point(float(second), trace.rate(second - 1), current, simulation.ready_replicas(),
                                  simulation.queued(), quantile(fresh, 0.95), errors - seen_errors, len(fresh),
                                  simulation.pending_pods(), simulation.node_count()))
            seen_latencies, seen_errors = len(outcome.latencies), errors
        if progress is not None and second % 60 == 0:
            progress(float(min(second, end)), float(end))
        if second > last + 10 * service.timeout:
            break  # a request still in service this long after the end is a timeout already counted
    if progress is not None:
        progress(float(end), float(end))  # the drain after the trace is not on the bar: it ends full
    outcome = simulation.outcome
    ordered = sorted(outcome.latencies)
    within = bisect.bisect_right(ordered, scenario.objective_seconds)
    return Result(policy=policy.name, trace=trace.name, arrived=outcome.arrived, answered=outcome.answered,
                  within_objective=within, timeouts=outcome.timeouts, refused=outcome.refused,
                  p50_seconds=quantile(ordered, 0.50), p95_seconds=quantile(ordered, 0.95),
                  p99_seconds=quantile(ordered, 0.99), replica_seconds=replica_seconds, seconds=float(second),
                  scale_events=tuple(events), timeline=tuple(timeline), node_seconds=simulation.node_seconds(),
                  node_wait_seconds=float(waits.seconds), missed_in_node_waits=waits.missed,
                  rebalanced=outcome.rebalanced, flavor_requests=_flavor_requests(simulation, len(scenario.flavors)))


class _NodeWaits:
    """The seconds in which a replica waited for a node, and the requests missed within them,
    counted once a simulated second; each answered latency is looked at once."""

    def __init__(self, objective_seconds: float) -> None:
        self.objective_seconds = objective_seconds
        self.looked = self.late = self.misses = 0
        self.seconds = self.missed = 0

    def count(self, simulation: Simulation) -> None:
        outcome = simulation.outcome
        latencies = outcome.latencies
        self.late += sum(1 for i in range(self.looked, len(latencies)) if latencies[i] > self.objective_seconds)
        self.looked = len(latencies)
        misses = outcome.timeouts + outcome.refused + self.late
        if simulation.pending_pods():
            self.seconds += 1
            self.missed += misses - self.misses
        self.misses = misses


def _flavor_requests(simulation: Simulation, flavors: int) -> tuple[int, ...]:
    counts = [0] * flavors
    for replica in simulation.replicas:
        counts[replica.flavor] += replica.requests
    return tuple(counts)
