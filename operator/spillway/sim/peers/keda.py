"""KEDA (2.20) scaling with Prometheus triggers, as a baseline: by default one on the queue
length; `triggers` gives a ScaledObject several (the queue, the request rate, the requests in
flight, each per replica), as one usually carries. The count is the HPA's that KEDA creates,
computed by hpa.py's controller (shared, not copied). Pure.

Sources, kedacore/keda:
- pkg/scalers/prometheus_scaler.go (`ExecutePromQuery`, `GetMetricsAndActivity`): one instant
  query; with ignoreNullValues (default true) an empty result, NaN or ±Inf reads 0, without it
  they are errors; a negative value passes as it is (the HPA takes a negative sum for an int64
  overflow and asks for all it may). Active means value > activationThreshold (default 0). The value reaches the HPA in milli-units and `threshold` becomes an AverageValue
  target (pkg/scalers/scaler.go, GenerateMetricInMili and GetMetricTargetMili, rounded to 0.001;
  metricType defaults to AverageValue).
- Several triggers: KEDA gives the HPA one external metric per trigger; the HPA takes the
  largest proposal (horizontal.go `computeReplicasForMetrics`), and when some metrics fail it
  still scales up on the others but never down (all failing, or some failing with the largest
  proposal below the current count: no change). The scale loop is active when any trigger is
  (pkg/scaling/scale_handler.go `getScaledObjectState`).
- controllers/keda/hpa.go: the HPA's minReplicas is minReplicaCount when above 0, else 1;
  maxReplicas is maxReplicaCount; spec.behavior only if advanced.horizontalPodAutoscalerConfig
  sets one (none by default, so the HPA normalizes without behavior). Its count is
  kubernetes' GetExternalPerPodMetricReplicas: ceil(value / threshold), unless value /
  (threshold × replicas) is within the tolerance, then horizontal.go's normalization.
- pkg/scaling/scale_handler.go: every HPA sync (15 s) asks KEDA's metrics adapter, which runs
  the query afresh unless the trigger sets useCachedMetrics (default false); with it, the
  adapter answers from the record the scale loop wrote at its last poll (falling back to a
  fresh query before the first).
- pkg/scaling/executor/scale_scaledobjects.go (`RequestScale`): the scale loop polls every
  pollingInterval (default 30 s, first at start) and only activates and deactivates. Active at 0
  replicas: scale to max(minReplicaCount, 1). Inactive with minReplicaCount 0: scale to 0 once
  cooldownPeriod (default 300 s, pkg/scaling/executor/scale_executor.go) has passed since the
  last active poll, or at once if it was never active. Inactive below minReplicaCount: back to
  it. A failed query with no fallback changes nothing. So with minReplicaCount ≥ 1, as in this
  comparison, neither period moves a count: pollingInterval only paces the cache when
  useCachedMetrics is on, and cooldownPeriod applies only to scaling to zero.

Departures: the HPA reads status.replicas for the per-pod ratio; here that is the count asked
last (a Deployment's pods exist, ready or not, as soon as it is scaled). The two loops tick on
the simulator's clock: `tick_seconds` is the greatest common divisor of the sync period and
pollingInterval, each loop runs when it falls due, and when both do the scale loop acts first
and the HPA reads its result. idleReplicaCount, fallback, scaling modifiers, the pause
annotations and the per-object phase offset of recent releases' scale loops are not modeled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from spillway.sim.peers.hpa import (
    DOWNSCALE_STABILIZATION_SECONDS,
    MAX_INT64,
    SYNC_SECONDS,
    TOLERANCE,
    HorizontalController,
    default_behavior,
    external_per_pod_replicas,
    moment,
    variant_name,
)
from spillway.sim.policy import Observatory

__all__ = ["KEDA", "Trigger", "tuned_grid"]

THRESHOLD = 10.0  # waiting requests per replica: Spillway's own queuePerReplica default, for a like comparison
POLLING_INTERVAL_SECONDS = 30.0  # keda.sh ScaledObject spec reference: pollingInterval "Default: 30"
COOLDOWN_PERIOD_SECONDS = 300.0  # pkg/scaling/executor/scale_executor.go defaultCooldownPeriod
_DUE = 1e-6  # seconds of float drift a due time tolerates


@dataclass(frozen=True)
class Trigger:
    """One Prometheus trigger, its query and its AverageValue `threshold` per replica: `queue`
    reads the balancer's queued requests, `rate` its requests per second over a minute, `inflight`
    its requests in flight (waiting or served), all summed over the balancer's pods, as the
    HAProxy preset's queries read them."""

    metric: Literal["queue", "rate", "inflight"]
    threshold: float

    def __post_init__(self) -> None:
        if self.metric not in ("queue", "rate", "inflight"):
            raise ValueError(f"a trigger reads queue, rate or inflight, not {self.metric!r}")

    def __str__(self) -> str:
        return f"{self.metric}:{self.threshold:g}"


def milli(value: float) -> int:
    """A metric value as the HPA receives it: rounded to 0.001 (quantityFromFloat64), in milli-units,
    within int64."""
    return max(-MAX_INT64 - 1, min(MAX_INT64, int(Decimal(f"{value:.3f}").scaleb(3))))


def _common_period(*seconds: float) -> float:
    millis = 0
    for period in seconds:
        millis = math.gcd(millis, max(1, round(period * 1000)))
    return millis / 1000


class KEDA:
    """A ScaledObject with Prometheus triggers (by default one on the queue at `threshold`);
    `min_replicas` is its minReplicaCount (0 allows scaling to zero), `max_replicas` its
    maxReplicaCount."""

    def __init__(self, min_replicas: int, max_replicas: int, *, threshold: float = THRESHOLD,
                 activation_threshold: float = 0.0, ignore_null_values: bool = True,
                 use_cached_metrics: bool = False, polling_interval_seconds: float = POLLING_INTERVAL_SECONDS,
                 cooldown_period_seconds: float = COOLDOWN_PERIOD_SECONDS, sync_seconds: float = SYNC_SECONDS,
                 tolerance: float = TOLERANCE,
                 downscale_stabilization_seconds: float = DOWNSCALE_STABILIZATION_SECONDS,
                 with_behavior: bool = False, triggers: tuple[Trigger, ...] | None = None) -> None:
        if min_replicas < 0 or max_replicas < max(1, min_replicas):
            raise ValueError(f"KEDA needs 0 <= minReplicaCount <= maxReplicaCount, got {min_replicas}, {max_replicas}")
        self.triggers = triggers if triggers is not None else (Trigger("queue", threshold),)
        if not self.triggers:
            raise ValueError("a ScaledObject needs at least one trigger")
        self.targets_milli = tuple(milli(t.threshold) for t in self.triggers)
        if min(self.targets_milli) < 1 or not (polling_interval_seconds > 0 and sync_seconds > 0):
            raise ValueError("KEDA needs thresholds of at least 0.001 and positive periods")
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.activation_threshold = activation_threshold
        self.ignore_null_values, self.use_cached_metrics = ignore_null_values, use_cached_metrics
        self.polling_seconds, self.sync_seconds = polling_interval_seconds, sync_seconds
        self.cooldown_seconds = cooldown_period_seconds
        self.tick_seconds = _common_period(sync_seconds, polling_interval_seconds)
        behavior = default_behavior(downscale_stabilization_seconds, tolerance) if with_behavior else None
        self.hpa = HorizontalController(max(1, min_replicas), max_replicas, behavior=behavior, tolerance=tolerance,
                                        downscale_stabilization_seconds=downscale_stabilization_seconds)
        self.name = variant_name("KEDA", {
            "threshold": (threshold, THRESHOLD), "activation": (activation_threshold, 0.0),
            "ignoreNull": (ignore_null_values, True), "cached": (use_cached_metrics, False),
            "polling": (polling_interval_seconds, POLLING_INTERVAL_SECONDS),
            "cooldown": (cooldown_period_seconds, COOLDOWN_PERIOD_SECONDS), "sync": (sync_seconds, SYNC_SECONDS),
            "tolerance": (tolerance, TOLERANCE),
            "downscale": (downscale_stabilization_seconds, DOWNSCALE_STABILIZATION_SECONDS),
            "behavior": (with_behavior, False),
            "triggers": ("+".join(map(str, self.triggers)), str(Trigger("queue", threshold))),
        })
        self._next_poll: float | None = None
        self._next_sync: float | None = None
        self._last_active: float | None = None
        self._polled = False  # whether the scale loop has written a cache record yet
        self._cached: tuple[float | None, ...] = ()  # that record's values, an error as None

    def decide(self, observatory: Observatory, current: int) -> int:
        seconds = observatory.now
        now = moment(seconds)
        if now is None:
            return max(self.min_replicas, min(self.max_replicas, current))
        if self._next_poll is None or self._next_sync is None:
            self._next_poll = self._next_sync = seconds
        count = current
        if seconds >= self._next_poll - _DUE:
            self._next_poll = _after(self._next_poll, self.polling_seconds, seconds)
            count = self._scale_loop(observatory, count, seconds)
        if seconds >= self._next_sync - _DUE:
            self._next_sync = _after(self._next_sync, self.sync_seconds, seconds)
            within, replicas = self.hpa.tolerances, count

            def propose() -> int | None:
                # computeReplicasForMetrics: the largest proposal of the metrics that answered;
                # with any failing, an error unless that proposal scales up
                read = zip(self._read(observatory), self.targets_milli, strict=True)
                proposals = [None if value is None else external_per_pod_replicas(replicas, milli(value), target, within)
                             for value, target in read]
                found = [p for p in proposals if p is not None]
                largest = max(found, default=0)
                if not found or (len(found) < len(proposals) and largest < replicas):
                    return None
                return largest

            count = self.hpa.reconcile(count, now, propose)
        return count

    def _query(self, observatory: Observatory) -> tuple[float | None, ...]:
        """Each trigger's value; None for an error."""
        signals = observatory.spillway_signals() if any(t.metric != "queue" for t in self.triggers) else None
        values = []
        for trigger in self.triggers:
            if trigger.metric == "queue":
                value = observatory.prometheus_queue()
            else:
                assert signals is not None
                value = signals.arrival_rate if trigger.metric == "rate" else signals.in_flight
            if value is None or not math.isfinite(value):
                values.append(0.0 if self.ignore_null_values else None)
            else:
                values.append(value)
        return tuple(values)

    def _read(self, observatory: Observatory) -> tuple[float | None, ...]:
        """What the metrics adapter answers the HPA, per trigger."""
        if self.use_cached_metrics and self._polled:
            return self._cached
        return self._query(observatory)

    def _scale_loop(self, observatory: Observatory, current: int, seconds: float) -> int:
        values = self._query(observatory)
        if self.use_cached_metrics:
            self._polled, self._cached = True, values
        if any(value is not None and value > self.activation_threshold for value in values):
            self._last_active = seconds
            return max(self.min_replicas, 1) if current == 0 else current
        if all(value is None for value in values):
            return current  # errors and no fallback: only the conditions change
        if current > 0 and self.min_replicas == 0:
            cooled = self._last_active is None or self._last_active + self.cooldown_seconds < seconds
            return 0 if cooled else current
        if current < self.min_replicas:
            return self.min_replicas
        return current


def _after(due: float, period: float, now: float) -> float:
    """The first due time after `now` on the grid `due + k × period`."""
    return due + (max(0, math.floor((now - due) / period + _DUE)) + 1) * period


def tuned_grid() -> list[dict[str, Any]]:
    """Configurations to pick the best of per trace; the first is the default."""
    return [
        {},
        {"threshold": 5.0},
        {"threshold": 2.0},
        {"threshold": 20.0},
        {"threshold": 5.0, "downscale_stabilization_seconds": 60.0},
        {"use_cached_metrics": True},
        {"threshold": 5.0, "use_cached_metrics": True, "polling_interval_seconds": 15.0},
        {"threshold": 5.0, "with_behavior": True},
    ]
