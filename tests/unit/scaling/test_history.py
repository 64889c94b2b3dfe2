"""The engine's history in status: exact timestamps, tolerant reading, bounded size."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api.status import HISTORY_MAX_ITEMS, ScalableServiceStatus
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals
from tests.unit.scaling.cases import NOW, behaving

T = datetime(2026, 11, 25, 8, 0, 1, 123456, tzinfo=UTC)


def test_status_keeps_sub_second_timestamps_and_round_trips() -> None:
    state = EngineState(recommendations=((T, 4),), scale_events=((T, 2),), metrics_failures=1, last_scale_time=T)
    status = state.to_status()
    assert status == {"recommendations": [{"time": "2026-11-25T08:00:01.123456Z", "replicas": 4}],
                      "scaleEvents": [{"time": "2026-11-25T08:00:01.123456Z", "change": 2}],
                      "metricsFailures": 1, "lastScaleTime": "2026-11-25T08:00:01.123456Z"}
    assert EngineState.from_status(status) == state
    ScalableServiceStatus.model_validate(status)  # fits the status schema


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-11-25T08:00:01Z", T.replace(microsecond=0)),
    ("2026-11-25T08:00:01.123456Z", T),
    ("2026-11-25T08:00:01.123Z", T.replace(microsecond=123000)),
    ("2026-11-25T09:00:01.123456+01:00", T),
    ("2026-11-25t08:00:01z", T.replace(microsecond=0)),
])
def test_status_times_are_read_with_whole_or_fractional_seconds(text: str, moment: datetime) -> None:
    state = EngineState.from_status({"recommendations": [{"time": text, "replicas": 3}], "lastScaleTime": text})
    assert state.recommendations == ((moment, 3),) and state.last_scale_time == moment


def test_a_naive_clock_is_written_as_utc() -> None:
    naive = datetime(2026, 11, 25, 8, 0, 1)
    assert EngineState(last_scale_time=naive).to_status()["lastScaleTime"] == "2026-11-25T08:00:01.000000Z"


GOOD = {"time": "2026-11-25T08:00:01Z", "replicas": 3}
MALFORMED: list[tuple[str, Any]] = [
    ("bad-time", {"time": "yesterday", "replicas": 3}),
    ("date-only", {"time": "2026-11-25", "replicas": 3}),
    ("time-not-a-string", {"time": 1764057601, "replicas": 3}),
    ("replicas-a-string", {"time": "2026-11-25T08:00:01Z", "replicas": "3"}),
    ("replicas-fractional", {"time": "2026-11-25T08:00:01Z", "replicas": 3.5}),
    ("replicas-a-bool", {"time": "2026-11-25T08:00:01Z", "replicas": True}),
    ("replicas-negative", {"time": "2026-11-25T08:00:01Z", "replicas": -1}),
    ("missing-replicas", {"time": "2026-11-25T08:00:01Z"}),
    ("missing-time", {"replicas": 3}),
    ("not-a-mapping", ["2026-11-25T08:00:01Z", 3]),
    ("null", None),
]


@pytest.mark.parametrize("entry", [pytest.param(e, id=i) for i, e in MALFORMED])
def test_a_malformed_recommendation_is_skipped_never_raised(entry: Any) -> None:
    state = EngineState.from_status({"recommendations": [entry, GOOD]})
    assert state.recommendations == ((T.replace(microsecond=0), 3),)


@pytest.mark.parametrize("status", [
    {"scaleEvents": [{"time": "2026-11-25T08:00:01Z", "change": "+2"}, {"time": "nope", "change": 1}]},
    {"scaleEvents": "not a list", "recommendations": {"time": "x"}},
    {"metricsFailures": "three", "lastScaleTime": "not a time"},
    {"metricsFailures": -2, "lastScaleTime": 12},
    {"recommendations": None, "scaleEvents": None, "metricsFailures": None, "lastScaleTime": None},
])
def test_malformed_status_fields_read_as_empty(status: dict[str, Any]) -> None:
    assert EngineState.from_status(status) == EngineState()


def test_a_status_that_is_not_a_mapping_reads_as_empty() -> None:
    assert EngineState.from_status([]) == EngineState()  # type: ignore[arg-type]


def test_a_good_scale_event_survives_its_bad_neighbours() -> None:
    state = EngineState.from_status({"scaleEvents": [{"time": "2026-11-25T08:00:01Z", "change": -2}, {"change": 1}],
                                     "metricsFailures": 2.0})
    assert state.scale_events == ((T.replace(microsecond=0), -2),) and state.metrics_failures == 2


# Bounds: the CRD caps both lists (maxItems); a 1 s interval under a 1 h window must still fit.
HOUR = {"stabilizationWindow": "1h"}


def _run(queues: list[float], up: dict[str, Any], down: dict[str, Any]) -> tuple[EngineState, int]:
    s = behaving(up, down, high=10000)
    state, current = EngineState(), 1
    for i, queue in enumerate(queues):
        d = decide(s, Signals(queue_depth=queue), current, state, NOW + timedelta(seconds=i))
        state, current = d.state, d.replicas
    return state, current


def test_a_long_falling_load_under_long_windows_stays_within_the_status_caps() -> None:
    # Every recommendation is lower than the one before: the exact scale-down ceiling would need
    # them all, so the history is compressed, never grown past the cap.
    queues = [float(100000 - 20 * i) for i in range(3000)]
    state, _ = _run(queues, {"stabilizationWindow": "1h"}, HOUR)
    status = state.to_status()
    assert len(status["recommendations"]) <= HISTORY_MAX_ITEMS
    assert len(status["scaleEvents"]) <= HISTORY_MAX_ITEMS
    ScalableServiceStatus.model_validate(status)


def test_flapping_every_second_under_long_periods_stays_within_the_status_caps() -> None:
    queues = [5000.0 if i % 2 else 10.0 for i in range(3000)]
    state, _ = _run(queues, {"maxStepPods": 1, "period": "1h"}, {"maxStepPods": 1, "period": "1h"})
    assert len(state.scale_events) <= HISTORY_MAX_ITEMS
    assert len(state.recommendations) <= HISTORY_MAX_ITEMS


def _window_max(history: tuple[tuple[datetime, int], ...], now: datetime, window: timedelta) -> int | None:
    inside = [r for t, r in history if t > now - window]
    return max(inside) if inside else None


def _window_min(history: tuple[tuple[datetime, int], ...], now: datetime, window: timedelta) -> int | None:
    inside = [r for t, r in history if t > now - window]
    return min(inside) if inside else None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7200), st.integers(0, 60)), max_size=1200),
       st.integers(0, 3600), st.integers(0, 3600))
def test_bounding_keeps_every_window_max_and_min_exact_when_it_fits(entries: list[tuple[int, int]], up: int,
                                                                    down: int) -> None:
    history = tuple(sorted((NOW - timedelta(seconds=age), r) for age, r in entries))
    s = behaving({"stabilizationWindow": f"{up}s"}, {"stabilizationWindow": f"{down}s"})
    kept = EngineState(recommendations=history).bounded(s.scaling.behavior, NOW).recommendations
    assert len(kept) <= HISTORY_MAX_ITEMS
    # Counts of 0..60: each staircase (window max, window min) holds at most 61 entries, so the
    # history fits the cap without compression and every later window is answered exactly.
    for later in (0, 1, 30, 299, 1800, 3599):
        moment = NOW + timedelta(seconds=later)
        assert _window_max(kept, moment, timedelta(seconds=down)) == _window_max(
            history, moment, timedelta(seconds=down))
        assert _window_min(kept, moment, timedelta(seconds=up)) == _window_min(
            history, moment, timedelta(seconds=up))


def test_compressed_history_errs_towards_holding_replicas() -> None:
    # 3,600 strictly falling recommendations, one a second: more than the cap can hold exactly.
    history = tuple((NOW - timedelta(seconds=3599 - i), 10000 - i) for i in range(3600))
    s = behaving(down=HOUR)
    kept = EngineState(recommendations=history).bounded(s.scaling.behavior, NOW).recommendations
    assert len(kept) <= HISTORY_MAX_ITEMS
    assert kept[-1] == history[-1], "the newest recommendation is kept as it is"
    for later in random.Random(7).sample(range(3600), 200):
        moment = NOW + timedelta(seconds=later)
        exact = _window_max(history, moment, timedelta(hours=1))
        kept_max = _window_max(kept, moment, timedelta(hours=1))
        assert exact is not None and kept_max is not None
        # never lower; higher by at most one bucket (an hour over 255 buckets: 15 s, 15 replicas here)
        assert exact <= kept_max <= exact + 15
