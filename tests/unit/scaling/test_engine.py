from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals, replica_capacity, service_seconds
from tests.unit.conftest import minimal_spec

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SIGNALS = ("queue_depth", "in_flight", "arrival_rate", "latency_seconds")


def spec(**overrides: Any) -> ScalableServiceSpec:
    base: dict[str, Any] = {"replicas": {"min": 2, "max": 40}, "capacity": {"concurrency": 200}}
    base.update(overrides)
    return parse_spec(minimal_spec(**base))


def free(**scaling: Any) -> ScalableServiceSpec:
    """No windows, no step limits, no tolerance: the proposals alone decide."""
    behavior = {"tolerance": 0, "panic": False,
                "scaleUp": {"stabilizationWindow": "0s", "maxStepPercent": None, "maxStepPods": None},
                "scaleDown": {"stabilizationWindow": "0s", "maxStepPercent": None}}
    return spec(scaling={"behavior": behavior, **scaling})


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
    assert decision.reason.startswith("latency model: 3e+04 req/s at 200ms each, p95 under 250ms -> 31")


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
    assert service_seconds(s, Signals(in_flight=50, arrival_rate=0.0001)) == 30.0  # clamped to capacity.timeout


def test_unreachable_latency_objective_asks_for_max_and_says_why() -> None:
    s = free(targets={"latency": {"quantile": 0.99, "objective": "100ms"}})
    decision = decide(s, Signals(in_flight=100, arrival_rate=500), 5, EngineState(), NOW)
    assert decision.replicas == 40 and decision.limited == "AtMax"
    assert "the objective is below the service time" in decision.reason


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
    assert status["scaleEvents"] == [{"time": "2026-11-24T12:00:00Z", "change": 4}]
    assert EngineState.from_status(status) == d.state


def test_history_older_than_it_is_needed_is_dropped() -> None:
    s = spec()
    state = decide(s, Signals(queue_depth=100), 3, EngineState(), NOW).state
    later = decide(s, Signals(queue_depth=100), 7, state, NOW + timedelta(hours=1)).state
    assert all(t == NOW + timedelta(hours=1) for t, _ in later.recommendations + later.scale_events)


# Properties
maybe = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
signal_sets = st.builds(Signals, queue_depth=maybe, in_flight=maybe, arrival_rate=maybe, latency_seconds=maybe)
specs = st.sampled_from([
    spec(), free(), spec(scaling={"targets": {"latency": {"quantile": 0.9, "objective": "500ms"}}}),
    spec(replicas={"min": 1, "max": 3}), spec(scaling={"behavior": {"tolerance": 0.5}}),
])


@settings(max_examples=300, deadline=None)
@given(specs, signal_sets, st.integers(1, 60))
def test_result_is_always_within_bounds(s: ScalableServiceSpec, signals: Signals, current: int) -> None:
    d = decide(s, signals, current, EngineState(), NOW)
    assert s.replicas.min <= d.replicas <= s.replicas.max


@settings(max_examples=300, deadline=None)
@given(specs, signal_sets, st.integers(1, 40), st.sets(st.sampled_from(SIGNALS), min_size=1))
def test_never_scales_down_on_missing_data(s: ScalableServiceSpec, signals: Signals, current: int,
                                           gone: set[str]) -> None:
    current = max(s.replicas.min, min(current, s.replicas.max))
    hidden = Signals(**{name: None if name in gone else getattr(signals, name) for name in SIGNALS},
                     missing=frozenset(gone))
    assert decide(s, hidden, current, EngineState(), NOW).replicas >= current


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([free(), free(targets={"latency": {"quantile": 0.95, "objective": "300ms"}})]),
       signal_sets, st.floats(1, 10), st.integers(1, 40))
def test_monotone_in_load(s: ScalableServiceSpec, signals: Signals, factor: float, current: int) -> None:
    heavier = Signals(**{n: None if getattr(signals, n) is None else getattr(signals, n) * factor
                         for n in ("queue_depth", "in_flight", "arrival_rate")},
                      latency_seconds=signals.latency_seconds)
    if signals.in_flight is not None and signals.arrival_rate:
        heavier = Signals(queue_depth=heavier.queue_depth, in_flight=heavier.in_flight,
                          arrival_rate=heavier.arrival_rate)  # same service time, more load
        signals = Signals(queue_depth=signals.queue_depth, in_flight=signals.in_flight,
                          arrival_rate=signals.arrival_rate)
    base = decide(s, signals, current, EngineState(), NOW).replicas
    assert decide(s, heavier, current, EngineState(), NOW).replicas >= base


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 5000), min_size=2, max_size=12))
def test_step_limits_hold_over_any_sequence(queues: list[float]) -> None:
    s = spec(capacity={"concurrency": 200}, scaling={"behavior": {"panic": False}})
    state, current = EngineState(), 2
    for i, queue in enumerate(queues):
        now = NOW + timedelta(seconds=15 * i)
        d = decide(s, Signals(queue_depth=queue), current, state, now)
        added = sum(c for t, c in d.state.scale_events if c > 0 and now - t < timedelta(seconds=15))
        assert added <= max(4, current)  # 4 pods or 100% of the period's start
        removed = -sum(c for t, c in d.state.scale_events if c < 0 and now - t < timedelta(seconds=60))
        assert removed <= max(1, current // 10 + 1)
        state, current = d.state, d.replicas


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 400), min_size=2, max_size=25))
def test_no_scale_down_before_the_window_since_a_higher_recommendation(queues: list[float]) -> None:
    s = spec(scaling={"behavior": {"panic": False, "scaleDown": {"stabilizationWindow": "2m",
                                                                    "maxStepPercent": None}}})
    state, current, history = EngineState(), 2, []
    for i, queue in enumerate(queues):
        now = NOW + timedelta(seconds=15 * i)
        d = decide(s, Signals(queue_depth=queue), current, state, now)
        history.append((now, max(2, min(40, -(-int(queue) // 10)))))
        if d.replicas < current:
            recent = [r for t, r in history if now - t <= timedelta(minutes=2)]
            assert d.replicas >= max(recent)
        state, current = d.state, d.replicas
