"""The HPA's rules, one table row each, as Spillway applies them.

Sources: kubernetes/kubernetes pkg/controller/podautoscaler/replica_calculator.go (Tolerances.isWithin,
GetExternalPerPodMetricReplicas) and horizontal.go (recordInitialRecommendation,
stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors, getReplicasChangePerPeriod).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from spillway.api import SpecError
from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState, tolerances
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals
from tests.unit.scaling.cases import NOW, behaving

LONG_AGO = NOW - timedelta(hours=1)  # a history that is not empty, so no first-sight seed
SEEN = EngineState(recommendations=((LONG_AGO, 1),))


def rows(table: list[tuple[Any, ...]]) -> Any:
    """Table rows with the behaviour they state as the test id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


# Tolerance: replica_calculator.go, Tolerances.isWithin: (1 - down) <= ratio <= (1 + up), applied to
# each signal's ratio before rounding; within it the signal proposes the current count, else
# ceil(usage / target) (GetExternalPerPodMetricReplicas).
TOLERANCE = [
    ("within-tolerance-proposes-current-where-ceil-would-add-one",
     behaving(tolerance=0.1), Signals(queue_depth=105), 10, 10),
    ("outside-tolerance-proposes-ceil-even-when-the-count-moves-less-than-the-tolerance",
     behaving(tolerance=0.1), Signals(queue_depth=178), 20, 18),
    ("ratio-exactly-one-plus-tolerance-is-within",
     behaving(tolerance=0.1), Signals(queue_depth=110), 10, 10),
    ("ratio-exactly-one-minus-tolerance-is-within",
     behaving(tolerance=0.1), Signals(queue_depth=90), 10, 10),
    ("scale-up-tolerance-overrides-the-global-one",
     behaving(up={"tolerance": 0.05}, tolerance=0.1), Signals(queue_depth=107), 10, 11),
    ("scale-down-tolerance-overrides-the-global-one",
     behaving(down={"tolerance": 0.3}, tolerance=0.1), Signals(queue_depth=75), 10, 10),
    ("scale-down-tolerance-does-not-widen-scale-up",
     behaving(down={"tolerance": 0.3}, tolerance=0.1), Signals(queue_depth=125), 10, 13),
    ("unset-direction-tolerance-takes-the-global-one",
     behaving(tolerance=0.2), Signals(queue_depth=85), 10, 10),
    ("utilization-ratio-is-in-flight-over-concurrency-times-utilization-times-current",
     behaving(tolerance=0.1), Signals(in_flight=1250), 10, 9),
    ("each-signal-gets-its-own-tolerance-and-the-largest-proposal-wins",
     behaving(tolerance=0.1), Signals(queue_depth=104, in_flight=1250), 10, 10),
    ("with-zero-replicas-no-tolerance-applies",
     behaving(tolerance=0.5), Signals(queue_depth=15), 0, 2),
]


@pytest.mark.parametrize(("s", "signals", "current", "expected"), rows(TOLERANCE))
def test_tolerance_applies_to_each_ratio_before_rounding(s: ScalableServiceSpec, signals: Signals, current: int,
                                                        expected: int) -> None:
    assert decide(s, signals, current, SEEN, NOW).replicas == expected


def test_tolerance_is_named_in_the_reason() -> None:
    d = decide(behaving(tolerance=0.1), Signals(queue_depth=105), 10, SEEN, NOW)
    assert d.reason == "queue 105 over 10 per replica -> 11 (ratio 1.05 within tolerance 0.1 of 10)"
    split = decide(behaving(down={"tolerance": 0.3}, tolerance=0.1), Signals(queue_depth=75), 10, SEEN, NOW)
    assert "ratio 0.75 within tolerance -0.3/+0.1 of 10" in split.reason


# Step limits: horizontal.go, calculateScaleUpLimitWithScalingRules and
# calculateScaleDownLimitWithBehaviors: periodStartReplicas = current - added + removed within each
# policy's own period; getReplicasChangePerPeriod counts events strictly after now - period.
UP = {"maxStepPods": 4, "maxStepPercent": 100, "period": "15s"}
DOWN = {"maxStepPercent": 10, "period": "60s"}
STEPS = [
    ("scale-down-budget-counts-from-the-period-start-before-a-scale-up-in-it",
     behaving(UP, DOWN), Signals(queue_depth=0), 14, ((NOW - timedelta(seconds=10), 4),), 9),
    ("scale-up-budget-counts-from-the-period-start-before-a-scale-down-in-it",
     behaving(UP, DOWN), Signals(queue_depth=900), 10, ((NOW - timedelta(seconds=5), -3),), 26),
    ("scale-up-pods-and-percent-from-the-current-count-without-events",
     behaving(UP, DOWN), Signals(queue_depth=900), 3, (), 7),
    ("each-policy-counts-the-events-of-its-own-period-max",
     behaving({"maxStepPods": 4, "podsPeriod": "60s", "maxStepPercent": 50, "percentPeriod": "15s"}),
     Signals(queue_depth=900), 10, ((NOW - timedelta(seconds=30), 4),), 15),
    ("each-policy-counts-the-events-of-its-own-period-min",
     behaving({"maxStepPods": 4, "podsPeriod": "60s", "maxStepPercent": 50, "percentPeriod": "15s",
               "selectPolicy": "Min"}),
     Signals(queue_depth=900), 10, ((NOW - timedelta(seconds=30), 4),), 10),
    ("unset-policy-periods-take-period",
     behaving({"maxStepPods": 4, "maxStepPercent": 50, "period": "60s"}),
     Signals(queue_depth=900), 10, ((NOW - timedelta(seconds=30), 4),), 10),
    ("an-event-exactly-one-period-old-no-longer-counts",
     behaving(UP), Signals(queue_depth=900), 8, ((NOW - timedelta(seconds=15), 4),), 16),
    ("an-event-just-inside-the-period-counts",
     behaving(UP), Signals(queue_depth=900), 8, ((NOW - timedelta(seconds=15) + timedelta(microseconds=1), 4),), 8),
    ("scale-down-min-policy-picks-the-smaller-change",
     behaving(down={"maxStepPods": 1, "maxStepPercent": 50, "selectPolicy": "Min"}),
     Signals(queue_depth=0), 10, (), 9),
    ("scale-down-max-policy-picks-the-larger-change",
     behaving(down={"maxStepPods": 1, "maxStepPercent": 50, "selectPolicy": "Max"}),
     Signals(queue_depth=0), 10, (), 5),
    ("scale-up-percent-rounds-up",
     behaving({"maxStepPercent": 50}), Signals(queue_depth=900), 3, (), 5),
    ("scale-down-percent-truncates",
     behaving(down={"maxStepPercent": 50}), Signals(queue_depth=0), 3, (), 1),
    ("disabled-direction-never-moves",
     behaving(down={"selectPolicy": "Disabled"}), Signals(queue_depth=0), 30, (), 30),
    ("no-policy-means-no-step-limit",
     behaving(), Signals(queue_depth=900), 3, (), 90),
]


@pytest.mark.parametrize(("s", "signals", "current", "events", "expected"), rows(STEPS))
def test_step_limits_count_both_directions_per_policy_period(s: ScalableServiceSpec, signals: Signals, current: int,
                                                             events: tuple[tuple[datetime, int], ...],
                                                             expected: int) -> None:
    state = EngineState(recommendations=SEEN.recommendations, scale_events=events)
    assert decide(s, signals, current, state, NOW).replicas == expected


def test_step_limit_reason_names_each_policy_with_its_period() -> None:
    s = behaving({"maxStepPods": 4, "podsPeriod": "1m", "maxStepPercent": 50, "percentPeriod": "15s"})
    d = decide(s, Signals(queue_depth=900), 10, SEEN, NOW)
    assert "scale-up step limit (4 pods per 1m or 50% per 15s) allows 15" in d.reason
    assert d.limited == "StepLimit"


# Stabilization: horizontal.go, stabilizeRecommendationWithBehaviors: a recommendation counts when
# its timestamp is strictly after now - window; up takes the window's lowest, down its highest.
WINDOW = {"stabilizationWindow": "5m"}
WINDOWS = [
    ("a-recommendation-exactly-one-window-old-no-longer-counts",
     behaving(down=WINDOW), Signals(queue_depth=0), 20, ((NOW - timedelta(minutes=5), 20),), 1),
    ("a-recommendation-just-inside-the-window-holds-the-count",
     behaving(down=WINDOW), Signals(queue_depth=0), 20,
     ((NOW - timedelta(minutes=5) + timedelta(microseconds=1), 20),), 20),
    ("scale-down-takes-the-highest-recommendation-of-the-window",
     behaving(down=WINDOW), Signals(queue_depth=0), 20, ((NOW - timedelta(minutes=4), 12),), 12),
    ("scale-up-takes-the-lowest-recommendation-of-the-window",
     behaving({"stabilizationWindow": "1m"}), Signals(queue_depth=200), 10, ((NOW - timedelta(seconds=30), 12),), 12),
    ("a-zero-window-ignores-every-earlier-recommendation",
     behaving(), Signals(queue_depth=0), 20, ((NOW - timedelta(microseconds=1), 20),), 1),
]


@pytest.mark.parametrize(("s", "signals", "current", "history", "expected"), rows(WINDOWS))
def test_stabilization_windows_have_the_hpa_boundaries(s: ScalableServiceSpec, signals: Signals, current: int,
                                                       history: tuple[tuple[datetime, int], ...],
                                                       expected: int) -> None:
    assert decide(s, signals, current, EngineState(recommendations=history), NOW).replicas == expected


def test_first_sight_seeds_the_history_so_a_new_workload_never_scales_down_at_once() -> None:
    # horizontal.go, recordInitialRecommendation: an empty history starts with the current count.
    s = behaving(down=WINDOW)
    first = decide(s, Signals(queue_depth=0), 20, EngineState(), NOW)
    assert first.replicas == 20 and first.limited == "Stabilizing"
    assert "scale-down window 5m holds 20" in first.reason
    assert (NOW, 20) in first.state.recommendations
    held = decide(s, Signals(queue_depth=0), 20, first.state, NOW + timedelta(minutes=4))
    assert held.replicas == 20
    after = decide(s, Signals(queue_depth=0), 20, held.state, NOW + timedelta(minutes=5))
    assert after.replicas == 1 and after.direction == "down"


def test_first_sight_with_a_scale_up_window_waits_that_window_too() -> None:
    s = behaving({"stabilizationWindow": "1m"})
    assert decide(s, Signals(queue_depth=300), 10, EngineState(), NOW).replicas == 10
    assert decide(s, Signals(queue_depth=300), 10, SEEN, NOW).replicas == 30


def test_the_history_stores_the_recommendation_after_tolerance() -> None:
    # horizontal.go stores prenormalizedDesiredReplicas, computed after each metric's tolerance:
    # a dip the tolerance holds must not lower the scale-down window's ceiling.
    s = behaving(down=WINDOW, tolerance=0.1)
    dip = decide(s, Signals(queue_depth=190), 20, SEEN, NOW)
    assert dip.replicas == 20 and dip.state.recommendations[-1] == (NOW, 20)
    later = decide(s, Signals(queue_depth=150), 20, dip.state, NOW + timedelta(minutes=1))
    assert later.replicas == 20, "the ceiling of the window is the held 20, not the raw 19"


def test_missing_data_floor_respects_max() -> None:
    s = behaving(high=40)
    partial = Signals(queue_depth=0, missing=frozenset({"in_flight"}))
    d = decide(s, partial, 50, SEEN, NOW)
    assert d.replicas == 40 and d.direction == "down"
    assert decide(s, Signals(missing=frozenset({"queue_depth"})), 50, SEEN, NOW).replicas == 40


def test_direction_tolerance_and_policy_periods_default_to_the_global_ones() -> None:
    rules = behaving().scaling.behavior.scale_down
    assert (rules.tolerance, rules.pods_period, rules.percent_period) == (None, None, None)
    assert str(tolerances(behaving(tolerance=0.2).scaling.behavior)) == "0.2"
    assert str(tolerances(behaving(up={"tolerance": 0.05}, tolerance=0.2).scaling.behavior)) == "-0.2/+0.05"
    with pytest.raises(SpecError, match="tolerance"):
        behaving(down={"tolerance": 1.5})
