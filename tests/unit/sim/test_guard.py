"""The benchmark's regression guard: three short synthetic traces, a service of its own, one
seed; Spillway's engine must keep every relation to the peers' defaults it has today on these
runs. What it can guarantee: runs are deterministic, so a changed verdict here means the engine
(or a peer) now behaves differently on these very requests. What it cannot: one seed is no
evidence that a relation holds in general, and a small change of behaviour can flip a verdict
that rests on noise-sized differences; that takes several seeds and paired intervals
(`spillway.sim.stats`, `spillway simulate --seeds`).

On the guard's own service (the benchmark's first one), today: Spillway dominates KEDA on
all three (more requests within the objective, fewer replica-seconds); it trades with the HPA
(more within the objective, at more cost: the HPA's 80 % target runs hotter) and is never
dominated by it here. Knative, which reads its sidecars' concurrency every second where
Spillway reads Prometheus every 15 s, is not dominated on these traces, so no relation to it
is guarded.
"""

from __future__ import annotations

from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.scaling.queueing import replicas_for_latency
from spillway.sim import traces
from spillway.sim.compare import Versus
from spillway.sim.distributions import lognormal
from spillway.sim.model import Service
from spillway.sim.peers import hpa, keda
from spillway.sim.policy import Policy
from spillway.sim.run import Result, Scenario, run
from spillway.sim.spillway import SpillwayPolicy
from spillway.sim.traces import Trace

# The service of the benchmark's first rounds (bench/autoscalers.py has since moved on; the
# guard keeps its own): 8 workers, a queue of 100, log-normal work of mean 250 ms, 30 s starts.
CONCURRENCY, QUEUE_LIMIT, TIMEOUT_SECONDS, STARTUP_SECONDS = 8, 100, 10.0, 30.0
SERVICE_TIME = lognormal(0.25, 0.5)
OBJECTIVE_SECONDS, QUANTILE = 1.0, 0.99
MIN_REPLICAS, MAX_REPLICAS = 2, 80
SPEC: dict[str, Any] = {
    "template": {"spec": {"containers": [{"name": "app", "image": "app",
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}},
    "replicas": {"min": MIN_REPLICAS, "max": MAX_REPLICAS},
    "capacity": {"concurrency": CONCURRENCY, "queueLimit": QUEUE_LIMIT, "timeout": f"{TIMEOUT_SECONDS:g}s"},
    "scaling": {"prometheus": {"url": "http://prometheus:9090"}, "metricsSource": "HAProxy",
                "targets": {"latency": {"objective": f"{OBJECTIVE_SECONDS * 1000:g}ms", "quantile": QUANTILE}}},
}
POLICIES: dict[str, Any] = {
    "Spillway": lambda: SpillwayPolicy(parse_spec(SPEC)),
    "HPA": lambda: hpa.HPA(MIN_REPLICAS, MAX_REPLICAS),  # CPU at 80 %, the request at full use
    "KEDA": lambda: keda.KEDA(MIN_REPLICAS, MAX_REPLICAS),  # one queue trigger, threshold 10
}

PEAK = 300.0
TRACES = {
    "step": traces.step(PEAK / 5, PEAK, at=180, duration=720),
    "ramp": traces.ramp(PEAK / 10, PEAK, duration=720),
    "diurnal": traces.diurnal(PEAK / 8, PEAK, period=720, duration=720),
}


def _scenario(trace: Trace) -> Scenario:
    first = replicas_for_latency(trace.peak_between(0, 60), SERVICE_TIME.mean_seconds, CONCURRENCY,
                                 OBJECTIVE_SECONDS, QUANTILE, MAX_REPLICAS)
    service = Service(concurrency=CONCURRENCY, queue_limit=QUEUE_LIMIT, timeout=TIMEOUT_SECONDS,
                      service_time=SERVICE_TIME, startup=STARTUP_SECONDS)
    return Scenario(trace, service, OBJECTIVE_SECONDS, MIN_REPLICAS, MAX_REPLICAS, initial_replicas=first, seed=7)


def _runs(name: str) -> dict[str, Result]:
    scenario = _scenario(TRACES[name])
    made: dict[str, Policy] = {family: build() for family, build in POLICIES.items()}
    return {family: run(scenario, policy) for family, policy in made.items()}


@pytest.fixture(scope="module", params=sorted(TRACES))
def runs(request: pytest.FixtureRequest) -> dict[str, Result]:
    return _runs(request.param)


def test_spillway_dominates_keda(runs: dict[str, Result]) -> None:
    versus = Versus(runs["Spillway"], runs["KEDA"])
    assert versus.verdict == "dominates", (runs["Spillway"], runs["KEDA"])


def test_spillway_is_never_dominated_by_the_hpa_and_attains_more(runs: dict[str, Result]) -> None:
    versus = Versus(runs["Spillway"], runs["HPA"])
    assert versus.verdict in ("dominates", "trades"), (runs["Spillway"], runs["HPA"])
    assert versus.attainment == 1


def test_the_guard_is_deterministic() -> None:
    assert _runs("step")["Spillway"] == _runs("step")["Spillway"]
