"""The Kubernetes HorizontalPodAutoscaler (1.37) as a baseline, on CPU utilization or on a Pods
metric (each pod's requests in flight, through a Prometheus adapter), and the HPA core the KEDA
baseline reuses. Pure: no I/O, the clock is the observatory's.

Sources, kubernetes/kubernetes pkg/controller/podautoscaler:
- replica_calculator.go, `GetResourceReplicas` (`resource_replicas`): the ratio of the ready
  pods' utilization to the target, in whole percent as metrics/utilization.go computes it
  (`GetResourceUtilizationRatio`: sum of usage × 100 / sum of requests, truncated); the tolerance
  check; pods without a value count at max(100 %, target) of their request when the ratio says
  down and at 0 when it says up; unready pods count at 0, only when the ratio says up; the
  tolerance is checked again on the rebalanced ratio, and the current count stays when the
  rebalance flips the direction or the new count moves against it. No ready pod with a value
  is an error: no scaling. `GetMetricReplicas` and `calcPlainMetricReplicas`
  (`pods_metric_replicas`), for a Pods metric with an AverageValue target: the same, on the mean
  of the pods' values in milli-units (metrics/utilization.go `GetMetricUsageRatio`, an integer
  mean) over the target, where only Pending pods count as unready (readiness is a CPU matter in
  `groupPods`) and a missing pod counts at the target on a scale-down. `GetExternalPerPodMetricReplicas` (`external_per_pod_replicas`) is
  what KEDA's AverageValue metric goes through.
- horizontal.go, `reconcileAutoscaler` (`HorizontalController`): the initial recommendation (the
  current count, recorded at first sight); a count above max or below min is brought back
  before any metric is read; a metric error leaves the count alone; a negative proposal counts as
  0. An HPA without `spec.behavior` (what `kubectl autoscale` and KEDA create by default) takes
  `normalizeDesiredReplicas`: the highest recommendation of the last
  --horizontal-pod-autoscaler-downscale-stabilization (5 min), then at most max(2 × current, 4)
  and within [min, max] (`convertDesiredReplicasWithRules`). With a
  `spec.behavior` it takes `normalizeDesiredReplicasWithBehaviors`, followed here by
  spillway.scaling.behavior's `stabilize` and `limit_steps` and the scale events of
  history.EngineState (`default_behavior()` is what pkg/apis/autoscaling/v2/defaults.go fills
  in: up 4 pods or 100 % per 15 s, the larger, no window; down 100 % per 15 s after the
  controller's 5 min window; `HPA(with_behavior=True)`). The recommendation recorded is the
  metric's proposal before min, max and the limits.

Departures: utilization is busy workers over the replica's worker count, as the pipeline
reports it, divided by `request_share`: each pod's CPU request as a share of what it uses with
every worker busy. At 1 (a 1000 m request for a pod that uses 1000 m at full load) utilization
tops out at 100 %, so each sync grows the count by at most 1 / target; a request below peak
usage, as most deployments set it, lets utilization pass 100 %, which is how an HPA on CPU sees
a surge in full; the pipeline decides which pods are ready, unready or
without a value (groupPods, with its CPU initialization period, is not re-run here). A current
count of 0, which the HPA leaves alone ("scaling disabled"), is read as below min: the simulator
never sets it. An observatory time that no calendar can hold leaves the count alone. The clock
here is exact, a cluster's is not: the controller re-queues an HPA one sync period after its
reconcile ends, so a recommendation or scale event made n syncs ago is always a little more than
n periods old there. Every window and period boundary is therefore strict here (one made exactly
300 s ago no longer counts), whether the Go code compares with Before or After.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from spillway.api.spec import Behavior, ScalingRules
from spillway.scaling.behavior import EngineState, Tolerances, limit_steps, stabilize, tolerances
from spillway.sim.policy import Observatory, PodsMetric, PodUsage, ResourceMetrics

__all__ = ["HPA", "HorizontalController", "default_behavior", "external_per_pod_replicas",
           "pods_metric_replicas", "resource_replicas", "tuned_grid"]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simulated second 0 as the controller's clock
SYNC_SECONDS = 15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period default
TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance default
DOWNSCALE_STABILIZATION_SECONDS = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization default
TARGET = 0.8  # pkg/apis/autoscaling DefaultCPUUtilization, what `kubectl autoscale` sets without --cpu-percent
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0  # horizontal.go, without spec.behavior
REQUEST_MILLI = 1000  # each pod's CPU request: utilization 1.0 is 1000m
MAX_INT32, MAX_INT64 = 2**31 - 1, 2**63 - 1


def default_behavior(downscale_stabilization_seconds: float = DOWNSCALE_STABILIZATION_SECONDS,
                     tolerance: float = TOLERANCE) -> Behavior:
    """The rules an HPA gets for a `spec.behavior` that sets nothing (GenerateHPAScaleUpRules and
    GenerateHPAScaleDownRules; the scale-down window comes from the controller's flag)."""
    return Behavior(
        tolerance=tolerance,
        scale_up=ScalingRules(stabilization_window=timedelta(0), max_step_pods=4, max_step_percent=100,
                              period=timedelta(seconds=15), select_policy="Max"),
        scale_down=ScalingRules(stabilization_window=timedelta(seconds=downscale_stabilization_seconds),
                                max_step_percent=100, period=timedelta(seconds=15), select_policy="Max"),
        panic=False,
    )


def moment(seconds: float) -> datetime | None:
    """The observatory's time as the controller's clock; None when no datetime can hold it."""
    try:
        return EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # NaN, infinite, or beyond year 9999
        return None


def _utilization_percent(values: list[int]) -> int | None:
    """metrics/utilization.go: sum of usage × 100 / sum of requests, truncated; an error (None)
    outside int32."""
    percent = sum(values) * 100 // (REQUEST_MILLI * len(values))
    return percent if percent <= MAX_INT32 else None


def _calculated(current: int, ready: list[int], missing: int, unready: int, ratio_of: Callable[[list[int]], float | None],
                missing_down: int, within: Tolerances) -> int | None:
    """The replica calculator's shared shape (GetResourceReplicas and calcPlainMetricReplicas):
    the ratio over the ready pods' milli-values; when pods are missing or unready, the ratio again
    with the missing ones at `missing_down` on a scale-down and at 0 on a scale-up, and the
    unready ones at 0 on a scale-up. `ratio_of` is None for an error."""
    if not ready:
        return None
    usage_ratio = ratio_of(ready)
    if usage_ratio is None:
        return None
    scale_up_with_unready = unready > 0 and usage_ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        if within.is_within(usage_ratio):
            return current
        return math.ceil(usage_ratio * len(ready))

    values = list(ready)
    if missing and usage_ratio < 1.0:
        values += [missing_down] * missing
    elif missing and usage_ratio > 1.0:
        values += [0] * missing
    if scale_up_with_unready:
        values += [0] * unready
    new_ratio = ratio_of(values)
    if new_ratio is None:
        return None
    if within.is_within(new_ratio) or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return current  # too small a change, or the rebalance flipped the direction
    proposed = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current  # counting more pods than `current` moved the count against the ratio
    return proposed


def _milli_values(values: Iterable[float], scale: float) -> tuple[list[int], int]:
    """Each finite value 0 or more in milli-units (Quantity.MilliValue rounds up), and how many
    were not such a value (a client never reports one: the pod has none)."""
    ready, bad = [], 0
    for value in values:
        milli = value * scale
        if math.isfinite(milli) and milli >= 0:
            ready.append(math.ceil(milli))
        else:
            bad += 1
    return ready, bad


def resource_replicas(current: int, metrics: ResourceMetrics, target_percent: int,
                      within: Tolerances) -> int | None:
    """GetResourceReplicas: the count the utilization proposes; None where the calculator
    returns an error (no ready pod with a value, or a utilization beyond int32)."""
    ready, bad = _milli_values((pod.utilization for pod in metrics.usage), REQUEST_MILLI)

    def ratio(values: list[int]) -> float | None:
        percent = _utilization_percent(values)
        return None if percent is None else percent / target_percent

    return _calculated(current, ready, max(0, metrics.missing) + bad, max(0, metrics.unready), ratio,
                       REQUEST_MILLI * max(100, target_percent) // 100, within)


def pods_metric_replicas(current: int, metric: PodsMetric, target_milli: int, within: Tolerances) -> int | None:
    """calcPlainMetricReplicas for a Pods metric; None where it returns an error (no pod with a
    value). The ratio is metrics/utilization.go's GetMetricUsageRatio: the integer mean of the
    milli-values over the target."""
    ready, bad = _milli_values(metric.values, 1000)
    return _calculated(current, ready, max(0, metric.missing) + bad, max(0, metric.unready),
                       lambda values: (sum(values) // len(values)) / target_milli, target_milli, within)


def external_per_pod_replicas(status_replicas: int, usage_milli: int, target_milli: int,
                              within: Tolerances) -> int:
    """GetExternalPerPodMetricReplicas: ceil(usage / target) unless usage / (target × replicas) is
    within tolerance, with int64 usage and an int32 result as the Go code caps them. The Go code
    takes a negative sum for an int64 overflow: a negative value asks for the most replicas."""
    usage = MAX_INT64 if usage_milli < 0 else min(usage_milli, MAX_INT64)
    # Go divides floats: 0 replicas make the ratio infinite (or NaN), never within tolerance.
    ratio = usage / (target_milli * status_replicas) if status_replicas else math.nan
    if within.is_within(ratio):
        return status_replicas
    return min(math.ceil(usage / target_milli), MAX_INT32)


class HorizontalController:
    """The HPA's reconcile around one metric: bounds, the recorded recommendations, and the
    normalization with or without `spec.behavior`. Keeps the controller's in-memory state."""

    def __init__(self, min_replicas: int, max_replicas: int, *, behavior: Behavior | None = None,
                 tolerance: float = TOLERANCE,
                 downscale_stabilization_seconds: float = DOWNSCALE_STABILIZATION_SECONDS) -> None:
        if not 1 <= min_replicas <= max_replicas:
            raise ValueError(f"HPA needs 1 <= minReplicas <= maxReplicas, got {min_replicas}, {max_replicas}")
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.behavior = behavior
        self.window = timedelta(seconds=downscale_stabilization_seconds)
        self.tolerances = Tolerances(tolerance, tolerance) if behavior is None else tolerances(behavior)
        self.state = EngineState()  # recommendations and scale events, as horizontal.go keeps them

    def reconcile(self, current: int, now: datetime, propose: Callable[[], int | None]) -> int:
        """The count after one sync; `propose` reads the metric and runs the replica calculator
        (None: an error, the count stays)."""
        self.state = self.state.seeded(current, now)  # recordInitialRecommendation
        if current == 0:
            return 0  # "scaling is disabled since the replica count of the target is zero"
        if current > self.max_replicas:
            return self._rescaled(current, self.max_replicas, now)
        if current < self.min_replicas:
            return self._rescaled(current, self.min_replicas, now)
        proposal = propose()
        if proposal is None:
            return current
        desired = max(0, proposal)  # desiredReplicas starts at 0 and takes a larger proposal
        if self.behavior is None:
            result = self._normalize(current, desired, now)
        else:
            result = self._normalize_with_behavior(current, desired, now, self.behavior)
        return self._rescaled(current, result, now)

    def _rescaled(self, current: int, desired: int, now: datetime) -> int:
        if desired != current and self.behavior is not None:  # storeScaleEvent keeps none without behavior
            self.state = self.state.changed(now, desired - current)
        return desired

    def _normalize(self, current: int, desired: int, now: datetime) -> int:
        # stabilizeRecommendation: the highest recommendation of the window (a strict boundary:
        # see the departures in the module's docstring)
        cutoff = now - self.window
        kept = tuple(r for r in self.state.recommendations if r[0] > cutoff)
        stabilized = max([r for _, r in kept] + [desired])
        self.state = replace(self.state, recommendations=(*kept, (now, desired)))
        # convertDesiredReplicasWithRules
        scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        highest = min(self.max_replicas, scale_up_limit)
        if stabilized < self.min_replicas:
            return self.min_replicas
        return min(stabilized, highest)

    def _normalize_with_behavior(self, current: int, desired: int, now: datetime, behavior: Behavior) -> int:
        stabilized = stabilize(desired, current, self.state.recommendations, behavior, now).replicas
        self.state = self.state.recorded(now, desired)
        # convertDesiredReplicasWithBehaviorRate: the rate limits, then max (up) or min (down)
        if stabilized > current:
            result = min(self.max_replicas, limit_steps(stabilized, current, self.state.scale_events, behavior,
                                                        now).replicas)
        elif stabilized < current:
            result = max(self.min_replicas, limit_steps(stabilized, current, self.state.scale_events, behavior,
                                                        now).replicas)
        else:
            result = stabilized
        self.state = self.state.bounded(behavior, now)
        return result


class HPA:
    """An HPA on CPU utilization: `target` is averageUtilization as a share (0.8 = 80 %); or, with
    `in_flight_per_pod`, on the Pods metric of each pod's requests in flight with that
    AverageValue target (`target` then unused). `with_behavior` gives it a `spec.behavior` with
    every rule at its default."""

    def __init__(self, min_replicas: int, max_replicas: int, *, target: float = TARGET,
                 sync_seconds: float = SYNC_SECONDS, tolerance: float = TOLERANCE,
                 downscale_stabilization_seconds: float = DOWNSCALE_STABILIZATION_SECONDS,
                 with_behavior: bool = False, request_share: float = 1.0,
                 in_flight_per_pod: float | None = None) -> None:
        self.target_percent = round(target * 100)  # averageUtilization is a whole percent
        if self.target_percent < 1 or not sync_seconds > 0:
            raise ValueError("HPA needs a target of at least 1 % and a positive sync period")
        if not 0 < request_share <= 1:
            raise ValueError(f"request_share is the request's share of peak usage, in (0, 1], not {request_share!r}")
        self.request_share = request_share
        self.in_flight_milli = None if in_flight_per_pod is None else math.ceil(in_flight_per_pod * 1000)
        if self.in_flight_milli is not None and self.in_flight_milli < 1:
            raise ValueError(f"in_flight_per_pod must be at least 0.001, not {in_flight_per_pod!r}")
        self.tick_seconds = sync_seconds
        behavior = default_behavior(downscale_stabilization_seconds, tolerance) if with_behavior else None
        self.controller = HorizontalController(
            min_replicas, max_replicas, behavior=behavior, tolerance=tolerance,
            downscale_stabilization_seconds=downscale_stabilization_seconds)
        self.name = variant_name("HPA", {
            "target": (target, TARGET), "sync": (sync_seconds, SYNC_SECONDS),
            "tolerance": (tolerance, TOLERANCE),
            "downscale": (downscale_stabilization_seconds, DOWNSCALE_STABILIZATION_SECONDS),
            "behavior": (with_behavior, False), "request": (request_share, 1.0),
            "inflight": (in_flight_per_pod, None),
        })

    def decide(self, observatory: Observatory, current: int) -> int:
        now = moment(observatory.now)
        if now is None:
            return max(self.controller.min_replicas, min(self.controller.max_replicas, current))
        if current < 1:
            return self.controller.min_replicas  # below min, never "scaling disabled": see the departures
        target, within, share = self.target_percent, self.controller.tolerances, self.request_share

        def propose() -> int | None:
            if self.in_flight_milli is not None:
                return pods_metric_replicas(current, observatory.pods_metric(), self.in_flight_milli, within)
            metrics = observatory.resource_metrics()
            if share != 1.0:  # usage over the request: a busy share of 1 is 1 / share of it
                metrics = replace(metrics, usage=tuple(PodUsage(p.utilization / share) for p in metrics.usage))
            return resource_replicas(current, metrics, target, within)

        return self.controller.reconcile(current, now, propose)


def variant_name(base: str, knobs: dict[str, tuple[object, object]]) -> str:
    """`base`, with the knobs that differ from their defaults: "HPA(target=0.6)"."""
    parts = [f"{key}={_shown(value)}" for key, (value, default) in knobs.items() if value != default]
    return f"{base}({', '.join(parts)})" if parts else base


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def tuned_grid() -> list[dict[str, Any]]:
    """Configurations to pick the best of per trace; the first is the default."""
    return [
        {},
        {"target": 0.7},
        {"target": 0.6},
        {"target": 0.5},
        {"downscale_stabilization_seconds": 60.0},
        {"target": 0.6, "downscale_stabilization_seconds": 60.0},
        {"with_behavior": True},
        {"target": 0.6, "downscale_stabilization_seconds": 60.0, "with_behavior": True},
    ]
