"""Signals, and the replica count each signal proposes. Pure: no I/O.

A signal value that is NaN, infinite or negative is no reading at all: `normalized` turns it
into a missing signal before any arithmetic, so it can never lower the count nor crash a ceil.

Service time S, which the latency model needs, is estimated from Little's law on the busy
workers: in-flight requests = λ · S, so S = in_flight / λ. It is a mean over every request in
the window, so one slow outlier cannot swing it, and it does not include waiting, which the
model adds itself. Without in-flight data, the observed latency stands in: a quantile q of an
exponential service time is −ln(1 − q)·S, so S ≈ latency / −ln(1 − q); a mean response time is
S plus the mean wait, so S ≈ latency. Both include any waiting, so they err on the side of more
replicas. Either way S is clamped to [1 ms, capacity.timeout]. With fewer than
`MIN_REQUESTS` requests in the rate's window the estimate is not trusted at all (see below), and
the latency model proposes nothing.

Each proposal also carries its usage ratio at the current count (usage / (target · current)),
on which the HPA's tolerance is judged (behavior.tolerate). The latency model has no metric
ratio; proposed / current stands in for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.queueing import replicas_for_latency

MIN_SERVICE_SECONDS = 0.001
# Below this many requests in the rate's window a mean service time is noise: for exponential
# times its relative standard error is 1/sqrt(n), already 22% at 20 requests.
MIN_REQUESTS = 20
_MOST = 10**9  # a proposal beyond any replicas.max (10000); keeps ceil() of a huge ratio finite

# Signals field -> the signal's name as the loop reports it (status, conditions, `missing`).
SIGNAL_NAMES = {"queue_depth": "queue_depth", "in_flight": "in_flight", "arrival_rate": "arrival_rate",
                "latency_seconds": "latency"}


@dataclass(frozen=True)
class Signals:
    """One interval's readings; None means no value. `missing` names the signals that were
    configured but could not be read (as opposed to not configured at all).
    `rate_window_seconds` is the window the arrival rate was averaged over (`rate(...[1m])`: 60),
    which says how many requests the service-time estimate rests on. `latency_kind` says whether
    the latency is a quantile (at targets.latency.quantile) or a mean (HAProxy reports means),
    which decides how a service time is estimated from it when no in-flight count is read."""

    queue_depth: float | None = None
    in_flight: float | None = None
    arrival_rate: float | None = None
    latency_seconds: float | None = None
    missing: frozenset[str] = field(default_factory=frozenset)
    rate_window_seconds: float = 60.0
    latency_kind: Literal["quantile", "mean"] = "quantile"


def _readable(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                             and math.isfinite(value) and value >= 0)


def normalized(signals: Signals) -> Signals:
    """NaN, ±inf and negative values become missing signals; a nonsensical rate window, 60 s."""
    bad = [name for name in SIGNAL_NAMES if not _readable(getattr(signals, name))]
    window = signals.rate_window_seconds
    if not (isinstance(window, int | float) and math.isfinite(window) and window > 0):
        window = 60.0
    if not bad and window == signals.rate_window_seconds:
        return signals
    def kept(name: str) -> float | None:
        value: float | None = getattr(signals, name)
        return None if name in bad else value

    return replace(signals, queue_depth=kept("queue_depth"), in_flight=kept("in_flight"),
                   arrival_rate=kept("arrival_rate"), latency_seconds=kept("latency_seconds"),
                   missing=signals.missing | {SIGNAL_NAMES[name] for name in bad}, rate_window_seconds=window)


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
    ratio: float | None = None  # usage / (target · current); None without replicas
    held_by_tolerance: bool = False  # the tolerance replaced its own count by the current one


@dataclass(frozen=True)
class Proposed:
    """Every proposal the signals allow; why the latency model made none, when it could not."""

    proposals: tuple[Proposal, ...]
    objective_unreachable: str | None = None
    abstained: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceTime:
    seconds: float
    source: str  # how it was estimated, for messages


def displayed(value: float) -> float:
    """A reading as status and reasons show it: three significant digits, so that noise below
    that precision changes no word Spillway writes (and so causes no write)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 2 - int(math.floor(math.log10(abs(value)))))


def _negligible(signals: Signals) -> bool:
    return signals.arrival_rate is not None and signals.arrival_rate * signals.rate_window_seconds < MIN_REQUESTS


def without_idle_latency(signals: Signals) -> Signals:
    """A latency that is missing while the arrival rate reads (almost) nothing is not missing
    data: an idle service has no response time to measure (HAProxy's average goes stale, a
    histogram quantile is NaN). It must not hold an idle service above its need forever."""
    if "latency" in signals.missing and _negligible(signals):
        return replace(signals, missing=signals.missing - {"latency"})
    return signals


def service_time(spec: ScalableServiceSpec, signals: Signals) -> ServiceTime | None:
    if _negligible(signals):
        return None
    latency = spec.scaling.targets.latency
    if signals.in_flight is not None and signals.arrival_rate:
        estimate = signals.in_flight / signals.arrival_rate
        source = f"{displayed(signals.in_flight):g} in flight / {displayed(signals.arrival_rate):g} req/s"
        admitted = _admitted_service_time(signals)
        if admitted is not None and admitted.seconds > estimate:
            estimate, source = admitted.seconds, admitted.source
    elif signals.latency_seconds is not None and signals.latency_kind == "mean":
        estimate, source = signals.latency_seconds, f"mean latency {displayed(signals.latency_seconds * 1000):g}ms"
    elif signals.latency_seconds is not None and latency is not None:
        estimate = signals.latency_seconds / -math.log(1 - latency.quantile)
        source = f"p{latency.quantile * 100:g} latency {displayed(signals.latency_seconds * 1000):g}ms"
    else:
        return None
    timeout = spec.capacity.timeout.total_seconds()
    capped = f"{source}, capped at capacity.timeout" if estimate > timeout else source
    return ServiceTime(min(max(estimate, MIN_SERVICE_SECONDS), timeout), capped)


def _admitted_service_time(signals: Signals) -> ServiceTime | None:
    """S from the admitted requests alone, for when some are refused. The arrival rate counts every
    request offered (HAProxy's http_requests_total counts the 503s of full queues too) while
    in_flight counts only those a worker took, so once queues fill and requests are refused,
    in_flight / rate falls short of S by the share refused. Little's law on the admitted requests
    needs no rate: in service / (in service + queued) = S / (S + W), and a mean total time (HAProxy's
    total_time_average) is S + W, so S = mean total time x in_flight / (in_flight + queue).
    Nothing is refused while the queue is empty: then there is nothing to correct."""
    mean, queue, busy = signals.latency_seconds, signals.queue_depth, signals.in_flight
    if signals.latency_kind != "mean" or mean is None or not queue or not busy:
        return None
    return ServiceTime(mean * busy / (busy + queue),
                       f"mean latency {displayed(mean * 1000):g}ms x {displayed(busy):g} in service / "
                       f"{displayed(busy + queue):g} in service or queued")


def service_seconds(spec: ScalableServiceSpec, signals: Signals) -> float | None:
    found = service_time(spec, signals)
    return None if found is None else found.seconds


def propose(spec: ScalableServiceSpec, signals: Signals, current: int) -> Proposed:
    """Every proposal the available signals allow, each with its ratio at `current`."""
    targets = spec.scaling.targets
    concurrency = replica_capacity(spec).concurrency
    proposals = []
    if signals.queue_depth is not None:
        n = _ceil(signals.queue_depth / targets.queue_per_replica)
        proposals.append(Proposal("queue", n, f"queue {displayed(signals.queue_depth):g} over {targets.queue_per_replica:g} "
                                              f"per replica -> {n}",
                                  _ratio(signals.queue_depth, targets.queue_per_replica, current)))
    if signals.in_flight is not None:
        per_replica = concurrency * targets.utilization
        n = _ceil(signals.in_flight / per_replica)
        proposals.append(Proposal("utilization", n, f"{displayed(signals.in_flight):g} in flight over {concurrency} x "
                                                    f"{targets.utilization:g} per replica -> {n}",
                                  _ratio(signals.in_flight, per_replica, current)))
    latency = _latency(spec, signals, concurrency, current)
    return replace(latency, proposals=(*proposals, *latency.proposals))


def _ceil(replicas: float) -> int:
    return math.ceil(replicas) if replicas < _MOST else _MOST


def _ratio(usage: float, per_replica: float, current: int) -> float | None:
    # replica_calculator.go, GetExternalPerPodMetricReplicas: usage / (target per pod · replicas)
    return usage / (per_replica * current) if current > 0 else None


def _latency(spec: ScalableServiceSpec, signals: Signals, concurrency: int, current: int) -> Proposed:
    """The latency model's proposal; none when adding replicas cannot help (the objective is at or
    below the service time, which only the code can shorten) or when traffic is too thin to
    estimate a service time.

    The count is sized for the objective at its quantile, as `targets.latency` states it, whatever
    the latency signal is: a mean (HAProxy's) only changes how the service time is estimated
    when no in-flight count gives it. Sizing for a mean response under the objective instead let
    a p99 objective be missed by design (bench/autoscalers.md: the simulator found it)."""
    target = spec.scaling.targets.latency
    rate = signals.arrival_rate
    if target is None or rate is None:
        return Proposed(())
    if _negligible(signals):
        requests = rate * signals.rate_window_seconds
        return Proposed((), abstained=(f"latency model: {displayed(rate):g} req/s is {displayed(requests):g} requests per "
                                       f"{signals.rate_window_seconds:g}s window, too few (under {MIN_REQUESTS}) "
                                       f"to estimate a service time",))
    service = service_time(spec, signals)
    if service is None:
        return Proposed(())
    objective = target.objective.total_seconds()
    if objective <= service.seconds:
        unreachable = (f"latency objective {objective * 1000:g}ms is at or below the service time "
                       f"{displayed(service.seconds * 1000):g}ms ({service.source}): more replicas cannot shorten it, "
                       f"so the latency model proposes nothing")
        return Proposed((), objective_unreachable=unreachable, abstained=(unreachable,))
    most = spec.replicas.max
    n = replicas_for_latency(rate, service.seconds, concurrency, objective, target.quantile, most)
    aim = f"p{target.quantile * 100:g} under {objective * 1000:g}ms"
    what = f"latency model: {displayed(rate):g} req/s at {displayed(service.seconds * 1000):g}ms each, {aim}"
    if n is None:  # more replicas would help, but max forbids them: ask for more than max
        n, what = most + 1, f"{what}: not even {most} replicas do"
    else:
        what = f"{what} -> {n}"
    return Proposed((Proposal("latency", n, what, n / current if current > 0 else None),))


def panic_threshold(spec: ScalableServiceSpec, signals: Signals, current: int) -> float:
    """The waiting requests beyond which step limits are skipped: what the current replicas can
    still serve within capacity.timeout (a queue beyond it times out however fast the step limits
    let Spillway add replicas), or half of what their queues hold, whichever is less. The second
    matters because a queue can never read more than current × queueLimit: past that requests
    are refused, not queued, so a service whose queues hold less than a timeout's work would
    never panic however overloaded (the simulator found a burst refused for its whole length)."""
    capacity = replica_capacity(spec)
    filling = current * capacity.queue_limit / 2
    service = service_seconds(spec, signals)
    if service is None:
        return float(filling)
    timeout = spec.capacity.timeout.total_seconds()
    return min(filling, current * capacity.concurrency * timeout / service)
