"""The metrics pipelines between the simulated replicas and the autoscalers: what each autoscaler
would read in a real cluster, never the simulation's truth. Pure: fed by the runner once a
simulated second, no I/O.

- **Prometheus** scrapes HAProxy every `scrape_interval` seconds at a fixed phase (as a target's
  scrape offset). A scrape fails with probability `miss_share`; Prometheus then writes staleness
  markers, so an instant query is empty until the next good scrape, and a range function sees
  one sample fewer. `rate()` is Prometheus' own extrapolated rate (promql/functions.go,
  extrapolatedRate). The HAProxy preset's four queries are answered as metrics/presets.py
  writes them: the queue (backend plus servers), the servers' current sessions, the request
  rate over 1 m, and `total_time_average` (the mean of the last 1024 requests' total times,
  which freezes when idle) read only once 1024 requests were served and only while the request
  counter moved within the window. An empty answer is a missing signal, as the operator's
  reader makes it (metrics/prometheus.py).
- **Prometheus** also scrapes each ready pod's own in-flight gauge in the same scrape: the Pods
  metric an HPA reads through a Prometheus adapter (the latest sample of each pod; a pod ready
  since the last scrape has none yet, and a failed scrape leaves every pod without one).
- **metrics-server** samples each pod's busy workers every `resolution` seconds (its default
  metric-resolution, 15 s) and reports the mean over the last one: the CPU usage the HPA reads,
  with busy workers / concurrency standing for usage / request. A pod ready for less than one
  resolution has no value yet.
- **Knative's collector** takes each ready pod's average concurrency (requests in service or
  queued, what the queue-proxy counts) once a second and keeps one bucket per second of their
  sum (pkg/autoscaler/metrics/collector.go, one-second buckets).
- **The API server**: the service's pods Pending for want of a node, as the operator lists them
  at each interval (the scheduler marks a pod Unschedulable within its first attempt, so no
  delay is modelled).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from spillway.scaling.proposals import SIGNAL_NAMES, Signals
from spillway.sim.model import RECENT_SAMPLES, Pod, Simulation
from spillway.sim.policy import PodsMetric, PodUsage, ResourceMetrics

LOOKBACK_SECONDS = 300.0  # Prometheus' default query.lookback-delta
RATE_WINDOW_SECONDS = 60.0  # the HAProxy preset's `[1m]`


@dataclass(frozen=True)
class Sample:
    time: float
    value: float


@dataclass
class _Series:
    """One scraped series: its samples, and the time of a staleness marker after the last one."""

    samples: deque[Sample] = field(default_factory=deque)
    stale_since: float | None = None

    def add(self, time: float, value: float) -> None:
        self.samples.append(Sample(time, value))
        self.stale_since = None
        while self.samples and self.samples[0].time < time - LOOKBACK_SECONDS:
            self.samples.popleft()

    def instant(self, now: float) -> float | None:
        if not self.samples or self.stale_since is not None:
            return None
        last = self.samples[-1]
        return last.value if now - last.time <= LOOKBACK_SECONDS else None

    def window(self, now: float, seconds: float) -> list[Sample]:
        return [s for s in self.samples if now - seconds < s.time <= now]


def extrapolated_rate(samples: list[Sample], now: float, window: float, *, counter: bool = True) -> float | None:
    """Prometheus' rate()/increase() over (now - window, now]: the increase between the first and
    last samples, extrapolated towards the window's edges by at most half a sample interval
    beyond where the samples end (1.1 average intervals decide whether to go all the way), and
    for a counter never below zero at the start. None with fewer than two samples."""
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    increase = last.value - first.value
    sampled = last.time - first.time
    if sampled <= 0:
        return None
    to_start, to_end = first.time - (now - window), now - last.time
    average = sampled / (len(samples) - 1)
    if counter and increase > 0 and first.value >= 0:
        to_zero = sampled * (first.value / increase)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    extended = sampled + (to_start if to_start < threshold else average / 2) + (
        to_end if to_end < threshold else average / 2)
    return increase * (extended / sampled) / window


class Pipelines:
    """Every autoscaler's metrics as of the last `collect` (the `Observatory` of sim/policy.py)."""

    def __init__(self, concurrency: int, scrape_interval: float = 15.0, miss_share: float = 0.0,
                 resolution: float = 15.0, seed: int = 0, *, first_scrape: float | None = None,
                 first_resolution: float = 0.0) -> None:
        """`first_scrape` and `first_resolution`: when Prometheus first scrapes the balancer and
        metrics-server first samples the pods (by default half an interval in, and at once); a
        run draws them per seed, since where its scrapes fall against a surge is chance."""
        if not scrape_interval > 0 or not resolution > 0 or not 0 <= miss_share < 1:
            raise ValueError("scrape_interval and resolution must be positive, miss_share in [0, 1)")
        first_scrape = scrape_interval / 2 if first_scrape is None else first_scrape
        if not 0 <= first_scrape <= scrape_interval or not 0 <= first_resolution <= resolution:
            raise ValueError("the first scrape and sample must fall within their first interval")
        self.concurrency = concurrency
        self.scrape_interval, self.miss_share, self.resolution = scrape_interval, miss_share, resolution
        self._rng = random.Random(seed)
        self._now = 0.0
        self._ready = 0
        self._unschedulable = 0
        self._series = {name: _Series() for name in ("requests", "queue", "sessions", "total_time")}
        self._pods: tuple[Pod, ...] = ()  # as of the last collect
        self._pod_in_flight: dict[int, float] = {}  # per pod, its in-flight gauge at the last scrape
        # metrics-server: per pod, (time, busy area) of its last two samples
        self._cpu: dict[int, tuple[tuple[float, float], ...]] = {}
        self._unready = 0
        # Knative: per pod, its inflight area a second ago; the per-second sums
        self._inflight: dict[int, float] = {}
        self._buckets: deque[tuple[float, float]] = deque()
        self._next_scrape = first_scrape  # a target's scrape offset within the interval
        self._next_resolution = first_resolution

    @property
    def now(self) -> float:
        return self._now

    def collect(self, simulation: Simulation) -> None:
        """Take what is due at the simulation's current time (call once a simulated second)."""
        now = simulation.now
        self._now = now
        pods = simulation.pods()
        self._pods = pods
        self._ready = sum(1 for p in pods if p.ready)
        self._unschedulable = simulation.pending_pods()
        live = {p.index for p in pods if p.ready}
        self._knative(pods, live, now)
        if now + 1e-9 >= self._next_resolution:
            self._metrics_server(pods, live, now)
            self._next_resolution += self.resolution
        if now + 1e-9 >= self._next_scrape:
            self._scrape(simulation, now)
            self._next_scrape += self.scrape_interval

    def _scrape(self, simulation: Simulation, now: float) -> None:
        if self._rng.random() < self.miss_share:
            for series in self._series.values():
                series.stale_since = now
            self._pod_in_flight = {}
            return
        self._pod_in_flight = {p.index: float(p.busy + p.waiting) for p in self._pods if p.ready}
        self._series["requests"].add(now, float(simulation.outcome.arrived))
        self._series["queue"].add(now, float(simulation.queued()))
        self._series["sessions"].add(now, float(simulation.busy_workers()))
        mean = simulation.recent_mean_seconds()
        if mean is None:
            self._series["total_time"].stale_since = now  # HAProxy exports it once it has a value
        else:
            self._series["total_time"].add(now, mean)

    def _metrics_server(self, pods: tuple[Pod, ...], live: set[int], now: float) -> None:
        kept = {}
        for pod in pods:
            if pod.index in live:
                kept[pod.index] = (*self._cpu.get(pod.index, ())[-1:], (now, pod.busy_area))
        self._cpu = kept
        self._unready = sum(1 for p in pods if not p.ready and not p.draining)

    def _knative(self, pods: tuple[Pod, ...], live: set[int], now: float) -> None:
        total, seen = 0.0, False
        current = {}
        for pod in pods:
            if pod.index not in live:
                continue
            before = self._inflight.get(pod.index)
            current[pod.index] = pod.inflight_area
            if before is not None:
                total += pod.inflight_area - before
                seen = True
        self._inflight = current
        if seen:
            self._buckets.append((now, total))
        while self._buckets and self._buckets[0][0] <= now - 600:
            self._buckets.popleft()

    # --- the Observatory ---------------------------------------------------------------------

    def ready_pods(self) -> int:
        return self._ready

    def unschedulable_pods(self) -> int:
        return self._unschedulable

    def spillway_signals(self) -> Signals:
        now = self._now
        requests = self._series["requests"]
        values: dict[str, float | None] = {
            "queue_depth": self.prometheus_queue(),
            "in_flight": self._series["sessions"].instant(now),
        }
        present = requests.instant(now)
        rate = extrapolated_rate(requests.window(now, RATE_WINDOW_SECONDS), now, RATE_WINDOW_SECONDS)
        values["arrival_rate"] = rate if present is not None else None
        increase = None if rate is None else rate * RATE_WINDOW_SECONDS
        mean = self._series["total_time"].instant(now)
        full = present is not None and present > RECENT_SAMPLES
        values["latency_seconds"] = mean if (mean is not None and full and increase is not None
                                             and increase > 0) else None
        missing = frozenset(SIGNAL_NAMES[name] for name, value in values.items() if value is None)
        return Signals(queue_depth=values["queue_depth"], in_flight=values["in_flight"],
                       arrival_rate=values["arrival_rate"], latency_seconds=values["latency_seconds"],
                       missing=missing, rate_window_seconds=RATE_WINDOW_SECONDS, latency_kind="mean")

    def prometheus_queue(self) -> float | None:
        return self._series["queue"].instant(self._now)

    def resource_metrics(self) -> ResourceMetrics:
        usage, missing = [], 0
        for samples in self._cpu.values():
            if len(samples) < 2:
                missing += 1
                continue
            (t0, a0), (t1, a1) = samples
            usage.append(PodUsage(max(0.0, (a1 - a0) / ((t1 - t0) * self.concurrency))))
        return ResourceMetrics(tuple(usage), self._unready, missing)

    def pods_metric(self) -> PodsMetric:
        values: list[float] = []
        unready = missing = 0
        for pod in self._pods:
            if pod.draining:
                continue  # a pod being deleted is left out altogether
            if pod.pending:
                unready += 1
                continue
            value = self._pod_in_flight.get(pod.index)
            if value is None:
                missing += 1
            else:
                values.append(value)
        return PodsMetric(tuple(values), unready, missing)

    def concurrency_average(self, window_seconds: float) -> float | None:
        if not window_seconds > 0 or math.isinf(window_seconds):
            return None
        inside = [total for at, total in self._buckets if at > self._now - window_seconds]
        return sum(inside) / len(inside) if inside else None
