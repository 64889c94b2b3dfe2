"""Knative Serving's KPA (Knative Pod Autoscaler) on concurrency, as a baseline. Pure: no I/O.

Sources, knative/serving:
- pkg/autoscaler/scaling/autoscaler.go (`Scale`), every tick (2 s, multiscaler.go tickInterval):
  ready = max(1, ready pods); the stable and panic counts are ceil(average concurrency / target)
  over the stable window (60 s) and the panic window, each kept within [floor(ready /
  max-scale-down-rate), ceil(max-scale-up-rate × ready)] (rates 2 and 1000). Panic starts when
  the panic count / ready reaches the panic threshold (200 %); every tick still over it moves the
  panic time to now, and panic ends on the first tick under it after more than a stable window
  since that time. In panic the answer is the larger of the two counts, and never lower than the
  highest answered since panic began (no scale-down while panicking); otherwise the stable count.
  With scale-down-delay (default 0, off) the answer is the highest of those within the delay.
  An autoscaler created with more than one ready pod starts in panic at that count. No stable
  data (metrics.ErrNoData) is no decision: the count stays.
- pkg/autoscaler/config/config.go: the defaults above, container-concurrency-target-percentage
  70, container-concurrency-target-default 100, panic-window-percentage 10.
- pkg/reconciler/autoscaling/resources/target.go (`ResolveMetricTarget`): the target per pod is
  max(1, total × utilization), total being containerConcurrency when set (else
  container-concurrency-target-default), or the autoscaling.knative.dev/target annotation
  (`target`), capped by containerConcurrency when that is set.
- pkg/reconciler/autoscaling/resources/metric.go (`MakeMetric`): the panic window is the stable
  window × panic-window-percentage / 100, rounded to the second, at least one second.
- pkg/reconciler/autoscaling/kpa/scaler.go: the answer is kept within min-scale and max-scale.

Departures: min-scale is at least 1, so there is no scale to zero in this comparison (the
activator, the scale-to-zero grace period and the target burst capacity, which decides whether
the activator stays in the request path, are left out). The collector's window averages are the
observatory's; a panic window without data averages 0, as the collector's WindowAverage does
after a window without writes, and a non-finite average is taken as no data. scale-down-delay
keeps the highest answer of the last `scale_down_delay_seconds` exactly rather than in 2 s
buckets (max.TimeWindow).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from spillway.sim.peers.hpa import variant_name
from spillway.sim.policy import Observatory

__all__ = ["Knative", "tuned_grid"]

TICK_SECONDS = 2.0  # pkg/autoscaler/scaling/multiscaler.go tickInterval
TARGET_UTILIZATION = 0.7  # config.go container-concurrency-target-percentage 70
CONTAINER_CONCURRENCY_TARGET_DEFAULT = 100.0  # config.go container-concurrency-target-default
STABLE_WINDOW_SECONDS = 60.0  # config.go stable-window
PANIC_WINDOW_PERCENTAGE = 10.0  # config.go panic-window-percentage
PANIC_THRESHOLD_PERCENTAGE = 200.0  # config.go panic-threshold-percentage
MAX_SCALE_UP_RATE = 1000.0  # config.go max-scale-up-rate
MAX_SCALE_DOWN_RATE = 2.0  # config.go max-scale-down-rate


class Knative:
    """A KPA-class revision; `container_concurrency` is the revision's containerConcurrency (the
    replica's worker count; 0 means unset) and `target` the autoscaling.knative.dev/target
    annotation (None: unset)."""

    def __init__(self, min_replicas: int, max_replicas: int, *, container_concurrency: int = 0,
                 target: float | None = None, target_utilization: float = TARGET_UTILIZATION,
                 container_concurrency_target_default: float = CONTAINER_CONCURRENCY_TARGET_DEFAULT,
                 stable_window_seconds: float = STABLE_WINDOW_SECONDS,
                 panic_window_percentage: float = PANIC_WINDOW_PERCENTAGE,
                 panic_threshold_percentage: float = PANIC_THRESHOLD_PERCENTAGE,
                 max_scale_up_rate: float = MAX_SCALE_UP_RATE, max_scale_down_rate: float = MAX_SCALE_DOWN_RATE,
                 scale_down_delay_seconds: float = 0.0, tick_seconds: float = TICK_SECONDS) -> None:
        if not 1 <= min_replicas <= max_replicas:
            raise ValueError(f"Knative here needs 1 <= min-scale <= max-scale, got {min_replicas}, {max_replicas}")
        if not (0 < target_utilization <= 1 and max_scale_up_rate > 1 and max_scale_down_rate > 1
                and stable_window_seconds >= 1 and tick_seconds > 0 and scale_down_delay_seconds >= 0):
            raise ValueError("Knative's config.go validation refuses these settings")
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        total = float(container_concurrency) if container_concurrency else container_concurrency_target_default
        if target is not None:
            total = min(target, container_concurrency) if container_concurrency else target
        self.target = max(1.0, total * target_utilization)
        self.stable_window = stable_window_seconds
        self.panic_window = max(1.0, float(round(stable_window_seconds * panic_window_percentage / 100)))
        self.panic_threshold = panic_threshold_percentage / 100
        self.max_scale_up_rate, self.max_scale_down_rate = max_scale_up_rate, max_scale_down_rate
        self.scale_down_delay = scale_down_delay_seconds
        self.tick_seconds = tick_seconds
        self.name = variant_name("Knative", {
            "target": (target, None), "utilization": (target_utilization, TARGET_UTILIZATION),
            "ccDefault": (container_concurrency_target_default, CONTAINER_CONCURRENCY_TARGET_DEFAULT),
            "stable": (stable_window_seconds, STABLE_WINDOW_SECONDS),
            "panicWindow": (panic_window_percentage, PANIC_WINDOW_PERCENTAGE),
            "panicThreshold": (panic_threshold_percentage, PANIC_THRESHOLD_PERCENTAGE),
            "up": (max_scale_up_rate, MAX_SCALE_UP_RATE), "down": (max_scale_down_rate, MAX_SCALE_DOWN_RATE),
            "delay": (scale_down_delay_seconds, 0.0), "tick": (tick_seconds, TICK_SECONDS),
        })
        self._created = False
        self.panic_time: float | None = None
        self.max_panic_pods = 0
        self._delayed: deque[tuple[float, int]] = deque()

    def decide(self, observatory: Observatory, current: int) -> int:
        now = observatory.now
        hold = max(self.min_replicas, min(self.max_replicas, current))
        if not math.isfinite(now):
            return hold
        ready_pods = observatory.ready_pods()
        if not self._created:  # newAutoscaler: more than one ready pod starts it in panic
            self._created = True
            if ready_pods > 1:
                self.panic_time, self.max_panic_pods = now, ready_pods
        stable = observatory.concurrency_average(self.stable_window)
        panic = observatory.concurrency_average(self.panic_window)
        if stable is None or not math.isfinite(stable):
            return hold  # ErrNoData: the decider keeps its last answer
        if panic is None or not math.isfinite(panic):
            panic = 0.0
        return max(self.min_replicas, min(self.max_replicas, self._scale(now, max(1, ready_pods), stable, panic)))

    def _scale(self, now: float, ready: int, stable: float, panic: float) -> int:
        max_scale_up = math.ceil(self.max_scale_up_rate * ready)
        max_scale_down = math.floor(ready / self.max_scale_down_rate)  # the revision is reachable
        stable_pods, panic_pods = math.ceil(stable / self.target), math.ceil(panic / self.target)
        desired_stable = min(max(stable_pods, max_scale_down), max_scale_up)
        desired_panic = min(max(panic_pods, max_scale_down), max_scale_up)

        over_threshold = panic_pods / ready >= self.panic_threshold
        if over_threshold:
            self.panic_time = now  # begins panic, or extends it
        elif self.panic_time is not None and self.panic_time + self.stable_window < now:
            self.panic_time, self.max_panic_pods = None, 0  # the surge has reached the stable window

        desired = desired_stable
        if self.panic_time is not None:
            desired = max(desired, desired_panic)
            self.max_panic_pods = max(self.max_panic_pods, desired)  # never down while panicking
            desired = self.max_panic_pods
        if self.scale_down_delay > 0:
            self._delayed.append((now, desired))
            while self._delayed and self._delayed[0][0] <= now - self.scale_down_delay:
                self._delayed.popleft()
            desired = max(count for _, count in self._delayed)
        return desired


def tuned_grid() -> list[dict[str, Any]]:
    """Configurations to pick the best of per trace; the first is the default."""
    return [
        {},
        {"target_utilization": 0.5},
        {"target_utilization": 0.9},
        {"stable_window_seconds": 30.0},
        {"stable_window_seconds": 120.0},
        {"panic_threshold_percentage": 150.0},
        {"scale_down_delay_seconds": 60.0},
    ]
