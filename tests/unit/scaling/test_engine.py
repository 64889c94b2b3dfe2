from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spillway.scaling.behavior import EngineState
from spillway.scaling.bounds import clamp
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals, replica_capacity, service_seconds
from tests.unit.scaling.cases import FREE, NOW, free, spec


@pytest.mark.parametrize(("signals", "replicas", "signal", "reason"), [
    (Signals(queue_depth=340), 34, "queue", "queue 340 over 10 per replica -> 34"),
    (Signals(in_flight=1400), 10, "utilization", "1400 in flight over 200 x 0.7 per replica -> 10"),
    (Signals(queue_depth=50, in_flight=2800), 20, "utilization", "2800 in flight over 200 x 0.7 per replica -> 20"),
    (Signals(queue_depth=0, in_flight=0), 2, "queue", "queue 0 over 10 per replica -> 0 (at min 2)"),
    (Signals(queue_depth=900), 40, "queue", "queue 900 over 10 per replica -> 90 (at max 40)"),
])
def test_the_largest_proposal_wins_within_bounds(signals: Signals, replicas: int, signal: str, reason: str) -> None:
    decision = decide(free(), signals, 12, EngineState(), NOW)
    assert (decision.replicas, decision.signal, decision.reason) == (replicas, signal, reason)


def test_latency_model_sees_saturation_before_utilization_does() -> None:
    s = free(targets={"utilization": 1.0, "latency": {"quantile": 0.95, "objective": "250ms"}})
    # 6,000 busy workers on 30 replicas: utilization says 30 is enough; the queue model knows
    # a saturated M/M/6000 queue misses a 250 ms p95.
    decision = decide(s, Signals(in_flight=6000, arrival_rate=30000), 30, EngineState(), NOW)
    assert [(p.signal, p.replicas) for p in decision.proposals] == [("utilization", 30), ("latency", 31)]
    assert decision.replicas == 31 and decision.signal == "latency"
    assert decision.reason.startswith("latency model: 30000 req/s at 200ms each, p95 under 250ms -> 31")


@pytest.mark.parametrize(("pools", "concurrency", "queue_limit"), [
    ([], 200, 100),
    ([{"name": "large", "weight": 3, "capacity": {"concurrency": 400}}, {"name": "small", "weight": 1}], 350, 100),
    ([{"name": "a", "weight": 2, "capacity": {"concurrency": 101, "queueLimit": 0}}, {"name": "b", "weight": 1}],
     134, 33),
])
def test_pools_size_by_the_weighted_mean_replica(pools: list[dict[str, Any]], concurrency: int,
                                                 queue_limit: int) -> None:
    capacity = replica_capacity(spec(pools=pools))
    assert (capacity.concurrency, capacity.queue_limit) == (concurrency, queue_limit)


def test_larger_pool_replicas_need_fewer_replicas_for_the_same_load() -> None:
    pools = [{"name": "large", "weight": 3, "capacity": {"concurrency": 400}}, {"name": "small", "weight": 1}]
    decision = decide(free(), Signals(in_flight=1400), 2, EngineState(), NOW)
    pooled = decide(spec(pools=pools, scaling=free().scaling.model_dump(by_alias=True, mode="json")),
                    Signals(in_flight=1400), 2, EngineState(), NOW)
    assert (decision.replicas, pooled.replicas) == (10, 6)
    assert pooled.reason == "1400 in flight over 350 x 0.7 per replica -> 6"


def test_service_time_comes_from_littles_law_then_from_latency() -> None:
    s = spec(scaling={"targets": {"latency": {"quantile": 0.95, "objective": "1s"}}})
    assert service_seconds(s, Signals(in_flight=50, arrival_rate=500)) == pytest.approx(0.1)
    assert service_seconds(s, Signals(latency_seconds=0.3)) == pytest.approx(0.3 / 2.995732, rel=1e-5)
    assert service_seconds(s, Signals(in_flight=50000, arrival_rate=1000)) == 30.0  # clamped to capacity.timeout


def test_a_latency_objective_no_count_can_meet_asks_for_max_and_says_why() -> None:
    # 8,000 busy workers fill 40 replicas of 200: the model needs a 41st, which max forbids.
    s = free(targets={"utilization": 1.0, "latency": {"quantile": 0.99, "objective": "250ms"}})
    decision = decide(s, Signals(in_flight=8000, arrival_rate=40000), 5, EngineState(), NOW)
    assert decision.replicas == 40 and decision.limited == "AtMax"
    assert "not even 40 replicas do" in decision.reason and decision.objective_unreachable is None


def test_tolerance_keeps_small_changes_away() -> None:
    s = spec(scaling={"behavior": {"tolerance": 0.1}})
    decision = decide(s, Signals(queue_depth=105), 10, EngineState(), NOW)
    assert decision.replicas == 10 and "within tolerance 0.1 of 10" in decision.reason


def test_scale_up_steps_by_the_larger_policy_per_period() -> None:
    s = spec(scaling={"behavior": {"panic": False}})  # defaults: 100% or 4 pods per 15s, Max
    first = decide(s, Signals(queue_depth=1000), 3, EngineState(), NOW)
    assert first.replicas == 7 and first.limited == "StepLimit"  # 3 + max(4, 3) = 7
    again = decide(s, Signals(queue_depth=1000), 7, first.state, NOW + timedelta(seconds=5))
    assert again.replicas == 7, "the period's budget is spent"
    later = decide(s, Signals(queue_depth=1000), 7, again.state, NOW + timedelta(seconds=16))
    assert later.replicas == 14  # 7 + max(4, 7)


def test_scale_down_waits_for_stabilization_window() -> None:
    s = spec(scaling={"behavior": {"scaleDown": {"stabilizationWindow": "5m", "maxStepPercent": None}}})
    state = decide(s, Signals(queue_depth=200), 20, EngineState(), NOW).state
    quiet = Signals(queue_depth=0)
    for minute in (1, 3, 4.9):
        d = decide(s, quiet, 20, state, NOW + timedelta(minutes=minute))
        assert d.replicas == 20 and "scale-down window 5m holds 20" in d.reason
        state = d.state
    d = decide(s, quiet, 20, state, NOW + timedelta(minutes=5, seconds=1))
    assert d.replicas == 2 and d.direction == "down"


def test_scale_down_percent_limit() -> None:
    s = spec(scaling={"behavior": {"scaleDown": {"stabilizationWindow": "0s", "maxStepPercent": 10,
                                                 "period": "1m"}}})
    d = decide(s, Signals(queue_depth=0), 30, EngineState(), NOW)
    assert d.replicas == 27 and "scale-down step limit (10% per 1m) allows 27" in d.reason


def test_disabled_direction_never_moves() -> None:
    s = spec(scaling={"behavior": {"scaleDown": {"stabilizationWindow": "0s", "selectPolicy": "Disabled"}}})
    assert decide(s, Signals(queue_depth=0), 30, EngineState(), NOW).replicas == 30


def test_panic_skips_step_limits_when_the_queue_cannot_drain_in_time() -> None:
    s = spec(capacity={"concurrency": 10, "timeout": "5s"})
    # 2 replicas x 10 workers x 5 s / 1 s per request = 100 requests can be served in time.
    d = decide(s, Signals(queue_depth=300, in_flight=20, arrival_rate=20), 2, EngineState(), NOW)
    assert d.replicas == 30 and d.signal == "panic"
    calm = decide(s, Signals(queue_depth=90, in_flight=20, arrival_rate=20), 2, EngineState(), NOW)
    assert calm.signal == "queue" and calm.replicas == 6  # 2 + max(4, 100%)


def test_missing_signals_hold_then_fall_back() -> None:
    s = spec(scaling={"onMetricsUnavailable": {"action": "Fallback", "fallbackReplicas": 8, "after": 3}})
    missing = Signals(missing=frozenset({"queue_depth", "in_flight"}))
    state = EngineState()
    for interval in (1, 2):
        d = decide(s, missing, 5, state, NOW + timedelta(seconds=15 * interval))
        assert (d.replicas, d.signal, d.metrics_available) == (5, "hold", False)
        assert d.reason == "signals unavailable (in_flight, queue_depth): holding 5"
        state = d.state
    d = decide(s, missing, 5, state, NOW + timedelta(seconds=45))
    assert (d.replicas, d.signal) == (8, "fallback")
    assert decide(s, missing, 12, d.state, NOW + timedelta(seconds=60)).replicas == 12, "fallback never lowers"
    recovered = decide(s, Signals(queue_depth=100), 8, d.state, NOW + timedelta(seconds=75))
    assert recovered.state.metrics_failures == 0 and recovered.metrics_available


def test_partial_signals_may_raise_but_never_lower() -> None:
    s = free()
    partial = Signals(queue_depth=0, missing=frozenset({"in_flight"}))
    d = decide(s, partial, 12, EngineState(), NOW)
    assert d.replicas == 12 and "in_flight missing: not scaling down" in d.reason
    assert decide(s, Signals(queue_depth=200, missing=frozenset({"in_flight"})), 12, EngineState(), NOW).replicas == 20


def test_state_round_trips_through_status() -> None:
    d = decide(spec(), Signals(queue_depth=100), 3, EngineState(), NOW)
    status = d.state.to_status()
    assert status["scaleEvents"] == [{"time": "2026-11-24T12:00:00.000000Z", "change": 4}]
    assert EngineState.from_status(status) == d.state


def test_history_older_than_it_is_needed_is_dropped() -> None:
    s = spec()
    state = decide(s, Signals(queue_depth=100), 3, EngineState(), NOW).state
    later = decide(s, Signals(queue_depth=100), 7, state, NOW + timedelta(hours=1)).state
    assert all(t == NOW + timedelta(hours=1) for t, _ in later.recommendations + later.scale_events)


def test_an_idle_service_scales_in_though_its_latency_has_no_value() -> None:
    """HAProxy's mean goes stale and a histogram quantile is NaN when nothing arrives: a latency
    missing under (almost) no traffic is not missing data and must not hold the count up."""
    s = free(targets={"queuePerReplica": 10, "latency": {"quantile": 0.95, "objective": "250ms"}})
    idle = Signals(queue_depth=0, in_flight=0, arrival_rate=0.0, missing=frozenset({"latency"}))
    d = decide(s, idle, 12, EngineState(), NOW)
    assert d.replicas == 2 and d.metrics_available, d.reason
    busy = Signals(queue_depth=0, in_flight=0, arrival_rate=50.0, missing=frozenset({"latency"}))
    assert decide(s, busy, 12, EngineState(), NOW).replicas == 12, "under traffic a missing latency still holds"


def test_panic_also_when_the_queues_are_half_full_though_a_timeout_could_drain_more() -> None:
    # 4 replicas x 8 workers x 10 s / 250 ms = 1280 requests could drain in time, but the queues
    # hold only 4 x 100: past that, requests are refused, never queued. Half full is panic.
    s = spec(capacity={"concurrency": 8, "queueLimit": 100, "timeout": "10s"})
    signals = Signals(queue_depth=399, in_flight=32, arrival_rate=128)
    d = decide(s, signals, 4, EngineState(), NOW)
    assert d.signal == "panic" and d.replicas == 40, d.reason
    calm = decide(s, Signals(queue_depth=150, in_flight=32, arrival_rate=128), 4, EngineState(), NOW)
    assert calm.signal == "queue" and calm.replicas == 8  # 4 + max(4 pods, 100 %)


def test_the_scale_down_window_remembers_the_demand_not_the_backlog() -> None:
    # A backlog of 400 asks for 40 replicas while 60 req/s at 250 ms keep 15 workers busy. Once
    # the new replicas drained it, the window does not hold 40: the queue is a stock, not a rate.
    s = spec(capacity={"concurrency": 8}, scaling={"behavior": {**FREE, "scaleDown": {
        "stabilizationWindow": "300s", "maxStepPercent": 100, "period": "15s"}}})
    surge = decide(s, Signals(queue_depth=400, in_flight=15, arrival_rate=60), 4, EngineState(), NOW)
    assert surge.replicas == 40 and surge.signal == "queue"
    assert surge.state.recommendations[-1][1] == 3  # 15 in flight over 8 x 0.7
    later = decide(s, Signals(queue_depth=0, in_flight=15, arrival_rate=60), 40, surge.state,
                   NOW + timedelta(seconds=45))
    assert later.replicas == 4  # the seeded 4 is the window's highest, not the backlog's 40


def test_a_queue_alone_is_remembered_as_it_proposed() -> None:
    s = spec(scaling={"queries": {"queueDepth": "q"}, "metricsSource": "Custom"})
    d = decide(s, Signals(queue_depth=400), 4, EngineState(), NOW)
    assert d.state.recommendations[-1][1] == clamp(40, s.replicas)


def test_replicas_waiting_for_a_node_hold_a_scale_up_and_the_recommendation_is_kept() -> None:
    s = spec(scaling={"behavior": {"panic": False}})  # a 5m scale-down window; 100% or 4 pods per 15s
    d = decide(s, Signals(queue_depth=200), 5, EngineState(), NOW, unschedulable=2)
    assert (d.replicas, d.direction, d.limited) == (5, "none", "CapacityPending")
    assert "2 of the replicas asked for wait for a node: not scaling up to 10 on the queue until they are scheduled" \
        in d.reason
    assert d.state.recommendations[-1] == (NOW, 20), "the window remembers what the load asked for"
    assert d.state.scale_events == (), "a held step spends no step budget"
    resumed = decide(s, Signals(queue_depth=200), 5, d.state, NOW + timedelta(seconds=15), unschedulable=0)
    assert (resumed.replicas, resumed.limited) == (10, "StepLimit")


def test_replicas_waiting_for_a_node_hold_a_panic_too_but_not_the_demand() -> None:
    s = spec(capacity={"concurrency": 10, "timeout": "5s"})
    signals = Signals(queue_depth=300, in_flight=20, arrival_rate=20)
    assert decide(s, signals, 2, EngineState(), NOW).replicas == 30
    held = decide(s, signals, 2, EngineState(), NOW, unschedulable=1)
    # The queue's 30 waits; the 20 in flight over 10 x 0.7 per replica ask for 3, which the
    # Pending pod does not change.
    assert (held.replicas, held.limited) == (3, "CapacityPending")


def test_while_replicas_wait_a_rise_in_load_is_still_followed() -> None:
    s = spec(scaling={"behavior": {"panic": False, "scaleUp": {"maxStepPods": 100}}},
             capacity={"concurrency": 10})
    calm = decide(s, Signals(queue_depth=0, in_flight=56), 8, EngineState(), NOW, unschedulable=2)
    assert calm.replicas == 8
    busier = decide(s, Signals(queue_depth=400, in_flight=140), 8, EngineState(), NOW, unschedulable=2)
    assert (busier.replicas, busier.limited) == (20, "CapacityPending"), busier.reason


@pytest.mark.parametrize(("signals", "current", "expected"), [
    (Signals(queue_depth=0), 12, 2),  # a scale-down goes ahead: fewer Pending pods, not more
    (Signals(queue_depth=120), 12, 12),  # nothing to do
])
def test_replicas_waiting_for_a_node_never_stop_a_scale_down(signals: Signals, current: int, expected: int) -> None:
    d = decide(free(), signals, current, EngineState(), NOW, unschedulable=3)
    assert d.replicas == expected and d.limited != "CapacityPending"


@given(st.integers(0, 2000), st.integers(0, 60), st.integers(1, 40))
def test_unschedulable_replicas_cap_the_count_at_the_current_one_within_bounds(queue: int, current: int,
                                                                             waiting: int) -> None:
    s = spec()
    unheld = decide(s, Signals(queue_depth=queue), current, EngineState(), NOW)
    d = decide(s, Signals(queue_depth=queue), current, EngineState(), NOW, unschedulable=waiting)
    assert s.replicas.min <= d.replicas <= s.replicas.max
    assert d.replicas == min(unheld.replicas, clamp(current, s.replicas))  # the queue is the only signal here
    assert d.state.recommendations == unheld.state.recommendations
