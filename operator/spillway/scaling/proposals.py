"""Signals, and the replica count each signal proposes. Pure: no I/O.

Service time S, which the latency model needs, is estimated from Little's law on the busy
workers: in-flight requests = λ · S, so S = in_flight / λ. It is a mean over every request in
the window, so one slow outlier cannot swing it, and it does not include waiting, which the
model adds itself. Without in-flight data, the observed latency at quantile q stands in: for an
exponential service time the q-quantile is −ln(1 − q)·S, so S ≈ latency / −ln(1 − q); it
includes any waiting, so it errs on the side of more replicas. Either way S is clamped to
[1 ms, capacity.timeout].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.queueing import replicas_for_latency

MIN_SERVICE_SECONDS = 0.001


@dataclass(frozen=True)
class Signals:
    """One interval's readings; None means no value. `missing` names the signals that were
    configured but could not be read (as opposed to not configured at all)."""

    queue_depth: float | None = None
    in_flight: float | None = None
    arrival_rate: float | None = None
    latency_seconds: float | None = None
    missing: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ReplicaCapacity:
    concurrency: int
    queue_limit: int


def replica_capacity(spec: ScalableServiceSpec) -> ReplicaCapacity:
    """What an average replica holds. With pools, replicas are split by weight, so it is the
    weight-weighted mean of each pool's capacity (its override, else `capacity`), rounded down
    so that a fraction never buys a replica too few."""
    if not spec.pools:
        return ReplicaCapacity(spec.capacity.concurrency, spec.capacity.queue_limit)
    weight = sum(p.weight for p in spec.pools)
    concurrency = sum(p.weight * (spec.capacity.concurrency if p.capacity.concurrency is None
                                  else p.capacity.concurrency) for p in spec.pools)
    queue_limit = sum(p.weight * (spec.capacity.queue_limit if p.capacity.queue_limit is None
                                  else p.capacity.queue_limit) for p in spec.pools)
    return ReplicaCapacity(max(1, concurrency // weight), queue_limit // weight)


@dataclass(frozen=True)
class Proposal:
    signal: str
    replicas: int
    reason: str


def service_seconds(spec: ScalableServiceSpec, signals: Signals) -> float | None:
    timeout = spec.capacity.timeout.total_seconds()
    estimate: float | None = None
    if signals.in_flight is not None and signals.arrival_rate:
        estimate = signals.in_flight / signals.arrival_rate
    elif signals.latency_seconds is not None and spec.scaling.targets.latency is not None:
        estimate = signals.latency_seconds / -math.log(1 - spec.scaling.targets.latency.quantile)
    if estimate is None:
        return None
    return min(max(estimate, MIN_SERVICE_SECONDS), timeout)


def propose(spec: ScalableServiceSpec, signals: Signals) -> list[Proposal]:
    """Every proposal the available signals allow."""
    targets = spec.scaling.targets
    concurrency = replica_capacity(spec).concurrency
    proposals = []
    if signals.queue_depth is not None:
        n = math.ceil(signals.queue_depth / targets.queue_per_replica)
        proposals.append(Proposal("queue", n, f"queue {signals.queue_depth:g} over "
                                              f"{targets.queue_per_replica:g} per replica -> {n}"))
    if signals.in_flight is not None:
        n = math.ceil(signals.in_flight / (concurrency * targets.utilization))
        proposals.append(Proposal("utilization", n, f"{signals.in_flight:g} in flight over {concurrency} x "
                                                    f"{targets.utilization:g} per replica -> {n}"))
    latency = _latency_proposal(spec, signals, concurrency)
    if latency is not None:
        proposals.append(latency)
    return proposals


def _latency_proposal(spec: ScalableServiceSpec, signals: Signals, concurrency: int) -> Proposal | None:
    target = spec.scaling.targets.latency
    if target is None or signals.arrival_rate is None:
        return None
    service = service_seconds(spec, signals)
    if service is None:
        return None
    objective = target.objective.total_seconds()
    most = spec.replicas.max
    n = replicas_for_latency(signals.arrival_rate, service, concurrency, objective,
                             target.quantile, most)
    what = (f"latency model: {signals.arrival_rate:.4g} req/s at {service * 1000:.0f}ms each, "
            f"p{target.quantile * 100:g} under {objective * 1000:g}ms")
    if n is None:
        why = "the objective is below the service time" if objective <= service else f"not even {most} replicas do"
        return Proposal("latency", most + 1, f"{what}: {why}")
    return Proposal("latency", n, f"{what} -> {n}")


def panic_threshold(spec: ScalableServiceSpec, signals: Signals, current: int) -> float:
    """Waiting requests the current replicas can still serve within capacity.timeout; a queue
    beyond this times out however fast the step limits let Spillway add replicas."""
    service = service_seconds(spec, signals)
    timeout = spec.capacity.timeout.total_seconds()
    capacity = replica_capacity(spec)
    if service is None:
        return float(current * capacity.queue_limit)  # beyond what the replicas accept
    return current * capacity.concurrency * timeout / service
