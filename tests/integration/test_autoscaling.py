"""Scaling from a real Prometheus scraping an exporter whose values the test drives, with the
operator running against the real control plane. The exporter stands in for HAProxy on purpose:
the test needs a scripted wave; it exports every series the HAProxy preset reads, labelled as
pod discovery labels a balancer pod (tests/integration/test_haproxy_signals.py checks the preset
against the real HAProxy)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from tests.integration.components import DrivenExporter, drive_haproxy, haproxy_scrape_labels, prometheus_scraping
from tests.integration.harness import (
    Kubectl,
    audit_offset,
    condition,
    operator_writes,
    running_operator,
    scalable_service,
)

pytestmark = pytest.mark.integration
INTERVAL = 2.0
WINDOW = 12.0


def _haproxy_series(exporter: DrivenExporter, queue: float, served: float = 20) -> None:
    drive_haproxy(exporter, "web", queue=queue, served=served, arrivals_per_second=40, total_time_seconds=0.05)


def _first_scrape_of(prometheus_url: str, ns: str, value: float, after: float) -> float:
    """When Prometheus first scraped the queue at `value` after `after` (its own sample times)."""
    query = f'haproxy_backend_current_queue{{namespace="{ns}",proxy="web"}}[10m]'
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        result = json.loads(answer.read())["data"]["result"]
    return min(float(t) for t, v in result[0]["values"] if float(v) == value and float(t) > after)


def _event_time(k: Kubectl, ns: str, reason: str, note: str) -> float:
    """When the operator posted its `reason` Event whose note starts with `note` (the API
    server's record of the scale)."""
    events = [e for e in k.items("events.events.k8s.io", ns)
              if e.get("reason") == reason and e.get("note", "").startswith(note)]
    assert events, f"no {reason} event {note!r}"
    return datetime.fromisoformat(events[-1]["eventTime"]).timestamp()


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

            # Raise the queue, with the workers busy enough (1000 in flight over 200 x 0.7) that the
            # demand asks for the same 8: scaled out within two intervals of Prometheus seeing it.
            # (A backlog alone would not be remembered by the scale-down window: the engine keeps
            # the other signals' demand when the queue wins; unit-tested in test_engine.py.)
            raised = time.time()
            _haproxy_series(exporter, queue=80, served=1000)
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 8,
                       timeout=30, what="scale-out to 8")
            ssvc = k.get("ssvc", "web", ns)
            assert ssvc["status"]["lastDecision"]["signal"] == "queue"
            assert ssvc["status"]["signals"]["queueDepth"] == 80
            seen_high = _first_scrape_of(prom.url, ns, 80, raised - 1)
            scaled_up = _event_time(k, ns, "ScaledUp", "2 -> 8 replicas")
            # Evidence, not the test's clock: Prometheus' sample time and the API server's Event.
            assert 0 < scaled_up - seen_high <= 2 * INTERVAL + 1, (seen_high, scaled_up)

            # Lower it: the count waits out the scale-down window, then drops to min.
            lowered = time.time()
            _haproxy_series(exporter, queue=0)
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 2, timeout=WINDOW + 20,
                       what="scale-down after the window")
            seen_low = _first_scrape_of(prom.url, ns, 0, lowered - 1)
            scaled_down = _event_time(k, ns, "ScaledDown", "8 -> 2 replicas")
            # The last interval that read 80 ran at most an interval and a scrape after the first
            # sample of 0; the window counts from it.
            assert WINDOW - INTERVAL - 1 <= scaled_down - seen_low <= WINDOW + 2 * INTERVAL + 2, (seen_low, scaled_down)

            # Scale out again, then lose Prometheus: the count holds and the condition says why.
            _haproxy_series(exporter, queue=50)
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 5, timeout=15)
            prom.stop()
            ssvc = k.wait_for("ssvc", "web", ns,
                              lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "False",
                              timeout=15, what="MetricsAvailable=False")
            assert "the query failed" in condition(ssvc, "MetricsAvailable")["message"]
            since = audit_offset(kube) if kube.audit_log else 0
            time.sleep(3 * INTERVAL)  # three intervals without metrics
            assert _replicas(k, ns) == 5
            if kube.audit_log:  # and the API server saw no scale in between
                assert [w for w in operator_writes(kube, ns, since) if "deployments/scale" in w] == []

            # Bring it back: signals recover and scaling resumes.
            _haproxy_series(exporter, queue=70)
            prom.start()
            k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "True",
                       timeout=30, what="MetricsAvailable=True after Prometheus returns")
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 7, timeout=20)
            k.run("delete", "ssvc", "web", "-n", ns, "--wait=true", "--timeout=60s")
