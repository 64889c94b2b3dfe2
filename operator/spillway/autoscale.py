"""One scaling interval of a ScalableService: read its signals, decide, apply, explain.

Reads through the `SignalSource` port, writes through the `Cluster` port; the decision itself
is `spillway.scaling.decide`, pure. The count reaches the Deployments through their scale
subresource; status keeps the engine's history so that a restarted operator continues where
it stopped. A paused resource is read and reported but never scaled.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from spillway import telemetry
from spillway.api import SpecError, parse_spec
from spillway.api.spec import Prometheus, ScalableServiceSpec
from spillway.api.status import rfc3339
from spillway.metrics.presets import render
from spillway.ports import Cluster, Credentials, SignalSource
from spillway.reporting import Report
from spillway.resources.meta import Owner
from spillway.resources.workload import deployment_name, split_by_weight
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import Decision, decide
from spillway.scaling.proposals import Signals

DEFAULT_INTERVAL_SECONDS = 15.0
_SIGNAL_FIELDS = {"queue_depth": "queueDepth", "in_flight": "inFlight", "arrival_rate": "arrivalRate",
                  "latency": "latencySeconds"}


@dataclass(frozen=True)
class Interval:
    seconds: float
    decision: Decision | None


class SecretProblem(Exception):
    pass


def autoscale(cluster: Cluster, source: SignalSource, body: dict[str, Any], now: datetime) -> Interval:
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError:
        return Interval(DEFAULT_INTERVAL_SECONDS, None)  # the reconcile reports it
    interval = spec.scaling.interval.total_seconds()
    owner = Owner.from_body(body)
    status = body.get("status") or {}
    conditions = list(status.get("conditions") or [])
    report = Report(cluster, body, body["metadata"].get("generation"), now)
    prometheus = spec.scaling.prometheus
    if prometheus is None:
        conditions = report.set(conditions, "ScalingActive", False, "NoMetricsSource",
                                "scaling.prometheus is not set: Spillway runs replicas.min.")
        report.publish({"conditions": conditions}, ready=True, message="static")
        return Interval(interval, None)

    deployments = _deployments(cluster, owner, spec)
    if not deployments:
        return Interval(interval, None)  # nothing runs yet; the reconcile creates it
    current = sum(d["spec"].get("replicas", 1) for d in deployments)
    try:
        credentials = _credentials(cluster, owner.namespace, prometheus)
    except SecretProblem as err:
        conditions = report.set(conditions, "MetricsAvailable", False, "SecretUnavailable", str(err))
        report.publish({"conditions": conditions}, ready=False, message=str(err))
        return Interval(interval, None)
    quantile = spec.scaling.targets.latency.quantile if spec.scaling.targets.latency else 0.95
    queries = render(spec.scaling.metrics_source, spec.scaling.queries, namespace=owner.namespace,
                     service=owner.name, deployments=[d["metadata"]["name"] for d in deployments],
                     quantile=quantile)
    reading = source.read(prometheus.url, prometheus.timeout.total_seconds(), credentials, queries,
                          max_age_seconds=max(60.0, 3 * interval))
    signals = Signals(queue_depth=reading.values.get("queue_depth"), in_flight=reading.values.get("in_flight"),
                      arrival_rate=reading.values.get("arrival_rate"),
                      latency_seconds=reading.values.get("latency"), missing=frozenset(reading.missing))
    decision = decide(spec, signals, current, EngineState.from_status(status), now)
    _observe(owner, reading.values, decision)

    paused = spec.scaling.paused
    if not paused and decision.replicas != current:
        # The decision is recorded before the Deployments move, so a reconcile that runs in
        # between keeps the new count rather than the old one.
        cluster.patch_status(body, {"desiredReplicas": decision.replicas})
        body.setdefault("status", {})["desiredReplicas"] = decision.replicas
        _scale(cluster, owner, spec, deployments, decision.replicas)
        kind = "ScaledUp" if decision.direction == "up" else "ScaledDown"
        cluster.event(body, "Normal", kind, f"{current} -> {decision.replicas} replicas: {decision.reason}")
        telemetry.DECISIONS.labels(owner.namespace, owner.name, decision.direction).inc()

    if paused:
        conditions = report.set(conditions, "ScalingActive", False, "Paused",
                                f"scaling.paused is set; the engine would choose {decision.replicas}.")
    else:
        conditions = report.set(conditions, "ScalingActive", True, "Decided", decision.reason)
    conditions = report.set(conditions, "ScalingLimited", decision.limited is not None,
                            decision.limited or "WithinLimits", decision.reason if decision.limited else
                            "The count is within bounds and step limits.")
    if reading.missing:
        conditions = report.set(conditions, "MetricsAvailable", False, "MetricsUnavailable", "; ".join(
            f"{_SIGNAL_FIELDS[s]}: {why}" for s, why in sorted(reading.missing.items())))
    else:
        conditions = report.set(conditions, "MetricsAvailable", True, "SignalsRead",
                                f"Read {', '.join(_SIGNAL_FIELDS[s] for s in sorted(reading.values))}.")
    stamp = rfc3339(now)
    fields: dict[str, Any] = {
        **decision.state.to_status(),
        "signals": {**{_SIGNAL_FIELDS[s]: v for s, v in reading.values.items()}, "time": stamp},
        "lastDecision": {"replicas": decision.replicas, "signal": decision.signal, "reason": decision.reason,
                         "time": stamp},
        "conditions": conditions,
    }
    if not paused:
        fields["desiredReplicas"] = decision.replicas
    report.publish(fields, ready=True, message=decision.reason)
    return Interval(interval, decision)


def _deployments(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec) -> list[dict[str, Any]]:
    if spec.target_ref is not None:
        names = [spec.target_ref.name]
    else:
        names = [deployment_name(owner, p) for p in spec.pools] or [deployment_name(owner, None)]
    found = [cluster.get("apps/v1", "Deployment", owner.namespace, n) for n in names]
    return [d for d in found if d is not None]


def _scale(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec, deployments: list[dict[str, Any]],
           replicas: int) -> None:
    shares = split_by_weight(replicas, [p.weight for p in spec.pools]) if spec.pools else [replicas]
    for deployment, share in zip(deployments, shares, strict=False):
        if deployment["spec"].get("replicas") != share:
            cluster.scale("apps/v1", "Deployment", owner.namespace, deployment["metadata"]["name"], share)


def _credentials(cluster: Cluster, namespace: str, prometheus: Prometheus) -> Credentials:
    def value(name: str, key: str) -> str:
        secret = cluster.get("v1", "Secret", namespace, name)
        if secret is None:
            raise SecretProblem(f"Secret {name!r} (scaling.prometheus) does not exist")
        data = (secret.get("data") or {}).get(key)
        if data is None:
            raise SecretProblem(f"Secret {name!r} has no key {key!r}")
        return base64.b64decode(data).decode()

    bearer = basic = ca_file = None
    if prometheus.bearer_token_secret_ref:
        bearer = value(prometheus.bearer_token_secret_ref.name, prometheus.bearer_token_secret_ref.key)
    if prometheus.basic_auth_secret_ref:
        ref = prometheus.basic_auth_secret_ref.name
        basic = (value(ref, "username"), value(ref, "password"))
    if prometheus.ca_secret_ref:
        pem = value(prometheus.ca_secret_ref.name, prometheus.ca_secret_ref.key)
        path = Path(tempfile.gettempdir()) / f"spillway-ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_text(pem)
        ca_file = str(path)
    return Credentials(bearer_token=bearer, basic_auth=basic, ca_file=ca_file,
                       insecure_skip_verify=prometheus.insecure_skip_verify)


def _observe(owner: Owner, values: dict[str, float], decision: Decision) -> None:
    for signal, value in values.items():
        telemetry.SIGNALS.labels(owner.namespace, owner.name, signal).set(value)
    telemetry.DESIRED.labels(owner.namespace, owner.name).set(decision.replicas)
