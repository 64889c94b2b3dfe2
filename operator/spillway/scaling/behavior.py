"""How fast the count may move: tolerance, stabilization windows and step limits, with the HPA's
semantics (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
#configurable-scaling-behavior) down to its boundaries and rounding, so that a behavior written
for an HPA means the same here. Each rule names the function of kubernetes/kubernetes
pkg/controller/podautoscaler it follows. Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from spillway.api.spec import Behavior, ScalingRules
from spillway.api.units import format_duration
from spillway.scaling.history import Entry, EngineState, policy_periods
from spillway.scaling.proposals import Proposal

__all__ = ["EngineState", "Limited", "Tolerances", "limit_steps", "stabilize", "tolerances", "tolerate"]

NO_LIMIT = 10**9


@dataclass(frozen=True)
class Limited:
    replicas: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tolerances:
    scale_down: float
    scale_up: float

    def is_within(self, ratio: float) -> bool:
        # replica_calculator.go, Tolerances.isWithin
        return 1.0 - self.scale_down <= ratio <= 1.0 + self.scale_up

    def __str__(self) -> str:
        if self.scale_down == self.scale_up:
            return f"{self.scale_up:g}"
        return f"-{self.scale_down:g}/+{self.scale_up:g}"


def tolerances(behavior: Behavior) -> Tolerances:
    """Each direction's own tolerance (HPAScalingRules.tolerance), else the global one."""
    down, up = behavior.scale_down.tolerance, behavior.scale_up.tolerance
    return Tolerances(behavior.tolerance if down is None else down, behavior.tolerance if up is None else up)


def tolerate(proposal: Proposal, current: int, within: Tolerances) -> Proposal:
    """The proposal a signal makes after tolerance: the current count when its ratio to its target
    lies within the tolerances, else its own count, ceil(usage / target). The check is on the
    ratio before rounding (replica_calculator.go, GetExternalPerPodMetricReplicas and
    getUsageRatioReplicaCount); with no replicas there is no ratio and no tolerance."""
    if current <= 0 or proposal.ratio is None or not within.is_within(proposal.ratio):
        return proposal
    if proposal.replicas == current:
        return proposal
    return replace(proposal, replicas=current, held_by_tolerance=True)


def stabilize(proposed: int, current: int, history: tuple[Entry, ...], behavior: Behavior,
              now: datetime) -> Limited:
    """Scaling up takes the lowest recommendation of the up window; scaling down the highest of
    the down window (a brief dip never removes replicas)."""
    def within(window: timedelta) -> list[int]:
        # horizontal.go, stabilizeRecommendationWithBehaviors: counts if timestamp.After(now - window)
        return [r for t, r in history if t > now - window] + [proposed]

    up_floor = min(within(behavior.scale_up.stabilization_window))
    down_ceiling = max(within(behavior.scale_down.stabilization_window))
    result = min(max(current, up_floor), down_ceiling)
    notes = []
    if result != proposed:
        window = behavior.scale_down if proposed < current else behavior.scale_up
        notes.append(f"{'scale-down' if proposed < current else 'scale-up'} window "
                     f"{format_duration(window.stabilization_window)} holds {result}")
    return Limited(result, notes)


def limit_steps(desired: int, current: int, events: tuple[Entry, ...], behavior: Behavior,
                now: datetime) -> Limited:
    if desired > current:
        limit = _up_limit(current, events, behavior.scale_up, now)
        if desired > limit:
            return Limited(limit, [f"scale-up step limit {_policy(behavior.scale_up)} allows {limit}"])
    elif desired < current:
        limit = _down_limit(current, events, behavior.scale_down, now)
        if desired < limit:
            return Limited(limit, [f"scale-down step limit {_policy(behavior.scale_down)} allows {limit}"])
    return Limited(desired)


def _period_start(current: int, events: tuple[Entry, ...], period: timedelta, now: datetime) -> int:
    """The count at the start of the period: periodStartReplicas = current − added + removed, both
    directions' events counting (horizontal.go, calculateScaleUpLimitWithScalingRules); an event
    counts if timestamp.After(now − period) (getReplicasChangePerPeriod)."""
    return current - sum(change for moment, change in events if moment > now - period)


def _up_limit(current: int, events: tuple[Entry, ...], rules: ScalingRules, now: datetime) -> int:
    # horizontal.go, calculateScaleUpLimitWithScalingRules
    if rules.select_policy == "Disabled":
        return current
    pods_period, percent_period = policy_periods(rules)
    limits = []
    if rules.max_step_pods is not None:
        limits.append(_period_start(current, events, pods_period, now) + rules.max_step_pods)
    if rules.max_step_percent is not None:
        start = _period_start(current, events, percent_period, now)
        limits.append(math.ceil(start * (1 + rules.max_step_percent / 100)))  # rounded up, as the HPA
    if not limits:
        return NO_LIMIT
    # convertDesiredReplicasWithBehaviorRate: a limit below current means "not now", never "down"
    return max(current, max(limits) if rules.select_policy == "Max" else min(limits))


def _down_limit(current: int, events: tuple[Entry, ...], rules: ScalingRules, now: datetime) -> int:
    # horizontal.go, calculateScaleDownLimitWithBehaviors
    if rules.select_policy == "Disabled":
        return current
    pods_period, percent_period = policy_periods(rules)
    limits = []
    if rules.max_step_pods is not None:
        limits.append(_period_start(current, events, pods_period, now) - rules.max_step_pods)
    if rules.max_step_percent is not None:
        start = _period_start(current, events, percent_period, now)
        limits.append(int(start * (1 - rules.max_step_percent / 100)))  # truncated, as Go's int32()
    if not limits:
        return 0
    # "Max" allows the larger change, which for scaling down is the lower limit.
    return min(current, min(limits) if rules.select_policy == "Max" else max(limits))


def _policy(rules: ScalingRules) -> str:
    if rules.select_policy == "Disabled":
        return "(selectPolicy Disabled)"
    pods_period, percent_period = policy_periods(rules)
    parts = []
    if rules.max_step_pods is not None:
        parts.append(f"{rules.max_step_pods} pods")
    if rules.max_step_percent is not None:
        parts.append(f"{rules.max_step_percent}%")
    if len(parts) == 2 and pods_period != percent_period:
        return f"({parts[0]} per {format_duration(pods_period)} or {parts[1]} per {format_duration(percent_period)})"
    period = pods_period if rules.max_step_pods is not None else percent_period
    joined = " or ".join(parts) if parts else "disabled"
    return f"({joined} per {format_duration(period)})"
