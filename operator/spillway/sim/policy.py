"""What an autoscaler under test sees and does in the simulator. Pure.

A policy never reads the simulation's truth: it reads an `Observatory`, the metrics pipelines as
its real counterpart would have them (Prometheus scrapes for Spillway and KEDA, metrics-server's
resource metrics for the HPA, the queue-proxy's per-second concurrency for Knative), delayed,
windowed and sometimes missing. Every `tick_seconds` the runner calls `decide` with the count it
asked for last (the Deployment's `spec.replicas`) and applies the answer; pods then take
`startup` seconds (and, without room, a node's provisioning time) to become ready.

The oracle alone is handed the future (`Foresight`): it is the limit the others are measured
against, not a policy anyone can run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from spillway.scaling.proposals import Signals


@dataclass(frozen=True)
class PodUsage:
    """metrics-server's view of one ready pod: its mean busy share of `concurrency` over the
    last resolution window (CPU usage over its request, in the HPA's terms)."""

    utilization: float


@dataclass(frozen=True)
class ResourceMetrics:
    """What the HPA's resource metrics client returns for the pods at one sync.

    `usage` holds the pods metrics-server has a value for; `unready` counts pods that are not
    ready yet (the replica calculator treats them apart), `missing` pods without a value."""

    usage: tuple[PodUsage, ...]
    unready: int
    missing: int


@dataclass(frozen=True)
class PodsMetric:
    """A Pods metric as the HPA's custom metrics client returns it through a Prometheus adapter:
    each pod's requests in flight (in service or queued in it) at Prometheus's last scrape of it.

    `values` holds the pods with a sample; `unready` counts Pending pods (the replica calculator
    sets them apart), `missing` the running ones without a sample (not ready at the last scrape,
    or the scrape failed)."""

    values: tuple[float, ...]
    unready: int
    missing: int


class Observatory(Protocol):
    """The metrics pipelines, as of `now` (the runner advances it)."""

    @property
    def now(self) -> float: ...

    def ready_pods(self) -> int:
        """Pods ready and taking traffic (what `status.readyReplicas` says)."""
        ...

    def unschedulable_pods(self) -> int:
        """The service's pods the scheduler marked Unschedulable: Pending for want of a node slot
        (headroom placeholders not counted; 0 without simulated nodes). Only Spillway reads it;
        the HPA, KEDA and Knative scale on whatever waits, as their real counterparts do."""
        ...

    def spillway_signals(self) -> Signals:
        """The HAProxy preset's four queries answered by the simulated Prometheus."""
        ...

    def prometheus_queue(self) -> float | None:
        """`sum(haproxy_backend_current_queue) + sum(haproxy_server_current_queue)` as an
        instant query: None when the answer is empty (every target's last scrape failed)."""
        ...

    def resource_metrics(self) -> ResourceMetrics:
        """metrics-server: per pod, busy workers / concurrency averaged over its resolution."""
        ...

    def pods_metric(self) -> PodsMetric:
        """Prometheus, through an adapter: per pod, its requests in flight at the last scrape."""
        ...

    def concurrency_average(self, window_seconds: float) -> float | None:
        """Knative's collector: the mean, over the last `window_seconds` of one-second buckets,
        of the total concurrency (requests in service or queued) across ready pods; None when
        no bucket in the window holds data."""
        ...


@dataclass(frozen=True)
class Foresight:
    """What only the oracle knows: the offered load at any time and the service's truth."""

    rate: Callable[[float], float]  # requests per second offered at a time
    mean_service_seconds: float
    concurrency: int
    startup_seconds: float


class Policy(Protocol):
    """An autoscaler under test. `decide` may keep state between calls (its own windows)."""

    name: str
    tick_seconds: float

    def decide(self, observatory: Observatory, current: int) -> int: ...
