"""The operator's own Prometheus metrics: reconciles, errors, scaling decisions, signals and
the cost of reading them. Served by `spillway run` on --metrics-port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("spillway_reconciles_total", "Reconciles of ScalableServices by result.", ["result"])
RECONCILE_SECONDS = Histogram("spillway_reconcile_duration_seconds", "Time one reconcile took.")
WRITES = Counter("spillway_writes_total", "Writes to the API server made by reconciles.")
DECISIONS = Counter("spillway_scaling_decisions_total", "Scaling decisions by direction.",
                    ["namespace", "name", "direction"])
SIGNALS = Gauge("spillway_signal_value", "Last value read of each signal.", ["namespace", "name", "signal"])
DESIRED = Gauge("spillway_desired_replicas", "Replicas Spillway wants.", ["namespace", "name"])
QUERY_SECONDS = Histogram("spillway_prometheus_query_duration_seconds", "Latency of Prometheus queries.",
                          ["signal"])
QUERY_ERRORS = Counter("spillway_prometheus_query_errors_total", "Failed Prometheus queries.", ["signal"])
