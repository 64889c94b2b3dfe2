"""Scaling from a real Prometheus scraping an exporter whose values the test drives, with the
operator running against the real control plane. The exporter stands in for HAProxy on purpose:
the test needs a scripted wave; it exports every series the HAProxy preset reads, labelled as
pod discovery labels a balancer pod (tests/integration/test_haproxy_signals.py checks the preset
against the real HAProxy)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.components import DrivenExporter, drive_haproxy, haproxy_scrape_labels, prometheus_scraping
from tests.integration.harness import Kubectl, condition, running_operator, scalable_service

pytestmark = pytest.mark.integration
INTERVAL = 2.0
WINDOW = 12.0


def _haproxy_series(exporter: DrivenExporter, queue: float) -> None:
    drive_haproxy(exporter, "web", queue=queue, served=20, arrivals_per_second=40, total_time_seconds=0.05)


def _replicas(k: Kubectl, ns: str) -> int:
    deployment = k.get("deployment", "web", ns)
    assert deployment is not None
    replicas: int = deployment["spec"]["replicas"]
    return replicas


def test_scales_out_on_queue_waits_out_the_window_and_holds_without_metrics(k: Kubectl, kube: Any) -> None:
    ns = k.namespace("scale")
    with DrivenExporter() as exporter:
        _haproxy_series(exporter, queue=0)
        with prometheus_scraping(exporter, haproxy_scrape_labels(ns, "web")) as prom, \
                running_operator(kube.kubeconfig):
            k.apply(scalable_service("web", ns, replicas={"min": 2, "max": 10}, scaling={
                "prometheus": {"url": prom.url, "timeout": "2s"}, "interval": f"{INTERVAL:g}s",
                "metricsSource": "HAProxy", "targets": {"queuePerReplica": 10},
                "behavior": {"scaleUp": {"maxStepPods": 10},
                             "scaleDown": {"stabilizationWindow": f"{WINDOW:g}s", "maxStepPercent": None}}}))
            k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "True",
                       timeout=60, what="signals from Prometheus")
            assert _replicas(k, ns) == 2

            # Raise the queue: scaled out within two intervals (plus one scrape).
            raised = time.monotonic()
            _haproxy_series(exporter, queue=80)
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 8,
                       timeout=2 * INTERVAL + 2, what="scale-out to 8 within two intervals")
            scale_out_seconds = time.monotonic() - raised
            ssvc = k.get("ssvc", "web", ns)
            assert ssvc["status"]["lastDecision"]["signal"] == "queue"
            assert ssvc["status"]["signals"]["queueDepth"] == 80
            events = k.items("events.events.k8s.io", ns)
            assert any(e.get("reason") == "ScaledUp" and e["note"].startswith("2 -> 8 replicas") for e in events)

            # Lower it: the count waits out the scale-down window, then drops to min.
            lowered = time.monotonic()
            _haproxy_series(exporter, queue=0)
            k.wait_for("ssvc", "web", ns, lambda s: s["status"]["signals"].get("queueDepth") == 0, timeout=15)
            time.sleep(max(0.0, WINDOW - 4 - (time.monotonic() - lowered)))
            assert _replicas(k, ns) == 8, "scaled down before the stabilization window ran out"
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 2, timeout=WINDOW + 10,
                       what="scale-down after the window")
            assert time.monotonic() - lowered >= WINDOW - 1

            # Scale out again, then lose Prometheus: the count holds and the condition says why.
            _haproxy_series(exporter, queue=50)
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 5, timeout=15)
            prom.stop()
            ssvc = k.wait_for("ssvc", "web", ns,
                              lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "False",
                              timeout=15, what="MetricsAvailable=False")
            assert "the query failed" in condition(ssvc, "MetricsAvailable")["message"]
            held_since = time.monotonic()
            while time.monotonic() - held_since < 3 * INTERVAL:
                assert _replicas(k, ns) == 5
                time.sleep(0.5)

            # Bring it back: signals recover and scaling resumes.
            _haproxy_series(exporter, queue=70)
            prom.start()
            k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "True",
                       timeout=30, what="MetricsAvailable=True after Prometheus returns")
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 7, timeout=20)
            k.run("delete", "ssvc", "web", "-n", ns, "--wait=true", "--timeout=60s")
    assert scale_out_seconds <= 2 * INTERVAL + 2
