"""The benchmark's regression guard: three short synthetic traces, the benchmark's service, one
seed; Spillway's engine must keep every relation to the peers' defaults it has today on these
runs. What it can guarantee: runs are deterministic, so a changed verdict here means the engine
(or a peer) now behaves differently on these very requests. What it cannot: one seed is no
evidence that a relation holds in general, and a small change of behaviour can flip a verdict
that rests on noise-sized differences; that takes several seeds and paired intervals
(`spillway.sim.stats`, `spillway simulate --seeds`).

Today (bench/autoscalers.md has the long version and the reasons): Spillway dominates KEDA on
all three (more requests within the objective, fewer replica-seconds); it trades with the HPA
(more within the objective, at more cost: the HPA's 80 % target runs hotter) and is never
dominated by it here. Knative, which reads its sidecars' concurrency every second where
Spillway reads Prometheus every 15 s, is not dominated on these traces, so no relation to it
is guarded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spillway.scaling.queueing import replicas_for_latency
from spillway.sim import traces
from spillway.sim.compare import Versus
from spillway.sim.run import Result, Scenario, run
from spillway.sim.traces import Trace

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import autoscalers as bench  # noqa: E402

PEAK = 300.0
TRACES = {
    "step": traces.step(PEAK / 5, PEAK, at=180, duration=720),
    "ramp": traces.ramp(PEAK / 10, PEAK, duration=720),
    "diurnal": traces.diurnal(PEAK / 8, PEAK, period=720, duration=720),
}


def _scenario(trace: Trace) -> Scenario:
    first = replicas_for_latency(trace.peak_between(0, 60), bench.SERVICE_TIME.mean_seconds, bench.CONCURRENCY,
                                 bench.OBJECTIVE_SECONDS, bench.QUANTILE, bench.MAX_REPLICAS)
    return Scenario(trace, bench.service(), bench.OBJECTIVE_SECONDS, bench.MIN_REPLICAS, bench.MAX_REPLICAS,
                    initial_replicas=first, seed=7)


def _runs(name: str) -> dict[str, Result]:
    scenario = _scenario(TRACES[name])
    return {family: run(scenario, bench.policy(family, {}, scenario)) for family in ("Spillway", "HPA", "KEDA")}


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
