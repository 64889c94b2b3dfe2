"""The scaling loop against the real control plane: quiet when nothing changes (the API server's
audit log is the evidence), and standing through faults: Prometheus gone for five intervals, the
operator killed with SIGKILL and restarted, the API server restarted.

The signals come from an exporter the test drives (a stand-in for an app, on purpose: these
tests need a scripted load, and they read it through `Custom` queries so they test the loop,
not a preset)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.components import DrivenExporter, Prometheus, prometheus_scraping, wait_until
from tests.integration.harness import (
    Kubectl, OperatorProcess, audit_offset, condition, operator_writes, running_operator, scalable_service,
)

pytestmark = pytest.mark.integration
INTERVAL = 1.0


@pytest.fixture()
def driven() -> Iterator[tuple[DrivenExporter, Prometheus]]:
    with DrivenExporter() as exporter:
        exporter.set(test_queue=0, test_in_flight=5)
        with prometheus_scraping(exporter, {"namespace": "any"}) as prom:
            yield exporter, prom


def _service(name: str, ns: str, prom: Prometheus, **behavior: Any) -> dict[str, Any]:
    body = scalable_service(name, ns, replicas={"min": 2, "max": 12}, scaling={
        "prometheus": {"url": prom.url, "timeout": "1s"}, "interval": f"{INTERVAL:g}s", "metricsSource": "Custom",
        "queries": {"queueDepth": "sum(test_queue)", "inFlight": "sum(test_in_flight)"},
        "targets": {"queuePerReplica": 10, "utilization": 0.7}, "behavior": behavior})
    # Fields the API server stores in another form (1 -> "1", 0.5 -> "500m") or drops (empty lists):
    # none of them may make the loop re-apply the Deployment.
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": 0.5, "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "128Mi"}}
    container["env"] = []
    body["spec"]["template"]["spec"]["tolerations"] = []
    return body


def _intervals() -> float:
    return REGISTRY.get_sample_value("spillway_scaling_intervals_total", {"outcome": "ok"}) or 0.0


def _replicas(k: Kubectl, ns: str, name: str) -> int:
    deployment = k.get("deployment", name, ns)
    assert deployment is not None
    replicas: int = deployment["spec"]["replicas"]
    return replicas


def test_a_steady_load_costs_no_api_write_over_ten_intervals(
        k: Kubectl, kube: Any, driven: tuple[DrivenExporter, Prometheus]) -> None:
    if kube.audit_log is None:
        pytest.skip("the audit log is the evidence, and only the local control plane keeps one")
    exporter, prom = driven
    ns = k.namespace("quiet")
    exporter.set(test_queue=40)
    with running_operator(kube.kubeconfig):
        k.apply(_service("steady", ns, prom, scaleUp={"maxStepPods": 10}))
        k.wait_for("ssvc", "steady", ns, lambda s: (s.get("status") or {}).get("desiredReplicas") == 4
                   and (condition(s, "Ready") or {}).get("status") == "True", timeout=60, what="4 ready replicas")
        # Settled: the first full status write of the running count has happened.
        wait_until(lambda: k.get("ssvc", "steady", ns)["status"]["lastDecision"]["replicas"] == 4, 30, "settled")
        time.sleep(2 * INTERVAL)
        since, counted = audit_offset(kube), _intervals()
        wait_until(lambda: _intervals() >= counted + 10, 30, "ten more scaling intervals", every=0.25)
        assert operator_writes(kube, ns, since) == []
        # A change a person would see is written at once.
        exporter.set(test_queue=70)
        k.wait_for("deployment", "steady", ns, lambda d: d["spec"]["replicas"] == 7, timeout=10)
        assert any(w.startswith("patch scalableservices/status") for w in operator_writes(kube, ns, since))
        k.run("delete", "ssvc", "steady", "-n", ns, "--wait=true", "--timeout=60s")


def test_prometheus_gone_for_five_intervals_under_load_never_scales_down(
        k: Kubectl, kube: Any, driven: tuple[DrivenExporter, Prometheus]) -> None:
    exporter, prom = driven
    ns = k.namespace("promgone")
    exporter.set(test_queue=60)
    with running_operator(kube.kubeconfig):
        k.apply(_service("loaded", ns, prom, scaleUp={"maxStepPods": 10}, scaleDown={"stabilizationWindow": "0s"}))
        k.wait_for("deployment", "loaded", ns, lambda d: d["spec"]["replicas"] == 6, timeout=30)
        prom.stop()
        k.wait_for("ssvc", "loaded", ns, lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "False",
                   timeout=10, what="MetricsAvailable=False")
        counted = _intervals()
        while _intervals() < counted + 5:
            assert _replicas(k, ns, "loaded") == 6, "scaled while Prometheus was gone"
            time.sleep(0.2)
        assert _replicas(k, ns, "loaded") == 6
        exporter.set(test_queue=90)
        prom.start()
        k.wait_for("ssvc", "loaded", ns, lambda s: (condition(s, "MetricsAvailable") or {}).get("status") == "True",
                   timeout=30, what="MetricsAvailable=True once Prometheus is back")
        k.wait_for("deployment", "loaded", ns, lambda d: d["spec"]["replicas"] == 9, timeout=15)
        k.run("delete", "ssvc", "loaded", "-n", ns, "--wait=true", "--timeout=60s")


def test_an_operator_killed_mid_interval_resumes_without_an_extra_step_or_lost_history(
        k: Kubectl, kube: Any, driven: tuple[DrivenExporter, Prometheus], tmp_path: Path) -> None:
    exporter, prom = driven
    ns = k.namespace("killed")
    exporter.set(test_queue=100)  # wants 10; the step limit allows 2 more per 30 s
    args = ["--kubeconfig", kube.kubeconfig, "--liveness", "", "--metrics-port", "0"]
    operator = OperatorProcess(args, tmp_path / "first.log").start()
    try:
        k.apply(_service("stepped", ns, prom, scaleUp={"maxStepPods": 2, "maxStepPercent": None, "period": "30s"}))
        stepped = k.wait_for("ssvc", "stepped", ns, lambda s: (s.get("status") or {}).get("desiredReplicas") == 4,
                             timeout=30, what="the first step, 2 -> 4")
        events_before = stepped["status"]["scaleEvents"]
        time.sleep(INTERVAL * 2.5)  # inside later intervals, all held by the step limit
        operator.kill()
    finally:
        operator.stop()
    restarted = OperatorProcess(args, tmp_path / "second.log").start()
    try:
        counted_from = time.monotonic()
        # The restarted operator reads the history from status: the period's step is spent.
        while time.monotonic() - counted_from < 6 * INTERVAL:
            assert _replicas(k, ns, "stepped") == 4, restarted.output()[-2000:]
            time.sleep(0.25)
        ssvc = k.get("ssvc", "stepped", ns)
        assert ssvc is not None
        assert ssvc["status"]["scaleEvents"][: len(events_before)] == events_before, "history lost"
        assert (condition(ssvc, "ScalingLimited") or {}).get("reason") == "StepLimit"
        k.run("delete", "ssvc", "stepped", "-n", ns, "--wait=true", "--timeout=60s")
    finally:
        restarted.stop()


def test_the_loop_resumes_by_itself_after_the_api_server_restarts(
        k: Kubectl, kube: Any, driven: tuple[DrivenExporter, Prometheus]) -> None:
    if kube.restart_apiserver is None:
        pytest.skip("restarting the API server needs the local control plane")
    exporter, prom = driven
    ns = k.namespace("apirestart")
    exporter.set(test_queue=30)
    with running_operator(kube.kubeconfig):
        k.apply(_service("survivor", ns, prom, scaleUp={"maxStepPods": 10}))
        k.wait_for("deployment", "survivor", ns, lambda d: d["spec"]["replicas"] == 3, timeout=30)
        kube.restart_apiserver()
        exporter.set(test_queue=80)
        k.wait_for("deployment", "survivor", ns, lambda d: d["spec"]["replicas"] == 8, timeout=60,
                   what="a scale decision after the API server came back")
        k.run("delete", "ssvc", "survivor", "-n", ns, "--wait=true", "--timeout=60s")
