"""The latency model never buys useless replicas, and bad signal values never reach the math."""

from __future__ import annotations

import math
from typing import Any

import pytest

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals, service_seconds
from spillway.scaling.queueing import replicas_for_latency, replicas_for_mean_latency
from tests.unit.scaling.cases import FREE, NOW, free, spec

LATENCY = {"latency": {"quantile": 0.99, "objective": "100ms"}}


def test_an_objective_at_or_below_the_service_time_drops_the_latency_proposal_and_says_why() -> None:
    # 100 in flight at 500 req/s: each request takes 200 ms; no replica count makes it 100 ms.
    d = decide(free(targets=LATENCY), Signals(in_flight=100, arrival_rate=500), 5, EngineState(), NOW)
    assert [p.signal for p in d.proposals] == ["utilization"]
    assert d.replicas == 2, "the latency model no longer asks for max"
    assert d.objective_unreachable == (
        "latency objective 100ms is at or below the service time 200ms (100 in flight / 500 req/s): "
        "more replicas cannot shorten it, so the latency model proposes nothing")


def test_the_issues_case_one_request_at_a_hundredth_per_second_never_asks_for_max() -> None:
    s = free(targets={"latency": {"quantile": 0.95, "objective": "250ms"}})
    d = decide(s, Signals(in_flight=1, arrival_rate=0.01, queue_depth=0), 10, EngineState(), NOW)
    assert d.replicas == 2 and d.signal != "latency"
    assert d.objective_unreachable is None, "too little traffic to judge the objective at all"


@pytest.mark.parametrize(("rate", "window", "proposes"), [
    (0.3, 60.0, False),   # 18 requests in the window: fewer than 20
    (0.4, 60.0, True),    # 24 requests
    (0.4, 30.0, False),   # 12 requests in a 30 s window
    (0.5, 40.0, True),    # exactly 20 requests: enough
])
def test_negligible_traffic_makes_no_latency_proposal(rate: float, window: float, proposes: bool) -> None:
    s = free(targets={"latency": {"quantile": 0.95, "objective": "10s"}})
    d = decide(s, Signals(in_flight=1, arrival_rate=rate, rate_window_seconds=window), 4, EngineState(), NOW)
    assert ("latency" in [p.signal for p in d.proposals]) is proposes


def test_negligible_traffic_leaves_the_service_time_unknown() -> None:
    s = spec(scaling={"targets": {"latency": {"quantile": 0.95, "objective": "1s"}}})
    assert service_seconds(s, Signals(in_flight=1, arrival_rate=0.01)) is None
    assert service_seconds(s, Signals(latency_seconds=0.3, arrival_rate=0.0)) is None


def test_a_mean_latency_signal_is_its_own_service_time_estimate() -> None:
    s = spec(scaling={"targets": {"latency": {"quantile": 0.95, "objective": "1s"}}})
    assert service_seconds(s, Signals(latency_seconds=0.3, latency_kind="mean")) == pytest.approx(0.3)
    assert service_seconds(s, Signals(latency_seconds=0.3)) == pytest.approx(0.3 / -math.log(0.05))


def test_a_mean_latency_signal_still_sizes_for_the_objective_at_its_quantile() -> None:
    # 60 req/s at 250 ms on 8 workers a replica: a = 15 Erlangs. HAProxy's latency is a mean, but
    # the objective is stated at p99: the count is the quantile model's (3), not the one whose mean
    # response fits in 500 ms (2), which would miss the p99 by design.
    s = spec(capacity={"concurrency": 8}, replicas={"min": 1, "max": 100},
             scaling={"behavior": FREE, "targets": {"latency": {"quantile": 0.99, "objective": "500ms"}}})
    signals = Signals(in_flight=15, arrival_rate=60, latency_kind="mean")
    d = decide(s, signals, 2, EngineState(), NOW)
    n = next(p.replicas for p in d.proposals if p.signal == "latency")
    assert n == replicas_for_latency(60, 0.25, 8, 0.5, 0.99, 100) == 3
    assert replicas_for_mean_latency(60, 0.25, 8, 0.5, 100) == 2
    assert "p99 under 500ms" in next(p.reason for p in d.proposals if p.signal == "latency")


def test_the_latency_proposal_is_held_by_tolerance_on_proposed_over_current() -> None:
    # No metric ratio exists for the model: proposed / current stands in (31 / 30 is within 0.1).
    behavior: dict[str, Any] = {"tolerance": 0.1, "panic": False,
                                "scaleUp": {"maxStepPercent": None, "maxStepPods": None}}
    s = spec(scaling={"behavior": behavior,
                      "targets": {"utilization": 1.0, "latency": {"quantile": 0.95, "objective": "250ms"}}})
    d = decide(s, Signals(in_flight=6000, arrival_rate=30000), 30, EngineState(), NOW)
    assert d.replicas == 30
    latency = next(p for p in d.proposals if p.signal == "latency")
    assert latency.ratio == pytest.approx(31 / 30)


BAD = [math.nan, math.inf, -math.inf, -1.0]
NAMES = {"queue_depth": "queue_depth", "in_flight": "in_flight", "arrival_rate": "arrival_rate",
         "latency_seconds": "latency"}


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf", "negative"])
@pytest.mark.parametrize("field", list(NAMES))
def test_a_non_finite_or_negative_signal_is_missing_never_a_crash(field: str, value: float) -> None:
    s = free(targets={"latency": {"quantile": 0.95, "objective": "250ms"}})
    values: dict[str, Any] = {"queue_depth": 0.0, "in_flight": 10.0, "arrival_rate": 100.0, "latency_seconds": 0.1}
    values[field] = value
    d = decide(s, Signals(**values), 12, EngineState(), NOW)
    assert d.replicas == 12, "a missing signal never lowers the count"
    assert not d.metrics_available
    assert f"{NAMES[field]} missing: not scaling down" in d.reason


def _saturated() -> Signals:
    # bench/autoscalers.py's on-off burst, t=30 s: 600 req/s offered to 2 ready replicas of 8 workers
    # and 100 queue places (64 req/s at 250 ms). Every worker is busy, every queue full, the rest
    # refused: the rate counts the refused requests, in_flight cannot.
    return Signals(queue_depth=200, in_flight=16, arrival_rate=600, latency_seconds=3.3, latency_kind="mean")


def _service() -> ScalableServiceSpec:
    return spec(capacity={"concurrency": 8, "queueLimit": 100, "timeout": "10s"}, replicas={"min": 2, "max": 80},
                scaling={"behavior": FREE, "targets": {"queuePerReplica": 50, "utilization": 0.85,
                                                         "latency": {"quantile": 0.99, "objective": "1s"}}})


def test_refused_requests_do_not_shrink_the_service_time() -> None:
    # 16 / 600 = 27 ms; on the admitted requests, 3.3 s x 16 / 216 = 244 ms (the truth is 250 ms).
    assert service_seconds(_service(), _saturated()) == pytest.approx(3.3 * 16 / 216)


def test_a_saturated_service_gets_the_replicas_its_offered_load_needs() -> None:
    d = decide(_service(), _saturated(), 2, EngineState(), NOW)
    latency = next(p for p in d.proposals if p.signal == "latency")
    assert latency.replicas >= 19, latency.reason  # 600 req/s x 250 ms / 8 workers = 18.75
    assert d.replicas == latency.replicas, "the queue (4) and utilization (3) see only the 2 ready replicas"


def test_without_a_queue_littles_law_on_the_rate_stands() -> None:
    # Nothing is refused while nothing waits: in_flight / rate, however stale the mean latency.
    signals = Signals(queue_depth=0, in_flight=100, arrival_rate=500, latency_seconds=3.0, latency_kind="mean")
    assert service_seconds(_service(), signals) == pytest.approx(0.2)
