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
INTERVALS = Counter("spillway_scaling_intervals_total", "Scaling intervals run, by outcome.", ["outcome"])
INTERVAL_FAILURES = Counter("spillway_scaling_interval_failures_total",
                            "Scaling intervals that failed with an unforeseen error (the loop went on).")
QUERIES = Counter("spillway_prometheus_queries_total",
                  "Queries sent to Prometheus, by signal and scope: one service's, or grouped for every service.",
                  ["signal", "scope"])
SHARED_READS = Counter("spillway_prometheus_shared_reads_total",
                       "Signal reads answered by a grouped query another service's read had just sent.", ["signal"])
# Bounds 1 s past common intervals (2, 3, 5, 10, 15, 20, 30, 60 s), so "within interval + 1 s" reads
# off a bucket.
INTERVAL_LATENESS = Histogram("spillway_scaling_interval_lateness_seconds",
                              "Delay from a scaling interval's due time to its decision.",
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 11, 16, 21, 31, 61, 121))
