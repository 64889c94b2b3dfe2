from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spillway.autoscale import Memory, autoscale, url_refusal
from spillway.ports import ClusterError, Credentials, Reading
from spillway.reconcile import reconcile
from tests.unit.conftest import minimal_spec, resource
from tests.unit.fakes import FakeCluster

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PROM = {"url": "http://prom:9090"}
LABELLED = {"spillway.io/prometheus-credentials": "true"}


class FakeSignals:
    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.calls: list[dict[str, Any]] = []

    def read(self, url: str, timeout_seconds: float, credentials: Credentials, queries: dict[str, str],
             max_age_seconds: float) -> Reading:
        self.calls.append({"url": url, "credentials": credentials, "queries": queries})
        return self.reading


def _setup(cluster: FakeCluster, **scaling: Any) -> dict[str, Any]:
    body = resource(minimal_spec(replicas={"min": 2, "max": 20}, scaling={"prometheus": PROM, **scaling}))
    reconcile(cluster, body, NOW)
    return body


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == type_)


def test_queue_over_target_scales_the_deployment_and_explains(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    source = FakeSignals(Reading({"queue_depth": 60.0, "in_flight": 10.0, "arrival_rate": 5.0, "latency": 0.1}))
    interval = autoscale(cluster, source, body, NOW)
    assert interval.seconds == 15 and interval.decision is not None
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 6
    assert ("scale", "Deployment", "checkout") in cluster.writes
    status = body["status"]
    assert status["desiredReplicas"] == 6 and status["signals"]["queueDepth"] == 60.0
    assert status["lastDecision"]["signal"] == "queue"
    assert status["scaleEvents"] == [{"time": "2026-11-24T12:00:00.000000Z", "change": 4}]
    assert _condition(body, "ScalingActive")["status"] == "True"
    assert _condition(body, "MetricsAvailable")["status"] == "True"
    assert any(e[1] == "ScaledUp" and e[2].startswith("2 -> 6 replicas: queue 60") for e in cluster.events)
    assert 'proxy="checkout"' in source.calls[0]["queries"]["queue_depth"]
    # the reconcile that follows agrees with the loop: no child is applied again
    before = len(cluster.writes)
    reconcile(cluster, body, NOW)
    assert [w for w in cluster.writes[before:] if w[0] != "status"] == []


def test_missing_metrics_hold_the_count_and_say_why(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    source = FakeSignals(Reading({}, {"queue_depth": "the query failed: connection refused",
                                      "in_flight": "the query returned no series"}))
    autoscale(cluster, source, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 2
    metrics = _condition(body, "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("False", "MetricsUnavailable")
    assert metrics["message"] == ("inFlight: the query returned no series; "
                                  "queueDepth: the query failed: connection refused")
    assert body["status"]["metricsFailures"] == 1
    assert ("Warning", "MetricsUnavailable", metrics["message"]) in cluster.events


def test_paused_reads_and_reports_but_never_scales(cluster: FakeCluster) -> None:
    body = _setup(cluster, paused=True)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 150.0})), body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 2
    active = _condition(body, "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "Paused")
    assert "the engine would choose" in active["message"]


def test_without_prometheus_the_loop_reports_and_does_nothing(cluster: FakeCluster) -> None:
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    writes = len(cluster.writes)
    autoscale(cluster, FakeSignals(Reading({})), body, NOW)
    assert _condition(body, "ScalingActive")["reason"] == "NoMetricsSource"
    assert [w for w in cluster.writes[writes:] if w[0] != "status"] == []


def test_bearer_token_comes_from_the_secret_and_stays_out_of_status(cluster: FakeCluster) -> None:
    cluster.objects[("v1", "Secret", "shop", "prom")] = {
        "metadata": {"name": "prom", "labels": LABELLED}, "data": {"token": base64.b64encode(b"t0ps3cret").decode()}}
    body = _setup(cluster)
    body["spec"]["scaling"]["prometheus"] = {**PROM, "bearerTokenSecretRef": {"name": "prom", "key": "token"}}
    source = FakeSignals(Reading({"queue_depth": 1.0}))
    autoscale(cluster, source, body, NOW)
    assert source.calls[0]["credentials"].bearer_token == "t0ps3cret"
    assert "t0ps3cret" not in repr(body["status"]) and "t0ps3cret" not in repr(cluster.events)


def test_a_ca_bundle_is_read_into_memory_and_never_written_to_a_file(cluster: FakeCluster,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cluster.objects[("v1", "Secret", "shop", "prom-ca")] = {
        "metadata": {"name": "prom-ca", "labels": LABELLED}, "data": {"ca.crt": base64.b64encode(pem.encode()).decode()}}
    body = _setup(cluster)
    body["spec"]["scaling"]["prometheus"] = {**PROM, "caSecretRef": {"name": "prom-ca", "key": "ca.crt"}}
    source = FakeSignals(Reading({"queue_depth": 1.0}))
    autoscale(cluster, source, body, NOW)
    assert source.calls[0]["credentials"].ca_pem == pem
    assert list(tmp_path.iterdir()) == []


def test_a_secret_without_the_opt_in_label_is_never_read_nor_sent(cluster: FakeCluster) -> None:
    cluster.objects[("v1", "Secret", "shop", "other")] = {
        "metadata": {"name": "other"}, "data": {"token": base64.b64encode(b"not-for-prometheus").decode()}}
    body = _setup(cluster)
    body["spec"]["scaling"]["prometheus"] = {**PROM, "bearerTokenSecretRef": {"name": "other", "key": "token"}}
    source = FakeSignals(Reading({"queue_depth": 1.0}))
    autoscale(cluster, source, body, NOW)
    assert source.calls == []
    metrics = _condition(body, "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("False", "SecretNotLabelled")
    assert metrics["message"] == ("Secret 'other' (scaling.prometheus) lacks the label "
                                  "spillway.io/prometheus-credentials=true that lets Spillway send it to Prometheus; "
                                  "nothing was read from it")
    assert ("Warning", "SecretNotLabelled", metrics["message"]) in cluster.events


@pytest.mark.parametrize(("url", "prefixes", "api_host", "refused"), [
    ("http://prom:9090", [], None, None),
    ("https://kubernetes.default.svc", [], None, "is the Kubernetes API server"),
    ("https://10.96.0.1:443", [], "10.96.0.1", "is the Kubernetes API server"),
    ("http://169.254.169.254/latest", [], None, "is a link-local address"),
    ("http://[fe80::1]:9090", [], None, "is a link-local address"),
    ("http://prom.monitoring:9090", ["http://prom.monitoring:9090", "https://thanos."], None, None),
    ("http://evil.example:9090", ["http://prom.monitoring:9090"], None, "is outside the Prometheus URLs"),
])
def test_the_operator_queries_only_the_prometheus_urls_it_may(url: str, prefixes: list[str], api_host: str | None,
                                                               refused: str | None) -> None:
    found = url_refusal(url, prefixes, api_host)
    assert (found is None) if refused is None else (found is not None and refused in found), found


def test_a_refused_url_is_a_condition_and_nothing_is_read(cluster: FakeCluster,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPILLWAY_PROMETHEUS_URL_PREFIXES", "http://prometheus.monitoring:9090")
    body = _setup(cluster)
    source = FakeSignals(Reading({"queue_depth": 100.0}))
    autoscale(cluster, source, body, NOW)
    assert source.calls == [] and not any(w[0] == "scale" for w in cluster.writes)
    metrics = _condition(body, "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("False", "PrometheusNotAllowed")


def test_missing_secret_is_a_condition(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    body["spec"]["scaling"]["prometheus"] = {**PROM, "basicAuthSecretRef": {"name": "nope"}}
    autoscale(cluster, FakeSignals(Reading({})), body, NOW)
    metrics = _condition(body, "MetricsAvailable")
    assert (metrics["reason"], metrics["message"]) == (
        "SecretUnavailable", "Secret 'nope' (scaling.prometheus) does not exist")


def test_pools_share_the_count_by_weight(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 20}, scaling={"prometheus": PROM},
                                 pools=[{"name": "large", "weight": 3}, {"name": "small", "weight": 1}]))
    reconcile(cluster, body, NOW)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 60.0})), body, NOW)
    large = cluster.get("apps/v1", "Deployment", "shop", "checkout-large")["spec"]["replicas"]
    small = cluster.get("apps/v1", "Deployment", "shop", "checkout-small")["spec"]["replicas"]
    assert (large, small) == (5, 1)


def test_restarted_loop_continues_from_status(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 100.0})), body, NOW)  # 2 -> 6 (step limit)
    assert body["status"]["desiredReplicas"] == 6
    # a new process reads the same status: the step already taken in this period counts
    fresh = {**body, "status": dict(body["status"])}
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 100.0})), fresh, NOW + timedelta(seconds=5))
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 6


def _status_writes(cluster: FakeCluster) -> int:
    return sum(1 for w in cluster.writes if w[0] == "status")


def test_a_steady_reading_writes_nothing_once_its_history_has_settled(cluster: FakeCluster) -> None:
    """Status changes with what a person sees at once; the history a restart needs at most once a
    minute, and only while what it would decide from changes (old counts and scale events
    leaving their windows), never for timestamps alone."""
    body = _setup(cluster)
    memory = Memory()
    steady = FakeSignals(Reading({"queue_depth": 40.0}))
    autoscale(cluster, steady, body, NOW, memory)
    first = _status_writes(cluster)
    for seconds in range(15, 60, 15):
        autoscale(cluster, steady, body, NOW + timedelta(seconds=seconds), memory)
    assert _status_writes(cluster) == first, "nothing visible changed within the first minute"
    for seconds in range(60, 360, 15):  # the scale event and the seeded count leave their windows
        autoscale(cluster, steady, body, NOW + timedelta(seconds=seconds), memory)
    settled = _status_writes(cluster)
    assert settled - first <= 2
    assert {r["replicas"] for r in body["status"]["recommendations"]} == {4}, "what a restart needs is in status"
    for seconds in range(360, 960, 15):  # ten minutes of a steady load
        autoscale(cluster, steady, body, NOW + timedelta(seconds=seconds), memory)
    assert _status_writes(cluster) == settled


def test_a_visible_change_is_written_at_once(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    memory = Memory()
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 50.04})), body, NOW, memory)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 50.04})), body, NOW + timedelta(seconds=15), memory)
    before = _status_writes(cluster)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 50.03})), body, NOW + timedelta(seconds=30), memory)
    assert _status_writes(cluster) == before, "a change below the displayed precision is not a change"
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 56.0})), body, NOW + timedelta(seconds=45), memory)
    assert _status_writes(cluster) == before + 1 and body["status"]["signals"]["queueDepth"] == 56.0


def test_paused_records_no_history(cluster: FakeCluster) -> None:
    body = _setup(cluster, paused=True)
    memory = Memory()
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 150.0})), body, NOW, memory)
    assert memory.state is None
    assert "scaleEvents" not in body["status"] and "recommendations" not in body["status"]


def test_a_refused_scale_leaves_no_event_and_no_history(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    memory = Memory()
    cluster.refuse["scale"] = ClusterError("the server is shutting down", status=503)
    with pytest.raises(ClusterError):
        autoscale(cluster, FakeSignals(Reading({"queue_depth": 60.0})), body, NOW, memory)
    assert not any(e[1] == "ScaledUp" for e in cluster.events)
    assert memory.state is None, "a step that did not happen must not spend the step budget"
    assert body["status"]["desiredReplicas"] == 2, "the record goes back with the failed move"
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 2


def test_pools_are_matched_by_name_when_one_deployment_is_missing(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 20}, scaling={"prometheus": PROM},
                                 pools=[{"name": "large", "weight": 3}, {"name": "small", "weight": 1}]))
    reconcile(cluster, body, NOW)
    del cluster.objects[("apps/v1", "Deployment", "shop", "checkout-large")]
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 80.0})), body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-small")["spec"]["replicas"] == 2, \
        "the small pool takes its own share (1 of 4 by weight of 8), never the large pool's"


def test_an_unreachable_objective_is_a_scaling_limited_condition(cluster: FakeCluster) -> None:
    body = _setup(cluster, targets={"latency": {"quantile": 0.95, "objective": "50ms"}})
    reading = Reading({"queue_depth": 0.0, "in_flight": 20.0, "arrival_rate": 100.0, "latency": 0.3})
    autoscale(cluster, FakeSignals(reading), body, NOW)
    limited = _condition(body, "ScalingLimited")
    assert (limited["status"], limited["reason"]) == ("True", "ObjectiveUnreachable")
    assert "200ms" in limited["message"] or "0.2" in limited["message"], limited["message"]


# --- replicas waiting for a node -----------------------------------------------------------------

class CountingCluster(FakeCluster):
    """Counts the LISTs by kind: a settled service must cost no request beyond its own reads."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[str] = []

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        self.listed.append(kind)
        return super().list(api_version, kind, namespace, labels)


UNSCHEDULABLE_MESSAGE = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available."


def _pending(cluster: FakeCluster, count: int) -> None:
    """`count` of the app's pods the scheduler marked Unschedulable."""
    labels = cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["template"]["metadata"]["labels"]
    for i in range(count):
        cluster.objects[("v1", "Pod", "shop", f"checkout-pending-{i}")] = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"checkout-pending-{i}", "labels": labels},
            "spec": {}, "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": UNSCHEDULABLE_MESSAGE}]}}


def _scheduled(cluster: FakeCluster) -> None:
    for key in [k for k in cluster.objects if k[1] == "Pod"]:
        del cluster.objects[key]
    cluster.make_ready("Deployment", "checkout")


def _replicas(cluster: FakeCluster) -> int:
    replicas: int = cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"]
    return replicas


def test_replicas_waiting_for_a_node_hold_the_scale_up_and_say_why(cluster: FakeCluster) -> None:
    body = _setup(cluster)
    memory = Memory()
    busy = FakeSignals(Reading({"queue_depth": 100.0}))  # asks for 10
    autoscale(cluster, busy, body, NOW, memory)
    assert _replicas(cluster) == 6  # 2 -> 6: the step limit
    cluster.objects[("apps/v1", "Deployment", "shop", "checkout")]["status"] = {"replicas": 6, "readyReplicas": 2}
    _pending(cluster, 4)

    for seconds in (15, 30, 45):  # the load still asks for more, and the step budget is back
        autoscale(cluster, busy, body, NOW + timedelta(seconds=seconds), memory)
        assert _replicas(cluster) == 6, "no scale-up while replicas asked for earlier wait for a node"
    pending = _condition(body, "CapacityPending")
    assert (pending["status"], pending["reason"]) == ("True", "Unschedulable")
    assert pending["message"].startswith(
        "4 of 6 replicas wait for a node; the queue asks for no more until they are scheduled.")
    assert UNSCHEDULABLE_MESSAGE in pending["message"]
    assert [e for e in cluster.events if e[1] == "Unschedulable"] == [("Warning", "Unschedulable", pending["message"])]
    assert body["status"]["unschedulableReplicas"] == 4
    limited = _condition(body, "ScalingLimited")
    assert (limited["status"], limited["reason"]) == ("True", "CapacityPending")
    assert body["status"]["desiredReplicas"] == 6

    _scheduled(cluster)  # a node came; the pods run
    autoscale(cluster, busy, body, NOW + timedelta(seconds=60), memory)
    assert _replicas(cluster) == 10, "the scale-up resumes at once"
    pending = _condition(body, "CapacityPending")
    assert (pending["status"], pending["reason"]) == ("False", "Scheduled")
    assert body["status"]["unschedulableReplicas"] == 0


def test_replicas_waiting_for_a_node_never_stop_a_scale_down(cluster: FakeCluster) -> None:
    body = _setup(cluster, behavior={"scaleDown": {"stabilizationWindow": "0s"}})
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 60.0})), body, NOW)
    assert _replicas(cluster) == 6
    _pending(cluster, 4)
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 0.0})), body, NOW + timedelta(minutes=2))
    assert _replicas(cluster) < 6
    assert _condition(body, "CapacityPending")["status"] == "True"


def test_a_settled_service_lists_no_pods() -> None:
    cluster = CountingCluster()
    body = _setup(cluster)
    cluster.make_ready("Deployment", "checkout")
    cluster.listed.clear()
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 20.0})), body, NOW)
    assert "Pod" not in cluster.listed
    assert _condition(body, "CapacityPending")["reason"] == "Scheduled"
    # While a replica is not ready, the pods are looked at (one LIST).
    cluster.objects[("apps/v1", "Deployment", "shop", "checkout")]["status"]["readyReplicas"] = 1
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 20.0})), body, NOW + timedelta(seconds=15))
    assert cluster.listed.count("Pod") == 1


def test_an_interval_on_a_new_generation_leaves_its_cleanup_to_the_reconcile(cluster: FakeCluster) -> None:
    """The scaling loop sees an edited spec as soon as the watch does, often before the update's
    reconcile: if its status write claimed the new generation, that reconcile would take it as
    seen and keep the objects of a provider switched away from."""
    body = resource(minimal_spec(replicas={"min": 2, "max": 20}, scaling={"prometheus": PROM},
                                 balancing={"provider": "HAProxy"}))
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-haproxy") is not None
    body["spec"]["balancing"] = {"provider": "Service"}
    body["metadata"]["generation"] = 2
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 1.0})), body, NOW + timedelta(seconds=15))
    assert body["status"]["observedGeneration"] == 1
    reconcile(cluster, body, NOW + timedelta(seconds=16))
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-haproxy") is None
    assert body["status"]["observedGeneration"] == 2


def test_a_deployment_of_its_name_that_is_someone_elses_is_never_scaled(cluster: FakeCluster) -> None:
    """The reconcile refuses to take it over (NameConflict); the scaling loop never scales it."""
    cluster.objects[("apps/v1", "Deployment", "shop", "checkout")] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}}}}
    body = _setup(cluster)
    assert _condition(body, "Ready")["reason"] == "NameConflict"
    autoscale(cluster, FakeSignals(Reading({"queue_depth": 600.0, "in_flight": 10.0})), body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 1
    assert not any(w[0] == "scale" for w in cluster.writes)
