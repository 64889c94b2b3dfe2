"""How fast the count may move: tolerance, stabilization windows and step limits, with the
HPA's semantics (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
#configurable-scaling-behavior), and the history they need, kept in status so a restarted
operator continues without a jump. Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from spillway.api.spec import Behavior, ScalingRules
from spillway.api.units import format_duration

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NO_LIMIT = 10**9


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class EngineState:
    recommendations: tuple[tuple[datetime, int], ...] = ()
    scale_events: tuple[tuple[datetime, int], ...] = ()
    metrics_failures: int = 0
    last_scale_time: datetime | None = None

    def to_status(self) -> dict[str, Any]:
        return {
            "recommendations": [{"time": t.strftime(_FORMAT), "replicas": r} for t, r in self.recommendations],
            "scaleEvents": [{"time": t.strftime(_FORMAT), "change": c} for t, c in self.scale_events],
            "metricsFailures": self.metrics_failures,
            "lastScaleTime": self.last_scale_time.strftime(_FORMAT) if self.last_scale_time else None,
        }

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> EngineState:
        last = status.get("lastScaleTime")
        return cls(
            recommendations=tuple((_time(r["time"]), int(r["replicas"])) for r in status.get("recommendations") or []),
            scale_events=tuple((_time(e["time"]), int(e["change"])) for e in status.get("scaleEvents") or []),
            metrics_failures=int(status.get("metricsFailures") or 0),
            last_scale_time=_time(last) if last else None,
        )

    def pruned(self, behavior: Behavior, now: datetime) -> EngineState:
        keep_recs = max(behavior.scale_up.stabilization_window, behavior.scale_down.stabilization_window)
        keep_events = max(behavior.scale_up.period, behavior.scale_down.period)
        return replace(self,
                       recommendations=tuple((t, r) for t, r in self.recommendations if now - t <= keep_recs),
                       scale_events=tuple((t, c) for t, c in self.scale_events if now - t <= keep_events))


@dataclass(frozen=True)
class Limited:
    replicas: int
    notes: list[str] = field(default_factory=list)


def within_tolerance(proposed: int, current: int, tolerance: float) -> bool:
    return current > 0 and abs(proposed - current) <= tolerance * current + 1e-9


def stabilize(proposed: int, current: int, history: tuple[tuple[datetime, int], ...], behavior: Behavior,
              now: datetime) -> Limited:
    """Scaling up takes the lowest recommendation of the up window; scaling down the highest of
    the down window (a brief dip never removes replicas)."""
    def within(window: timedelta) -> list[int]:
        return [r for t, r in history if now - t <= window] + [proposed]

    up_floor = min(within(behavior.scale_up.stabilization_window))
    down_ceiling = max(within(behavior.scale_down.stabilization_window))
    result = current
    if result < up_floor:
        result = up_floor
    if result > down_ceiling:
        result = down_ceiling
    notes = []
    if result != proposed:
        window = behavior.scale_down if proposed < current else behavior.scale_up
        notes.append(f"{'scale-down' if proposed < current else 'scale-up'} window "
                     f"{_fmt(window.stabilization_window)} holds {result}")
    return Limited(result, notes)


def limit_steps(desired: int, current: int, events: tuple[tuple[datetime, int], ...], behavior: Behavior,
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


def _up_limit(current: int, events: tuple[tuple[datetime, int], ...], rules: ScalingRules, now: datetime) -> int:
    if rules.select_policy == "Disabled":
        return current
    added = sum(c for t, c in events if c > 0 and now - t < rules.period)
    start = current - added
    limits = []
    if rules.max_step_pods is not None:
        limits.append(start + rules.max_step_pods)
    if rules.max_step_percent is not None:
        limits.append(math.ceil(start * (1 + rules.max_step_percent / 100)))
    if not limits:
        return NO_LIMIT
    return max(current, max(limits) if rules.select_policy == "Max" else min(limits))


def _down_limit(current: int, events: tuple[tuple[datetime, int], ...], rules: ScalingRules, now: datetime) -> int:
    if rules.select_policy == "Disabled":
        return current
    removed = -sum(c for t, c in events if c < 0 and now - t < rules.period)
    start = current + removed
    limits = []
    if rules.max_step_pods is not None:
        limits.append(start - rules.max_step_pods)
    if rules.max_step_percent is not None:
        limits.append(int(start * (1 - rules.max_step_percent / 100)))
    if not limits:
        return 0
    # "Max" allows the larger change, which for scaling down is the lower limit.
    return min(current, min(limits) if rules.select_policy == "Max" else max(limits))


def _policy(rules: ScalingRules) -> str:
    parts = []
    if rules.max_step_pods is not None:
        parts.append(f"{rules.max_step_pods} pods")
    if rules.max_step_percent is not None:
        parts.append(f"{rules.max_step_percent}%")
    joined = " or ".join(parts) if parts else "disabled"
    return f"({joined} per {_fmt(rules.period)})"


def _fmt(delta: timedelta) -> str:
    return format_duration(delta)
