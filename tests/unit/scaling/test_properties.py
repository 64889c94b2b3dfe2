"""Invariants of the engine over any input: NaN, infinities, negatives, any history, any count."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState
from spillway.scaling.bounds import clamp
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals
from tests.unit.scaling.cases import NOW, behaving, free, spec

NAMES = ("queue_depth", "in_flight", "arrival_rate", "latency")
FIELDS = ("queue_depth", "in_flight", "arrival_rate", "latency_seconds")
BAD = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300])
VALUES = st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False), st.sampled_from([0.0, 1e-300, 1e12, 1e300]), BAD)
SIGNALS = st.builds(Signals, queue_depth=VALUES, in_flight=VALUES, arrival_rate=VALUES, latency_seconds=VALUES,
                    missing=st.frozensets(st.sampled_from(NAMES), max_size=2),
                    rate_window_seconds=st.sampled_from([15.0, 60.0, 300.0]),
                    latency_kind=st.sampled_from(["quantile", "mean"]))
SPECS = st.sampled_from([
    spec(), free(),
    spec(scaling={"targets": {"latency": {"quantile": 0.9, "objective": "500ms"}}}),
    spec(replicas={"min": 1, "max": 3}, scaling={"targets": {"latency": {"quantile": 0.99, "objective": "20ms"}}}),
    spec(scaling={"behavior": {"tolerance": 0.5, "scaleUp": {"tolerance": 0.05}, "scaleDown": {"tolerance": 0.3}}}),
    behaving({"maxStepPods": 2, "podsPeriod": "1m", "maxStepPercent": 50, "percentPeriod": "15s"},
             {"maxStepPods": 3, "stabilizationWindow": "1m", "selectPolicy": "Min"}, low=3, high=25,
             targets={"latency": {"quantile": 0.99, "objective": "50ms"}}, tolerance=0.1, panic=True),
    spec(pools=[{"name": "large", "weight": 3, "capacity": {"concurrency": 400}}, {"name": "small", "weight": 1}],
         scaling={"onMetricsUnavailable": {"action": "Fallback", "fallbackReplicas": 8, "after": 1}}),
])
AGES = st.integers(-30, 7200)  # a few seconds in the future too: another replica's clock
STATES = st.builds(
    lambda recs, events, failures: EngineState(
        recommendations=tuple(sorted((NOW - timedelta(seconds=a), r) for a, r in recs)),
        scale_events=tuple(sorted((NOW - timedelta(seconds=a), c) for a, c in events)),
        metrics_failures=failures),
    st.lists(st.tuples(AGES, st.integers(0, 200)), max_size=30),
    st.lists(st.tuples(AGES, st.integers(-50, 50).filter(bool)), max_size=10),
    st.integers(0, 5))


@settings(max_examples=400, deadline=None)
@given(SPECS, SIGNALS, st.integers(0, 120), STATES)
def test_the_result_is_always_within_bounds(s: ScalableServiceSpec, signals: Signals, current: int,
                                            state: EngineState) -> None:
    d = decide(s, signals, current, state, NOW)
    assert s.replicas.min <= d.replicas <= s.replicas.max


@settings(max_examples=200, deadline=None)
@given(SPECS, SIGNALS, st.integers(0, 120), STATES)
def test_decisions_are_deterministic_and_survive_a_restart(s: ScalableServiceSpec, signals: Signals, current: int,
                                                           state: EngineState) -> None:
    d = decide(s, signals, current, state, NOW)
    assert decide(s, signals, current, state, NOW) == d
    restarted = EngineState.from_status(state.to_status())
    assert decide(s, signals, current, restarted, NOW) == d
    assert EngineState.from_status(d.state.to_status()) == d.state


def _hidden(signals: Signals, gone: set[str]) -> Signals:
    values = {f: None if n in gone else getattr(signals, f) for f, n in zip(FIELDS, NAMES, strict=True)}
    return Signals(**values, missing=frozenset(gone), latency_kind=signals.latency_kind)


@settings(max_examples=400, deadline=None)
@given(SPECS, SIGNALS, st.integers(0, 120), STATES, st.sets(st.sampled_from(NAMES), min_size=1))
def test_missing_data_never_scales_down_yet_never_keeps_more_than_max(s: ScalableServiceSpec, signals: Signals,
                                                                     current: int, state: EngineState,
                                                                     gone: set[str]) -> None:
    hidden = _hidden(signals, gone)
    d = decide(s, hidden, current, state, NOW)
    rate = hidden.arrival_rate
    if gone == {"latency"} and rate is not None and 0 <= rate * hidden.rate_window_seconds < 20:
        # An idle service has no response time to read: that is not missing data, and it may
        # scale in (test_an_idle_service_scales_in_though_its_latency_has_no_value).
        event("idle: latency absent, not missing")
        assert s.replicas.min <= d.replicas <= s.replicas.max
        return
    assert clamp(current, s.replicas) <= d.replicas <= s.replicas.max
    if current > s.replicas.max:
        assert d.replicas == s.replicas.max


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([free(), free(targets={"latency": {"quantile": 0.95, "objective": "300ms"}})]),
       SIGNALS, st.floats(1, 10), st.integers(1, 40))
def test_more_load_never_asks_for_fewer_replicas(s: ScalableServiceSpec, signals: Signals, factor: float,
                                                 current: int) -> None:
    def scaled(value: float | None, by: float) -> float | None:
        return None if value is None or not math.isfinite(value) or value < 0 else value * by

    # Little's law keeps the service time when in-flight and arrivals grow together.
    base = Signals(queue_depth=scaled(signals.queue_depth, 1), in_flight=scaled(signals.in_flight, 1),
                   arrival_rate=scaled(signals.arrival_rate, 1), latency_kind=signals.latency_kind)
    heavier = Signals(queue_depth=scaled(base.queue_depth, factor), in_flight=scaled(base.in_flight, factor),
                      arrival_rate=scaled(base.arrival_rate, factor), latency_kind=signals.latency_kind)
    seen = EngineState(recommendations=((NOW - timedelta(hours=1), 1),))
    assert decide(s, heavier, current, seen, NOW).replicas >= decide(s, base, current, seen, NOW).replicas


# A sequence of decisions, 15 s apart, under windows and step limits, checked against the HPA's
# guarantees; loads come in runs so that falls last long enough to be scaled down.
STEPPED = behaving({"maxStepPods": 4, "maxStepPercent": 100, "period": "15s"},
                   {"stabilizationWindow": "30s", "maxStepPercent": 50, "period": "30s"}, low=1, high=40)
RUNS = st.lists(st.tuples(st.floats(0, 400), st.integers(1, 6)), min_size=1, max_size=8)


def _count_at(timeline: list[tuple[datetime, int]], moment: datetime) -> int:
    """The count once every change at or before `moment` was made (the HPA's period start)."""
    return [count for t, count in timeline if t <= moment][-1]


def _check_run(runs: list[tuple[float, int]]) -> int:
    queues = [level for level, length in runs for _ in range(length)]
    state, current = EngineState(), 20
    timeline = [(NOW - timedelta(days=1), current)]
    recommended = [(NOW, current)]  # the first-sight seed
    downs = 0
    for i, queue in enumerate(queues):
        now = NOW + timedelta(seconds=15 * i)
        d = decide(STEPPED, Signals(queue_depth=queue), current, state, now)
        recommended.append((now, clamp(math.ceil(queue / 10), STEPPED.replicas)))
        if d.replicas < current:
            downs += 1
            window = [r for t, r in recommended if t > now - timedelta(seconds=30)]
            assert d.replicas >= min(current, max(window)), "never below the window's highest recommendation"
            start = _count_at(timeline, now - timedelta(seconds=30))
            assert d.replicas >= min(current, int(start * 0.5)), "never more than 50% of the period's start"
        elif d.replicas > current:
            start = _count_at(timeline, now - timedelta(seconds=15))
            assert d.replicas <= max(current, start + 4, 2 * start), "never more than 4 pods or 100% per 15s"
        if d.replicas != current:
            timeline.append((now, d.replicas))
        state, current = d.state, d.replicas
    return downs


def test_scale_downs_respect_the_window_and_the_step_limits_and_do_happen() -> None:
    outcomes: list[int] = []

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(RUNS)
    def check(runs: list[tuple[float, int]]) -> None:
        downs = _check_run(runs)
        event(f"scaled down: {'yes' if downs else 'no'}")
        outcomes.append(downs)

    check()
    assert sum(1 for downs in outcomes if downs) >= 40, "the property must be exercised by real scale-downs"
