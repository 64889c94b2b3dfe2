"""kopf handlers: unpack, call the reconcile, turn retryable failures into a delayed retry.

Thin on purpose: all decisions live in `spillway.reconcile` and the pure packages below it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import kopf

from spillway import GROUP, PLURAL, VERSION, telemetry
from spillway.kube.cluster import KubeCluster, connection, load_api_client
from spillway.ports import ClusterError
from spillway.reconcile import reconcile

RETRY_SECONDS = 10


@kopf.on.startup()
def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping goes to annotations under our prefix, never into the public status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING  # Spillway posts its own Events, with reasons
    # One reconcile at a time per ScalableService: its own events and its children's events
    # arrive on different kopf workers.
    memo.locks = defaultdict(threading.Lock)
    if getattr(memo, "cluster", None) is None:
        memo.cluster = KubeCluster(load_api_client(getattr(memo, "kubeconfig", None)))


@kopf.on.login()
def on_login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """The credentials the reconcile uses serve kopf's watches too."""
    return kopf.ConnectionInfo(**connection(getattr(memo, "kubeconfig", None)))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def on_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(memo, _plain(body))


@kopf.timer(GROUP, VERSION, PLURAL, interval=60, initial_delay=60, idle=30)
def on_resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Repairs drift (a child deleted or edited by hand) even when nothing else happens."""
    _reconcile(memo, _plain(body))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "spillway"})
def on_child_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child Deployment changed (pods became ready, or it was deleted): refresh its owner."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("controller"):
            owner = memo.cluster.get(f"{GROUP}/{VERSION}", ref["kind"], body["metadata"]["namespace"], ref["name"])
            if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
                _reconcile(memo, owner, retry=False)


def _reconcile(memo: kopf.Memo, body: dict[str, Any], retry: bool = True) -> None:
    with memo.locks[body["metadata"]["uid"]], telemetry.RECONCILE_SECONDS.time():
        try:
            outcome = reconcile(memo.cluster, body, datetime.now(UTC))
        except ClusterError as err:
            telemetry.RECONCILES.labels(result="error").inc()
            if retry and err.retryable:
                raise kopf.TemporaryError(str(err), delay=RETRY_SECONDS) from err
            logging.getLogger(__name__).warning("reconcile of %s failed: %s", body["metadata"]["name"], err)
            return
    telemetry.WRITES.inc(outcome.writes)
    telemetry.RECONCILES.labels(result="ok" if outcome.ready else "pending").inc()


def _plain(value: Any) -> Any:
    """kopf's read-only mapping views as plain dicts and lists."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
