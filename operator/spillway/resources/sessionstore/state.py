"""What the session store's live state means: which pod is the primary, which labels move,
whether the store is ready, what an External reference says, and the status. Pure: the reconcile
reads the cluster and asks the sentinels, then passes what it found in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import parse_quantity
from spillway.resources.meta import Owner
from spillway.resources.sessionstore.config import (
    PRIMARY, QUORUM, REDIS_PORT, ROLE_LABEL, ROTATION_CURRENT, ROTATION_PREVIOUS, Rotation, SENTINELS, sentinel_mode, connection_name, primary_name, redis_name,
    sentinel_name,
)

READY = "SessionStoreReady"
URL_SCHEMES = ("redis", "rediss")


@dataclass(frozen=True)
class SentinelView:
    """What the sentinels answered: each one's primary (host as announced, None when it did not
    answer) and whether each sees a quorum able to fail over."""

    primaries: tuple[str | None, ...] = ()
    quorum: tuple[bool, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class Observed:
    """The live store: its StatefulSets, the primary the sentinels agree on (pod name), and
    whether the role label is where it belongs."""

    redis: dict[str, Any] | None
    sentinel: dict[str, Any] | None = None
    view: SentinelView | None = None
    primary: str | None = None
    labelled: bool = True


def rotation_of(secret: dict[str, Any] | None) -> Rotation:
    """The rotation a live server Secret records (none before the first reconcile wrote it)."""
    annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    return Rotation(current=str(annotations.get(ROTATION_CURRENT, "")),
                    previous=None if ROTATION_PREVIOUS not in annotations else str(annotations[ROTATION_PREVIOUS]))


def next_rotation(requested: str, rotation: Rotation, rolled_out: bool) -> tuple[Rotation, str]:
    """The next step of a password rotation, and what Redis must be told first: "add" (the new
    app password, before the app is given it), "remove" (the old one, once every replica runs
    with the new) or "" (nothing). A token asked for while a rotation runs waits for its end."""
    if rotation.previous is None:
        if requested != rotation.current:
            return Rotation(current=requested, previous=rotation.current), "add"
        return rotation, ""
    if rolled_out:
        return Rotation(current=rotation.current), "remove"
    return rotation, ""


def rolled_out(deployments: list[dict[str, Any]], checksum: str, annotation: str) -> bool:
    """Every Deployment's pods run the template carrying `checksum`, all ready, none older left."""
    if not deployments:
        return False
    for deployment in deployments:
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        template = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        want = int(spec.get("replicas", 1) or 0)
        if template.get(annotation) != checksum:
            return False
        if status.get("observedGeneration") != (deployment.get("metadata") or {}).get("generation"):
            return False
        if not (status.get("updatedReplicas", 0) == status.get("replicas", 0) == status.get("readyReplicas", 0) == want):
            return False
    return True


def pod_of(host: str) -> str:
    """The pod a sentinel names: hosts are announced as `<pod>.<headless service>.<ns>.svc`."""
    return host.split(".", 1)[0]


def agreed_primary(primaries: tuple[str | None, ...], quorum: int = QUORUM) -> str | None:
    """The primary at least `quorum` sentinels name, or None (no answer, or a split during a
    failover: the label stays where it is until they agree)."""
    counts = Counter(p for p in primaries if p)
    if not counts:
        return None
    host, votes = counts.most_common(1)[0]
    return host if votes >= quorum else None


def label_changes(pods: list[dict[str, Any]], primary: str | None) -> dict[str, str | None]:
    """pod name -> the role label's new value (None: remove it), so that exactly the pod the
    sentinels name carries it. With no agreed primary nothing moves."""
    if primary is None:
        return {}
    changes: dict[str, str | None] = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        has = (pod["metadata"].get("labels") or {}).get(ROLE_LABEL) == PRIMARY
        if name == primary and not has:
            changes[name] = PRIMARY
        elif name != primary and has:
            changes[name] = None
    return changes


def _ready_count(statefulset: dict[str, Any] | None) -> tuple[int, int]:
    if statefulset is None:
        return 0, 0
    want = int((statefulset.get("spec") or {}).get("replicas") or 0)
    status = statefulset.get("status") or {}
    current = status.get("observedGeneration") == (statefulset.get("metadata") or {}).get("generation")
    return (int(status.get("readyReplicas") or 0) if current else 0), want


def readiness(owner: Owner, spec: ScalableServiceSpec, observed: Observed) -> tuple[bool, str, str]:
    """SessionStoreReady for a provisioned store: every Redis pod ready and, in Sentinel mode,
    every sentinel ready, a quorum seen and the write Service on the agreed primary."""
    ready, want = _ready_count(observed.redis)
    if ready < want or want == 0:
        return False, "RedisNotReady", f"{ready} of {want} Redis pods of StatefulSet {redis_name(owner)} are ready."
    if not sentinel_mode(spec):
        return True, "RedisReady", f"Standalone Redis is ready at {endpoint(owner)}{_persistence_note(spec)}."
    ready, want = _ready_count(observed.sentinel)
    if ready < want or want == 0:
        return False, "SentinelsNotReady", (
            f"{ready} of {want} sentinels of StatefulSet {sentinel_name(owner)} are ready.")
    view = observed.view or SentinelView()
    if sum(view.quorum) < QUORUM:
        why = f" ({view.problem})" if view.problem else ""
        return False, "NoQuorum", (f"{sum(view.quorum)} of {SENTINELS} sentinels see a quorum able to fail over; "
                                   f"{QUORUM} are needed{why}.")
    if observed.primary is None:
        return False, "PrimaryUnknown", "The sentinels do not agree on a primary yet."
    if not observed.labelled:
        return False, "PrimaryNotLabelled", f"{primary_name(owner)} does not select {observed.primary} yet."
    return True, "SentinelReady", (
        f"Primary {observed.primary} with {spec.session_store.redis.replicas} replicas and {SENTINELS} sentinels "
        f"(quorum {QUORUM}); write endpoint {endpoint(owner)}{_persistence_note(spec)}.")


def _persistence_note(spec: ScalableServiceSpec) -> str:
    persistence = spec.session_store.redis.persistence
    if parse_quantity(persistence.size) > 0:
        return ""
    return "; persistence.size is 0, so data lives in an emptyDir and is lost when a pod is deleted"


def endpoint(owner: Owner) -> str:
    return f"{primary_name(owner)}.{owner.namespace}.svc:{REDIS_PORT}"


def status(owner: Owner, spec: ScalableServiceSpec, primary: str | None) -> dict[str, Any]:
    """status.sessionStore: where the app connects and how; never a password."""
    store = spec.session_store
    if store.type == "External" and store.external is not None:
        return {"type": "External", "secretName": store.external.url_secret_ref.name}
    persistence = store.redis.persistence
    found: dict[str, Any] = {
        "type": "Redis", "mode": store.redis.mode, "endpoint": endpoint(owner), "secretName": connection_name(owner),
        "persistence": (f"PersistentVolumeClaim {persistence.size}" if parse_quantity(persistence.size) > 0
                        else "emptyDir"),
    }
    if sentinel_mode(spec):
        found["primary"] = primary
    return found


def external_problem(spec: ScalableServiceSpec, secret: dict[str, Any] | None, value: str | None) -> tuple[str, str] | None:
    """(reason, message) when the External reference cannot be used; None when it can. The
    message names the Secret and key, never the value."""
    assert spec.session_store.external is not None
    ref = spec.session_store.external.url_secret_ref
    where = f"Secret {ref.name!r}"
    if secret is None:
        return "SecretNotFound", f"{where} (sessionStore.external.urlSecretRef) does not exist in this namespace."
    if value is None:
        return "SecretKeyNotFound", f"{where} has no key {ref.key!r} (sessionStore.external.urlSecretRef.key)."
    try:
        url = urlsplit(value.strip())
        port = url.port
    except ValueError:
        return "InvalidURL", f"{where} key {ref.key!r} does not hold a valid URL."
    if url.scheme not in URL_SCHEMES:
        return "InvalidURL", (f"{where} key {ref.key!r} must hold a redis:// or rediss:// URL "
                              f"(its scheme is {url.scheme or 'missing'!r}).")
    if not url.hostname:
        return "InvalidURL", f"{where} key {ref.key!r} holds a URL without a host."
    del port
    return None
