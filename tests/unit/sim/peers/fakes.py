"""A hand-set Observatory for the peers' tests: every pipeline answers what the test put in."""

from __future__ import annotations

from dataclasses import dataclass, field

from spillway.scaling.proposals import Signals
from spillway.sim.policy import PodsMetric, PodUsage, ResourceMetrics


def pods(*utilizations: float, unready: int = 0, missing: int = 0) -> ResourceMetrics:
    return ResourceMetrics(tuple(PodUsage(u) for u in utilizations), unready, missing)


@dataclass
class FakeObservatory:
    now: float = 0.0
    ready: int = 1
    queue: float | None = 0.0
    resources: ResourceMetrics = field(default_factory=lambda: pods(0.5))
    # Knative's collector, per window length; a window not listed reads `concurrency`.
    averages: dict[float, float | None] = field(default_factory=dict)
    concurrency: float | None = 0.0
    unschedulable: int = 0
    signals: Signals = field(default_factory=Signals)
    in_flight: PodsMetric = field(default_factory=lambda: PodsMetric((), 0, 0))

    def ready_pods(self) -> int:
        return self.ready

    def unschedulable_pods(self) -> int:
        return self.unschedulable

    def spillway_signals(self) -> Signals:
        return self.signals

    def prometheus_queue(self) -> float | None:
        return self.queue

    def resource_metrics(self) -> ResourceMetrics:
        return self.resources

    def pods_metric(self) -> PodsMetric:
        return self.in_flight

    def concurrency_average(self, window_seconds: float) -> float | None:
        return self.averages.get(window_seconds, self.concurrency)
