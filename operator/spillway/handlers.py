"""kopf handlers: unpack, call the reconcile or the scaling loop, turn retryable failures into
a delayed retry.

Thin on purpose: all decisions live in `spillway.reconcile`, `spillway.autoscale` and the pure
packages below them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from spillway import GROUP, KIND, PLURAL, VERSION, telemetry
from spillway.autoscale import DEFAULT_INTERVAL_SECONDS, Memory, act, observe, report_failure
from spillway.kube.cluster import KubeCluster, connection, load_api_client
from spillway.metrics.prometheus import PrometheusSignals
from spillway.ports import ClusterError
from spillway.kube.sentinels import RedisClient
from spillway.lanes import Lanes
from spillway.reconcile import reconcile
from spillway.resources import headroom, sessionstore
from spillway.resources.meta import Owner
from spillway.sessions import Follower

RETRY_SECONDS = 10
# The blocking work of the daemons, on pools of their own, in lanes by namespace (spillway.lanes):
# a tenant whose Prometheus or sentinels hang holds at most a quarter of a pool.
SCALING = Lanes("scaling", threads=16, per_key=4)
FOLLOWING = Lanes("following", threads=8, per_key=2)
KOPF_PREFIX = f"kopf.{GROUP}"
# How often a Sentinel-mode store's sentinels are asked who the primary is, between reconciles:
# the write Service follows a failover within about this much of the sentinels' agreement.
FOLLOW_SECONDS = 1.0
# How often the scaling loop re-applies the children when nothing moved: drift of a Service or
# PodDisruptionBudget has no event Spillway watches.
RESYNC = timedelta(seconds=60)
log = logging.getLogger(__name__)


@kopf.on.startup()
def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping goes to annotations under a prefix of its own, never into the public
    # status; kopf hides its prefix from the diffs it reacts to, so it must not be the one of
    # the annotations users set (spillway.io/rotate-session-password).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
    settings.persistence.finalizer = f"{GROUP}/scaling-loop"
    settings.posting.level = logging.WARNING  # Spillway posts its own Events, with reasons
    # One reconcile or scaling interval at a time per ScalableService: its own events, its
    # children's events and its scaling loop arrive on different kopf workers.
    memo.locks = defaultdict(threading.Lock)
    memo.scaling_memory = defaultdict(Memory)  # the engine's history per resource, as the HPA keeps it
    memo.resynced = {}  # when the scaling loop last reconciled each resource
    if getattr(memo, "cluster", None) is None:
        memo.cluster = KubeCluster(load_api_client(getattr(memo, "kubeconfig", None)))
    if getattr(memo, "signals", None) is None:
        memo.signals = PrometheusSignals()
    if getattr(memo, "probe", None) is None:
        memo.probe = RedisClient()
    memo.operator_peer = operator_peer_from_env()
    memo.headroom = headroom_settings_from_env()
    if getattr(memo, "peering", None):
        ensure_peering(memo.cluster, memo.peering, getattr(memo, "namespaces", None) or [])


def operator_peer_from_env() -> dict[str, Any] | None:
    """The operator's own pods as a NetworkPolicy peer (the chart sets both variables from the
    downward API and its labels); None when it runs outside a cluster."""
    namespace = os.environ.get("SPILLWAY_POD_NAMESPACE")
    selector = os.environ.get("SPILLWAY_POD_SELECTOR")
    if not namespace or not selector:
        return None
    pairs = dict(item.split("=", 1) for item in selector.split(",") if "=" in item)
    return sessionstore.operator_peer(namespace, pairs) if pairs else None


def headroom_settings_from_env() -> headroom.Settings:
    """The placeholders' pause image and PriorityClass, as the chart sets them."""
    return headroom.Settings(image=os.environ.get("SPILLWAY_PAUSE_IMAGE") or headroom.DEFAULT_PAUSE_IMAGE,
                             priority_class=os.environ.get("SPILLWAY_HEADROOM_PRIORITY_CLASS")
                             or headroom.DEFAULT_PRIORITY_CLASS)


def ensure_peering(cluster: KubeCluster, name: str, namespaces: list[str]) -> None:
    """The peering object kopf's replicas meet at, created when missing so that an install never
    depends on applying a custom resource right after its CRD."""
    if namespaces:
        for namespace in namespaces:
            if "*" not in namespace and cluster.get("kopf.dev/v1", "KopfPeering", namespace, name) is None:
                cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                               "metadata": {"name": name, "namespace": namespace}})
    elif cluster.get("kopf.dev/v1", "ClusterKopfPeering", "", name) is None:
        cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}})


@kopf.on.login()
def on_login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """The credentials the reconcile uses serve kopf's watches too."""
    return kopf.ConnectionInfo(**connection(getattr(memo, "kubeconfig", None)))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def on_change(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    assert namespace is not None, "ScalableServices are namespaced"
    _reconcile(memo, namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "spillway"})
def on_child_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child Deployment changed (pods became ready, or it was deleted): refresh its owner."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("controller"):
            _reconcile(memo, body["metadata"]["namespace"], ref["name"], retry=False)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10, initial_delay=1)
async def scaling_loop(stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo,
                       body: kopf.Body, **_: Any) -> None:
    """Every scaling.interval: read signals, decide, scale; then repair any drift of the children.

    Async, so that a thousand ScalableServices do not hold a thousand threads: each interval's
    blocking work borrows a worker thread only while it runs."""
    assert namespace is not None, "ScalableServices are namespaced"
    try:
        due = time.monotonic()
        while not stopped:
            # kopf keeps `body` current from its watch: reading the spec needs no request.
            interval = await SCALING.run(namespace, _scale_once, memo, namespace, name, copy.deepcopy(dict(body)), due)
            if interval is None:
                return
            due = time.monotonic() + interval
            await asyncio.sleep(interval)  # see _pause_note below
    finally:
        memo.scaling_memory.pop((namespace, name), None)
        memo.resynced.pop((namespace, name), None)


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/component": sessionstore.REDIS,
                                        "app.kubernetes.io/managed-by": "spillway"})
def on_store_pod(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Redis pod of a session store is ready without the role label: the reconcile asks the
    sentinels whether it is the primary. A primary pod deleted and recreated under its old name
    before the sentinels failed over is their primary again, but comes back without its label."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    instance = labels.get("app.kubernetes.io/instance")
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    if instance and ready and labels.get(sessionstore.ROLE_LABEL) != sessionstore.PRIMARY \
            and not meta.get("deletionTimestamp"):
        _reconcile(memo, meta["namespace"], instance, retry=False)


def _sentinel_store(spec: kopf.Spec, **_: Any) -> bool:
    store = spec.get("sessionStore") or {}
    return bool(store.get("type") == "Redis" and (store.get("redis") or {}).get("mode", "Sentinel") == "Sentinel")


@kopf.daemon(GROUP, VERSION, PLURAL, when=_sentinel_store, cancellation_timeout=10, initial_delay=1)
async def primary_follower(stopped: kopf.DaemonStopped, name: str, namespace: str | None, uid: str,
                           memo: kopf.Memo, **_: Any) -> None:
    """Between reconciles, asks a Sentinel-mode store's sentinels every FOLLOW_SECONDS who the
    primary is; when they agree on a new one, a reconcile moves the role label (so the write
    Service follows the failover) and reports it. Stops when the store is no longer Sentinel."""
    assert namespace is not None, "ScalableServices are namespaced"
    follower = Follower()
    owner = Owner(name=name, namespace=namespace, uid=uid)
    while not stopped:
        try:
            primary = await FOLLOWING.run(namespace, follower.changed, memo.cluster, memo.probe, owner)
            if primary is not None:
                await FOLLOWING.run(namespace, _reconcile, memo, namespace, name, False)
                await FOLLOWING.run(namespace, follower.settle, memo.cluster, owner, primary)
        except Exception:  # noqa: BLE001 - the follower must outlive any one look
            log.exception("following the primary of %s/%s failed", namespace, name)
            follower.addresses = []
        await asyncio.sleep(FOLLOW_SECONDS)  # see _pause_note below


# _pause_note: the daemons pause with asyncio.sleep, not kopf's `stopped.wait(n)`. kopf stops an
# async daemon by setting the flag and cancelling it at once (no cancellation_backoff), so a
# sleep ends as promptly; `stopped.wait(n)` runs its timer in a task of its own, which on Python
# 3.11 can end in a TimeoutError when the cancellation and the timeout meet, and kopf re-raises
# that from its leftover tasks when the operator exits.


def _scale_once(memo: kopf.Memo, namespace: str, name: str, watched: dict[str, Any],
                due: float | None = None) -> float | None:
    """One interval: signals read without the lock (a slow Prometheus never blocks a reconcile),
    then decide, scale, report under it, on the resource read afresh. The children are
    reconciled when the count moved, and otherwise at most once a minute to repair drift of what
    no event reports (Deployments' own events trigger a reconcile already). Any failure becomes
    a condition and the loop goes on."""
    key = (namespace, name)
    body: dict[str, Any] | None = None
    try:
        observation = observe(memo.cluster, memo.signals, watched)
        with memo.locks[key]:
            body = memo.cluster.get(f"{GROUP}/{VERSION}", KIND, namespace, name)
            if body is None:
                return None
            now = datetime.now(UTC)
            outcome = act(memo.cluster, body, observation, now, memo.scaling_memory[key])
            if due is not None:  # from when the interval was due to its decision: a loop falling behind shows
                telemetry.INTERVAL_LATENESS.observe(max(0.0, time.monotonic() - due))
            moved = outcome.decision is not None and outcome.decision.direction != "none"
            last = memo.resynced.get(key)
            if moved or last is None or now - last >= RESYNC:
                reconcile(memo.cluster, body, datetime.now(UTC), memo.probe, memo.operator_peer, memo.headroom)
                memo.resynced[key] = now
        telemetry.INTERVALS.labels(outcome="ok").inc()
        return outcome.seconds
    except ClusterError as err:
        log.warning("scaling %s/%s: %s", namespace, name, err)
        telemetry.INTERVALS.labels(outcome="cluster-error").inc()
        if not err.retryable and body is not None:  # a refusal repeating cannot fix: say it
            _report_failure(memo, key, body, f"the API server refused: {err}")
        return float(memo.scaling_memory[key].interval_seconds)  # an API server back soon is used soon
    except Exception as err:  # noqa: BLE001 - the loop must outlive any one interval
        log.exception("scaling interval of %s/%s failed", namespace, name)
        telemetry.INTERVAL_FAILURES.inc()
        if body is not None:
            _report_failure(memo, key, body, f"{type(err).__name__}: {err}")
        return DEFAULT_INTERVAL_SECONDS


def _report_failure(memo: kopf.Memo, key: tuple[str, str], body: dict[str, Any], error: str) -> None:
    try:
        with memo.locks[key]:
            report_failure(memo.cluster, body, error, datetime.now(UTC))
    except Exception:  # noqa: BLE001 - reporting is best effort; the log has the error
        log.warning("could not report the failed scaling interval of %s/%s", *key)


def _reconcile(memo: kopf.Memo, namespace: str, name: str, retry: bool = True) -> None:
    with memo.locks[(namespace, name)], telemetry.RECONCILE_SECONDS.time():
        try:
            # Read afresh under the lock: the scaling loop may have moved the status since the
            # event that woke this handler.
            body = memo.cluster.get(f"{GROUP}/{VERSION}", KIND, namespace, name)
            if body is None:
                return
            outcome = reconcile(memo.cluster, body, datetime.now(UTC), memo.probe, memo.operator_peer, memo.headroom)
        except ClusterError as err:
            telemetry.RECONCILES.labels(result="error").inc()
            if retry and err.retryable:
                raise kopf.TemporaryError(str(err), delay=RETRY_SECONDS) from err
            log.warning("reconcile of %s/%s failed: %s", namespace, name, err)
            return
    telemetry.WRITES.inc(outcome.writes)
    telemetry.RECONCILES.labels(result="ok" if outcome.ready else "pending").inc()
