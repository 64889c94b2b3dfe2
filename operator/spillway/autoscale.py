"""One scaling interval of a ScalableService: read its signals, decide, apply, explain.

Two steps, so that a slow Prometheus never holds the per-resource lock a reconcile waits for:
`observe` reads the signals (no lock, no write), `act` decides, scales and reports under the
lock, on a freshly read body. Reads go through the `SignalSource` port, writes through the
`Cluster` port; the decision itself is `spillway.scaling.decide`, pure.

Quiet by design: the engine's history lives in the operator's memory (`Memory`, one per
resource) as the HPA keeps its recommendations; status is written when the decision, a
condition or a displayed signal value changes, and otherwise at most once a minute so that a
restarted operator finds a recent history. A scale event enters the history only once the
scale patch succeeded; a paused resource records nothing.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from spillway import telemetry
from spillway.api import SpecError, parse_spec
from spillway.api.spec import Prometheus, ScalableServiceSpec
from spillway.api.status import rfc3339
from spillway.capacity import Unschedulable, unschedulable
from spillway.children import controlled_by
from spillway.metrics.presets import grouped, latency_kind, render
from spillway.ports import Cluster, Credentials, GroupedSignalSource, Reading, SignalSource
from spillway.reporting import Report
from spillway.resources.meta import Owner
from spillway.resources.workload import app_selector, deployment_name, split_by_weight
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import Decision, decide
from spillway.scaling.proposals import Signals, displayed

DEFAULT_INTERVAL_SECONDS = 15.0
# The history a restart needs is persisted at most this often when only it changed.
PERSIST_EVERY = timedelta(seconds=60)
_SIGNAL_FIELDS = {"queue_depth": "queueDepth", "in_flight": "inFlight", "arrival_rate": "arrivalRate",
                  "latency": "latencySeconds"}
# Status fields that change every interval without anything a person would see changing.
_HISTORY_FIELDS = ("recommendations", "scaleEvents", "metricsFailures", "lastScaleTime")


@dataclass(frozen=True)
class Interval:
    seconds: float
    decision: Decision | None


@dataclass
class Memory:
    """What the loop keeps between intervals for one ScalableService."""

    state: EngineState | None = None  # None: not seen yet, read from status
    persisted_at: datetime | None = None
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS  # the spec's, once known: retries come as often


@dataclass(frozen=True)
class Observation:
    """One interval's reading, taken without the lock."""

    reading: Reading | None
    interval_seconds: float
    problem: tuple[str, str] | None = None  # (reason, message) of a condition instead of a reading
    spec_generation: int | None = None


class SecretProblem(Exception):
    def __init__(self, message: str, reason: str = "SecretUnavailable") -> None:
        super().__init__(message)
        self.reason = reason


# A Secret is read as Prometheus credentials only when it carries this label: whoever may create a
# ScalableService, but not read Secrets, could otherwise send any Secret of the namespace to a
# URL of their choosing.
CREDENTIALS_LABEL = "spillway.io/prometheus-credentials"
# The operator's allow-list of Prometheus URL prefixes (the chart's prometheus.allowedURLPrefixes),
# comma-separated; empty: any URL but those refused below.
URL_PREFIXES_ENV = "SPILLWAY_PROMETHEUS_URL_PREFIXES"
# Never a Prometheus: the API server (the operator's own token would not be sent, but its answers
# would drive scaling) and link-local addresses (cloud metadata services).
_API_SERVER_HOSTS = ("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")


def url_refusal(url: str, prefixes: list[str], api_server_host: str | None) -> str | None:
    """Why the operator does not query `url`, or None. Pure."""
    host = (urlsplit(url).hostname or "").lower()
    if host in (*_API_SERVER_HOSTS, (api_server_host or "").lower().strip("[]")) and host:
        return f"{url} is the Kubernetes API server, not a Prometheus"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_link_local:
        return f"{url} is a link-local address (such as a cloud's metadata service), never a Prometheus"
    if prefixes and not any(url.startswith(prefix) for prefix in prefixes):
        return (f"{url} is outside the Prometheus URLs this operator may query ({', '.join(prefixes)}; the chart's "
                "prometheus.allowedURLPrefixes)")
    return None


def autoscale(cluster: Cluster, source: SignalSource, body: dict[str, Any], now: datetime,
              memory: Memory | None = None) -> Interval:
    """Both steps at once, for a caller that holds no lock (tests, tools)."""
    return act(cluster, body, observe(cluster, source, body), now, memory or Memory())


def observe(cluster: Cluster, source: SignalSource, body: dict[str, Any]) -> Observation:
    """Reads the signals the spec asks for; writes nothing."""
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError:
        return Observation(None, DEFAULT_INTERVAL_SECONDS)  # the reconcile reports it
    interval = spec.scaling.interval.total_seconds()
    generation = body["metadata"].get("generation")
    prometheus = spec.scaling.prometheus
    if prometheus is None:
        return Observation(None, interval, spec_generation=generation)
    owner = Owner.from_body(body)
    prefixes = [p.strip() for p in os.environ.get(URL_PREFIXES_ENV, "").split(",") if p.strip()]
    refused = url_refusal(prometheus.url, prefixes, os.environ.get("KUBERNETES_SERVICE_HOST"))
    if refused is not None:
        return Observation(None, interval, ("PrometheusNotAllowed", refused), generation)
    try:
        credentials = _credentials(cluster, owner.namespace, prometheus)
    except SecretProblem as err:
        return Observation(None, interval, (err.reason, str(err)), generation)
    quantile = spec.scaling.targets.latency.quantile if spec.scaling.targets.latency else 0.95
    source_name, overrides, deployments = spec.scaling.metrics_source, spec.scaling.queries, _deployment_names(owner, spec)
    queries = render(source_name, overrides, namespace=owner.namespace, service=owner.name, deployments=deployments,
                     quantile=quantile)
    url, timeout, max_age = prometheus.url, prometheus.timeout.total_seconds(), max(60.0, 3 * interval)
    if not isinstance(source, GroupedSignalSource):
        return Observation(source.read(url, timeout, credentials, queries, max_age_seconds=max_age), interval,
                           spec_generation=generation)
    # Preset signals are read with every other service's (one query for all, each taking its
    # row); overridden ones, and those no grouping reads exactly, alone.
    together = grouped(source_name, overrides, namespace=owner.namespace, service=owner.name,
                       deployments=deployments, quantile=quantile)
    alone = {signal: query for signal, query in queries.items() if signal not in together}
    parts = [source.read(url, timeout, credentials, alone, max_age_seconds=max_age)] if alone else []
    if together:
        parts.append(source.read_grouped(url, timeout, credentials, together, max_age_seconds=max_age,
                                         interval_seconds=interval))
    values = {s: v for part in parts for s, v in part.values.items()}
    missing = {s: why for part in parts for s, why in part.missing.items()}
    reading = Reading(values={s: values[s] for s in queries if s in values},
                      missing={s: missing[s] for s in queries if s in missing})
    return Observation(reading, interval, spec_generation=generation)


def act(cluster: Cluster, body: dict[str, Any], observation: Observation, now: datetime, memory: Memory) -> Interval:
    """Decides on `observation` for the resource as `body` shows it now, scales and reports."""
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError:
        return Interval(DEFAULT_INTERVAL_SECONDS, None)
    interval = spec.scaling.interval.total_seconds()
    memory.interval_seconds = interval
    owner = Owner.from_body(body)
    status = body.get("status") or {}
    conditions = list(status.get("conditions") or [])
    report = Report(cluster, body, body["metadata"].get("generation"), now, observes=False)
    if spec.scaling.prometheus is None:
        conditions = report.set(conditions, "ScalingActive", False, "NoMetricsSource",
                                "scaling.prometheus is not set: Spillway runs replicas.min.")
        report.publish({"conditions": conditions}, ready=True, message="static")
        return Interval(interval, None)
    if observation.problem is not None or observation.reading is None:
        if observation.problem is not None:
            conditions = report.set(conditions, "MetricsAvailable", False, *observation.problem)
            report.publish({"conditions": conditions}, ready=False, message=observation.problem[1])
        return Interval(interval, None)
    if observation.spec_generation != body["metadata"].get("generation"):
        return Interval(min(interval, 1.0), None)  # the spec moved while reading: read again soon

    deployments = _deployments(cluster, owner, spec)
    if not deployments:
        return Interval(interval, None)  # nothing runs yet; the reconcile creates it
    current = sum(d["spec"].get("replicas", 1) for d in deployments.values())
    reading = observation.reading
    signals = Signals(queue_depth=reading.values.get("queue_depth"), in_flight=reading.values.get("in_flight"),
                      arrival_rate=reading.values.get("arrival_rate"),
                      latency_seconds=reading.values.get("latency"), missing=frozenset(reading.missing),
                      latency_kind=latency_kind(spec.scaling.metrics_source) if not spec.scaling.queries.latency
                      else "quantile")
    before = memory.state if memory.state is not None else EngineState.from_status(status)
    waiting = _waiting(cluster, owner, spec, deployments)
    decision = decide(spec, signals, current, before, now, unschedulable=waiting.count)
    _observe(owner, reading.values, decision)

    paused = spec.scaling.paused
    if not paused:
        if decision.replicas != current:
            _move(cluster, body, owner, spec, deployments, current, decision)
        memory.state = decision.state  # only once the count really moved (or nothing had to)

    if paused:
        conditions = report.set(conditions, "ScalingActive", False, "Paused",
                                f"scaling.paused is set; the engine would choose {decision.replicas}.")
    else:
        conditions = report.set(conditions, "ScalingActive", True, "Decided", decision.reason)
    unreachable = decision.objective_unreachable
    if unreachable is not None:
        conditions = report.set(conditions, "ScalingLimited", True, "ObjectiveUnreachable", unreachable)
    else:
        conditions = report.set(conditions, "ScalingLimited", decision.limited is not None,
                                decision.limited or "WithinLimits", decision.reason if decision.limited else
                                "The count is within bounds and step limits.")
    if waiting.count:
        conditions = report.set(conditions, "CapacityPending", True, "Unschedulable", (
            f"{waiting.count} of {current} replicas wait for a node; the queue asks for no more until they are "
            f"scheduled. The scheduler: {waiting.message}"))
    else:
        conditions = report.set(conditions, "CapacityPending", False, "Scheduled",
                                "Every replica asked for has a node.")
    if reading.missing:
        conditions = report.set(conditions, "MetricsAvailable", False, "MetricsUnavailable", "; ".join(
            f"{_SIGNAL_FIELDS[s]}: {why}" for s, why in sorted(reading.missing.items())))
    else:
        conditions = report.set(conditions, "MetricsAvailable", True, "SignalsRead",
                                f"Read {', '.join(_SIGNAL_FIELDS[s] for s in sorted(reading.values))}.")
    stamp = rfc3339(now)
    fields: dict[str, Any] = {
        "signals": {**{_SIGNAL_FIELDS[s]: displayed(v) for s, v in reading.values.items()}, "time": stamp},
        "lastDecision": {"replicas": decision.replicas, "signal": decision.signal, "reason": decision.reason,
                         "time": stamp},
        "unschedulableReplicas": waiting.count,
        "conditions": conditions,
    }
    if not paused:
        fields["desiredReplicas"] = decision.replicas
        fields.update((memory.state or before).to_status())
    due = memory.persisted_at is None or (now - memory.persisted_at >= PERSIST_EVERY
                                          and _restart_needs(fields, spec) != _restart_needs(status, spec))
    shown, live = _visible(fields), _visible(status)
    if due or any(live.get(key) != value for key, value in shown.items()):
        report.publish(fields, ready=True, message=decision.reason)
        memory.persisted_at = now
    else:
        report.publish({"conditions": conditions}, ready=True, message=decision.reason)  # events of moved ones
    return Interval(interval, decision)


def report_failure(cluster: Cluster, body: dict[str, Any], error: str, now: datetime) -> None:
    """An interval failed in a way nothing above foresaw: say so; the loop goes on."""
    status = body.get("status") or {}
    report = Report(cluster, body, body["metadata"].get("generation"), now, observes=False)
    conditions = report.set(list(status.get("conditions") or []), "ScalingActive", False, "IntervalFailed",
                            f"The last scaling interval failed: {error[:400]}")
    report.publish({"conditions": conditions}, ready=False, message=error)


def _move(cluster: Cluster, body: dict[str, Any], owner: Owner, spec: ScalableServiceSpec,
          deployments: dict[str, dict[str, Any]], current: int, decision: Decision) -> None:
    # The decision is recorded before the Deployments move, so a reconcile that runs in between
    # keeps the new count rather than the old one; if the move fails, the record goes back.
    cluster.patch_status(body, {"desiredReplicas": decision.replicas})
    body.setdefault("status", {})["desiredReplicas"] = decision.replicas
    try:
        _scale(cluster, owner, spec, deployments, decision.replicas)
    except Exception:
        cluster.patch_status(body, {"desiredReplicas": current})
        body["status"]["desiredReplicas"] = current
        raise
    kind = "ScaledUp" if decision.direction == "up" else "ScaledDown"
    cluster.event(body, "Normal", kind, f"{current} -> {decision.replicas} replicas: {decision.reason}")
    telemetry.DECISIONS.labels(owner.namespace, owner.name, decision.direction).inc()


def _restart_needs(status: dict[str, Any], spec: ScalableServiceSpec) -> tuple[Any, ...]:
    """What of the history a restarted operator would decide differently without: the counts
    recommended in the windows and the scale events, not their timestamps' progress. A steady
    load keeps recommending the running count, which a restart seeds anyway, so it writes
    nothing; the failure count matters only up to where Fallback acts."""
    counts = sorted({r.get("replicas") for r in status.get("recommendations") or [] if isinstance(r, dict)},
                    key=repr)
    events = [(e.get("time"), e.get("change")) for e in status.get("scaleEvents") or [] if isinstance(e, dict)]
    policy = spec.scaling.on_metrics_unavailable
    failures = status.get("metricsFailures") or 0
    relevant = min(failures, policy.after) if policy.action == "Fallback" else min(failures, 1)
    return tuple(counts), tuple(events), relevant


def _visible(status: dict[str, Any]) -> dict[str, Any]:
    """What a person sees of the loop's status: everything but timestamps and the history."""
    shown = {k: v for k, v in status.items() if k not in _HISTORY_FIELDS}
    for key in ("signals", "lastDecision"):
        if isinstance(shown.get(key), dict):
            shown[key] = {k: v for k, v in shown[key].items() if k != "time"}
    conditions = shown.get("conditions")
    if isinstance(conditions, list):
        shown["conditions"] = sorted(((c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                                      for c in conditions if isinstance(c, dict)), key=repr)
    return shown


def _waiting(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec,
             deployments: dict[str, dict[str, Any]]) -> Unschedulable:
    """The app's replicas that wait for a node; the pods are listed only while some replica asked
    for is not ready (a Pending pod is never ready), so a settled service costs no request."""
    asked = sum(d["spec"].get("replicas", 1) for d in deployments.values())
    ready = sum((d.get("status") or {}).get("readyReplicas") or 0 for d in deployments.values())
    if ready >= asked:
        return Unschedulable(0, "")
    adopted = deployments.get(spec.target_ref.name) if spec.target_ref is not None else None
    return unschedulable(cluster, owner.namespace, app_selector(owner, spec, adopted))


def _deployment_names(owner: Owner, spec: ScalableServiceSpec) -> list[str]:
    if spec.target_ref is not None:
        return [spec.target_ref.name]
    return [deployment_name(owner, p) for p in spec.pools] or [deployment_name(owner, None)]


def _deployments(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec) -> dict[str, dict[str, Any]]:
    """The Deployments to scale: the adopted one, or those of the names Spillway gives its own that
    it controls (a Deployment of such a name that is someone else's is never scaled)."""
    found = {n: cluster.get("apps/v1", "Deployment", owner.namespace, n) for n in _deployment_names(owner, spec)}
    return {n: d for n, d in found.items()
            if d is not None and (spec.target_ref is not None or controlled_by(d, owner.uid))}


def _scale(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec, deployments: dict[str, dict[str, Any]],
           replicas: int) -> None:
    """Each pool's Deployment, matched by name, gets its weight's share."""
    if spec.pools:
        shares = dict(zip(_deployment_names(owner, spec), split_by_weight(replicas, [p.weight for p in spec.pools]),
                          strict=True))
    else:
        shares = {name: replicas for name in deployments}
    for name, share in shares.items():
        deployment = deployments.get(name)
        if deployment is not None and deployment["spec"].get("replicas") != share:
            cluster.scale("apps/v1", "Deployment", owner.namespace, name, share)


def _credentials(cluster: Cluster, namespace: str, prometheus: Prometheus) -> Credentials:
    def value(name: str, key: str) -> str:
        secret = cluster.get("v1", "Secret", namespace, name)
        if secret is None:
            raise SecretProblem(f"Secret {name!r} (scaling.prometheus) does not exist")
        if ((secret.get("metadata") or {}).get("labels") or {}).get(CREDENTIALS_LABEL) != "true":
            raise SecretProblem(f"Secret {name!r} (scaling.prometheus) lacks the label {CREDENTIALS_LABEL}=true that "
                                "lets Spillway send it to Prometheus; nothing was read from it", "SecretNotLabelled")
        data = (secret.get("data") or {}).get(key)
        if data is None:
            raise SecretProblem(f"Secret {name!r} has no key {key!r}")
        return base64.b64decode(data).decode()

    bearer = basic = ca_pem = None
    if prometheus.bearer_token_secret_ref:
        bearer = value(prometheus.bearer_token_secret_ref.name, prometheus.bearer_token_secret_ref.key)
    if prometheus.basic_auth_secret_ref:
        ref = prometheus.basic_auth_secret_ref.name
        basic = (value(ref, "username"), value(ref, "password"))
    if prometheus.ca_secret_ref:
        ca_pem = value(prometheus.ca_secret_ref.name, prometheus.ca_secret_ref.key)
    return Credentials(bearer_token=bearer, basic_auth=basic, ca_pem=ca_pem,
                       insecure_skip_verify=prometheus.insecure_skip_verify)


def _observe(owner: Owner, values: dict[str, float], decision: Decision) -> None:
    for signal, value in values.items():
        telemetry.SIGNALS.labels(owner.namespace, owner.name, signal).set(value)
    telemetry.DESIRED.labels(owner.namespace, owner.name).set(decision.replicas)

