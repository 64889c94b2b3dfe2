"""Scenarios from what a person states: a ScalableService (the replicas, capacity, objective,
balancer, pools and affinity it declares, with command-line values laid over it), the nodes
under it, a named trace shape scaled to a peak, a service time written as `kind:parameters`, and
the peers to compare against. Pure: files are read by the caller and passed in as text.

What a spec says that the simulator cannot model yet is returned as notes, never silently
dropped; what it cannot model at all (ConsistentHash) is refused with a ValueError.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from spillway.api import parse_spec
from spillway.api.spec import Headroom, ScalableServiceSpec
from spillway.api.units import format_duration
from spillway.resources.balancing.base import default_algorithm
from spillway.scaling.proposals import replica_capacity
from spillway.sim import distributions, traces
from spillway.sim.distributions import ServiceTime
from spillway.sim.model import Flavor, Nodes, Service
from spillway.sim.peers.hpa import HPA
from spillway.sim.peers.keda import KEDA, Trigger
from spillway.sim.peers.knative import Knative
from spillway.sim.peers.oracle import Oracle
from spillway.sim.policy import Foresight, Policy
from spillway.sim.run import Scenario
from spillway.sim.traces import Trace

SHAPES = ("step", "spike", "diurnal", "ramp", "on-off")
SERVICE_TIMES = ("exponential", "lognormal", "bimodal", "empirical")


def synthetic(shape: str, peak: float, duration: float) -> Trace:
    """A named shape over `duration` seconds whose highest rate is `peak` requests per second,
    with its features placed as shares of the duration so any length keeps the same story."""
    if not peak > 0 or math.isinf(peak):
        raise ValueError(f"the peak must be a positive number of requests per second, not {peak!r}")
    if not duration >= 10 or math.isinf(duration):
        raise ValueError(f"the duration must be at least 10 s of simulated time, not {duration!r}")
    shapes: dict[str, Callable[[], Trace]] = {
        "step": lambda: traces.step(peak / 4, peak, at=duration / 4, duration=duration),
        "spike": lambda: traces.spike(peak / 10, 10.0, at=duration / 5, rise=max(1.0, duration / 30),
                                      hold=duration / 5, duration=duration),
        "diurnal": lambda: traces.diurnal(peak / 5, peak, period=duration / 2, duration=duration),
        "ramp": lambda: traces.ramp(peak / 10, peak, duration),
        "on-off": lambda: traces.on_off(peak, on=max(1.0, duration / 30), off=max(1.0, duration / 15),
                                        duration=duration),
    }
    if shape not in shapes:
        raise ValueError(f"trace must be one of {', '.join(SHAPES)} or a .csv file, not {shape!r}")
    return shapes[shape]().scaled_to(peak)


def truncated(trace: Trace, duration: float) -> Trace:
    """The first `duration` seconds of a trace (the whole of it when shorter)."""
    if not duration > 0 or math.isinf(duration):
        raise ValueError(f"the duration must be a positive number of seconds, not {duration!r}")
    if duration >= trace.duration:
        return trace
    kept = [i for i, t in enumerate(trace.times) if t < duration]
    return Trace(trace.name, tuple(trace.times[i] for i in kept), tuple(trace.rates[i] for i in kept), duration)


def service_time(word: str, empirical_text: str | None = None) -> ServiceTime:
    """`exponential:MEAN`, `lognormal:MEAN,SIGMA`, `bimodal:FAST,SLOW,SLOW_SHARE` (seconds), a bare
    mean (exponential), or `empirical:PATH` with the CSV's text passed in as `empirical_text`."""
    kind, _, rest = word.partition(":")
    if not rest:
        kind, rest = "exponential", word
    if kind == "empirical":
        if empirical_text is None:
            raise ValueError("empirical service times need the CSV's text")
        return distributions.empirical(empirical_text)
    arity = {"exponential": 1, "lognormal": 2, "bimodal": 3}
    if kind not in arity:
        raise ValueError(f"service time must be one of {', '.join(SERVICE_TIMES)} (as kind:numbers), not {word!r}")
    try:
        numbers = [float(part) for part in rest.split(",")]
    except ValueError:
        raise ValueError(f"service time {word!r}: the parameters must be numbers of seconds") from None
    if len(numbers) != arity[kind]:
        raise ValueError(f"service time {word!r}: {kind} takes {arity[kind]} number(s), not {len(numbers)}")
    if kind == "exponential":
        return distributions.exponential(numbers[0])
    if kind == "lognormal":
        return distributions.lognormal(numbers[0], numbers[1])
    return distributions.bimodal(numbers[0], numbers[1], numbers[2])


def mean_seconds(service: ServiceTime) -> float:
    mean = getattr(service, "mean_seconds", None)
    if not isinstance(mean, float | int):
        raise ValueError("the service time states no mean_seconds")
    return float(mean)


CEILING_DRAWS = 20000


def service_ceiling(service: ServiceTime, objective_seconds: float, seed: int = 0) -> float:
    """The share of requests whose service alone (with no wait at all) fits in the objective,
    estimated from `CEILING_DRAWS` draws: no autoscaler can attain more."""
    rng = random.Random(seed)
    return sum(service(rng) <= objective_seconds for _ in range(CEILING_DRAWS)) / CEILING_DRAWS


def simulated_algorithm(spec: ScalableServiceSpec) -> str:
    """The model's balancer for the spec's algorithm (the provider's default when unset)."""
    algorithm = default_algorithm(spec)
    if algorithm == "ConsistentHash":
        raise ValueError("balancing.algorithm ConsistentHash is not simulated yet: the simulator has no request keys "
                         "to hash; try LeastConnection or RoundRobin for a first estimate")
    return "WeightedRatio" if algorithm == "Weighted" else algorithm


def pool_flavors(spec: ScalableServiceSpec, speeds: Mapping[str, float] | None = None) -> tuple[Flavor, ...]:
    """One flavor per pool, in the spec's order: its weight is both its share of the replicas
    (the operator splits them by weight) and its WeightedRatio weight; its workers are its
    concurrency override, else `capacity.concurrency`; its speed is `speeds[name]`, else 1.0,
    since a spec does not say how fast a pool's hardware is. The single default flavor without
    pools; a speed naming no pool is refused."""
    speeds = dict(speeds or {})
    names = [p.name for p in spec.pools]
    unknown = [name for name in speeds if name not in names]
    if unknown:
        have = f"its pools are {', '.join(names)}" if names else "it declares no pools"
        raise ValueError(f"--pool-speed names no pool of the spec: {unknown[0]!r}; {have}")
    if not spec.pools:
        return (Flavor(),)
    return tuple(Flavor(share=p.weight, weight=p.weight, speed=speeds.get(p.name, 1.0),
                        concurrency=p.capacity.concurrency if p.capacity.concurrency is not None
                        else spec.capacity.concurrency) for p in spec.pools)


def stated_nodes(capacity: tuple[int, int, float] | None, headroom: Headroom | None,
                 declared: Headroom | None = None) -> Nodes | None:
    """The cluster from `--nodes PODS_PER_NODE,COUNT,PROVISION_SECONDS` and `--headroom` (else the
    file's spec.headroom, `declared`)."""
    if capacity is None:
        if headroom is not None:
            raise ValueError("--headroom needs --nodes: placeholders hold slots on simulated nodes")
        return None
    pods_per_node, count, provision_seconds = capacity
    room = headroom if headroom is not None else declared
    if room is None or room.percent is None:
        return Nodes(pods_per_node, count, provision_seconds, (room.replicas if room else None) or 0)
    return Nodes(pods_per_node, count, provision_seconds, headroom_percent=room.percent,
                 headroom_min=1 if room.min_replicas is None else room.min_replicas)


DEFAULT_SESSIONS = 1000  # users behind an affinity when --sessions is not given


@dataclass(frozen=True)
class Declared:
    """What the spec contributes to a scenario, and what of it the simulator leaves out."""

    service: Service
    algorithm: str
    objective_seconds: float | None
    quantile: float
    notes: tuple[str, ...]
    flavors: tuple[Flavor, ...] = (Flavor(),)
    sticky: bool = False
    sessions: int = 0


def declared(spec: ScalableServiceSpec, service: ServiceTime, startup_seconds: float, *,
             sessions: int | None = None, pool_speeds: Mapping[str, float] | None = None,
             nodes: Nodes | None = None) -> Declared:
    """The spec's part of a scenario. `sessions` (users behind an affinity, `DEFAULT_SESSIONS`
    when None) is refused without an affinity, `pool_speeds` without the pools they name."""
    capacity = replica_capacity(spec)
    flavors = pool_flavors(spec, pool_speeds)
    affinity = spec.balancing.affinity
    sticky = affinity.type != "None"
    if sessions is not None and not sticky:
        raise ValueError("--sessions needs balancing.affinity (Cookie or ClientIP) in the spec: "
                         "without an affinity the users' sessions change nothing")
    users = DEFAULT_SESSIONS if sessions is None else sessions
    notes = []
    if spec.scaling.prometheus is None:
        notes.append("scaling.prometheus is unset: in a cluster Spillway would hold replicas.min; "
                     "simulated as if it read the simulated Prometheus")
    if spec.scaling.metrics_source != "HAProxy" or any(
            (spec.scaling.queries.queue_depth, spec.scaling.queries.in_flight, spec.scaling.queries.arrival_rate,
             spec.scaling.queries.latency)):
        notes.append(f"metricsSource {spec.scaling.metrics_source} and custom queries are not simulated: "
                     "Spillway reads the HAProxy preset's signals here")
    if spec.pools:
        unsped = [p.name for p in spec.pools if p.name not in (pool_speeds or {})]
        if len(spec.pools) > 1 and unsped:
            notes.append(f"pools without --pool-speed ({', '.join(unsped)}) serve at the --service-time as given "
                         "(speed 1): a spec does not say how fast a pool's hardware is; --pool-speed NAME=FACTOR "
                         "divides a pool's service times by FACTOR")
        if any(p.capacity.queue_limit is not None for p in spec.pools):
            notes.append(f"pools' capacity.queueLimit overrides are simulated as one queue limit of "
                         f"{capacity.queue_limit} per replica (their weight-weighted mean): the simulator has no "
                         "per-pool queue limit")
        if nodes is not None and any(p.node_selector for p in spec.pools):
            notes.append("pools' nodeSelector is not simulated: with --nodes every pool's pods share the same nodes")
    if sticky:
        notes.append(f"affinity {affinity.type} is simulated as {users} users (--sessions) "
                     f"whose requests stay on one replica until it drains; its ttl ({format_duration(affinity.ttl)}) "
                     "is not: a session never expires")
    target = spec.scaling.targets.latency
    return Declared(
        service=Service(concurrency=capacity.concurrency, queue_limit=capacity.queue_limit,
                        timeout=spec.capacity.timeout.total_seconds(), service_time=service,
                        startup=startup_seconds),
        algorithm=simulated_algorithm(spec),
        objective_seconds=target.objective.total_seconds() if target is not None else None,
        quantile=target.quantile if target is not None else 0.95,
        notes=tuple(notes),
        flavors=flavors,
        sticky=sticky,
        sessions=users if sticky else 0,
    )


# Without a file: a placeholder workload; the simulator reads only capacity, replicas and scaling.
BARE_SPEC: dict[str, Any] = {
    "template": {"spec": {"containers": [{"name": "app", "image": "simulated",
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}},
    "scaling": {"prometheus": {"url": "http://prometheus.simulated:9090"}},
}


def spec_document(text: str, source: str) -> dict[str, Any]:
    """The `spec` of the one ScalableService in a YAML text (other documents are ignored)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise ValueError(f"{source} is not valid YAML: {err}") from None
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == "ScalableService"]
    if len(found) != 1:
        raise ValueError(f"{source} must hold exactly one ScalableService (kind: ScalableService), not {len(found)}")
    spec = found[0].get("spec")
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: the ScalableService has no spec mapping")
    return spec


def stated_spec(document: Mapping[str, Any] | None, overrides: Mapping[tuple[str, ...], Any]) -> ScalableServiceSpec:
    """A spec document (or the bare one) with `overrides` (camelCase paths to values, None for
    unset) laid over it, validated as the API server would: SpecError names the field at fault."""
    spec = copy.deepcopy(dict(document) if document is not None else BARE_SPEC)
    for path, value in overrides.items():
        if value is None:
            continue
        node = spec
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    return parse_spec(spec)


PEERS = ("hpa", "hpa-inflight", "keda", "knative", "oracle", "reactive")
# How far below full use a peer's per-replica targets sit, as the peers' docs advise (the HPA's
# walkthrough's CPU target is 80 %, Knative's default target utilization 70 %).
PEER_UTILIZATION = 0.7


def peer(name: str, scenario: Scenario, quantile: float) -> Policy:
    """A baseline autoscaler of sim/peers as a competent user configures it, bounded by the same
    replicas as Spillway: the HPA on CPU at 80 % with the container's request at half a busy
    replica's use (utilization passes 100 % under a surge), or on a Pods metric (each pod's
    requests in flight, through a Prometheus adapter) at 70 % of its workers; KEDA with three
    Prometheus triggers per replica (request rate and requests in flight at 70 % of a replica,
    the queue at one replica's workers); Knative told the replica's worker count; the oracle
    the truth of the scenario (the reactive reference only its present)."""
    least, most, service = scenario.min_replicas, scenario.max_replicas, scenario.service
    policy: Policy
    if name == "hpa":
        policy = HPA(least, most, request_share=0.5)
        policy.name = "HPA"
    elif name == "hpa-inflight":
        policy = HPA(least, most, in_flight_per_pod=service.concurrency * PEER_UTILIZATION)
        policy.name = "HPA in-flight"
    elif name == "keda":
        per_replica = service.concurrency / mean_seconds(service.service_time)
        policy = KEDA(least, most, triggers=(Trigger("rate", round(per_replica * PEER_UTILIZATION, 3)),
                                             Trigger("inflight", round(service.concurrency * PEER_UTILIZATION, 3)),
                                             Trigger("queue", float(service.concurrency))))
        policy.name = "KEDA"
    elif name == "knative":
        policy = Knative(least, most, container_concurrency=service.concurrency)
    elif name in ("oracle", "reactive"):
        foresight = Foresight(rate=scenario.trace.rate, mean_service_seconds=mean_seconds(service.service_time),
                              concurrency=service.concurrency, startup_seconds=service.startup)
        policy = Oracle(foresight, scenario.objective_seconds, quantile, least, most, ahead=name == "oracle")
    else:
        raise ValueError(f"unknown peer {name!r}; choose among {', '.join(PEERS)}")
    return policy


def peers(names: str | None) -> list[str]:
    """`hpa, KEDA,oracle` -> ['hpa', 'keda', 'oracle'], each once, unknown ones refused."""
    chosen = list(dict.fromkeys(n.strip().lower() for n in (names or "").split(",") if n.strip()))
    unknown = [n for n in chosen if n not in PEERS]
    if unknown:
        raise ValueError(f"--compare: unknown peer {unknown[0]!r}; choose among {', '.join(PEERS)}")
    return chosen
