"""Names, labels and owner references shared by every object Spillway builds. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from spillway import GROUP, KIND, VERSION

MANAGED_BY = "spillway"
POOL_LABEL = f"{GROUP}/pool"


@dataclass(frozen=True)
class Owner:
    """The ScalableService that owns what is built: enough to name, label and reference it."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """The labels that select a component's pods; they never change for the object's life."""
    return {
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": owner.name, **selector_labels(owner, component)}


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def relabel(obj: dict[str, Any], changes: dict[str, str | None]) -> None:
    """What a merge patch of `changes` does to `obj`'s labels: set each, remove those set to None."""
    current = obj["metadata"].setdefault("labels", {})
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(owner: Owner, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component),
        "ownerReferences": [owner_reference(owner)],
    }


def child_name(owner: Owner, suffix: str, limit: int = 63) -> str:
    """`<owner>-<suffix>`, kept a DNS label of at most `limit` characters (a Service's name must
    be): a name too long is cut and ends in a short hash of the whole, so it stays unique."""
    full = f"{owner.name}-{suffix}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def content_name(owner: Owner, suffix: str, data: dict[str, str]) -> str:
    """`<owner>-<suffix>-<digest>`: the name of an immutable ConfigMap holding `data`, which
    changes whenever any of it does (a new config is a new object; the old one stays for the
    pods that still mount it)."""
    digest = hashlib.sha256("".join(f"{k}\0{v}\0" for k, v in sorted(data.items())).encode()).hexdigest()[:10]
    return child_name(owner, f"{suffix}-{digest}")


def unused_configs(config_maps: list[dict[str, Any]], pods: list[dict[str, Any]], current: set[str]) -> list[str]:
    """The ConfigMaps to retire: neither `current` nor mounted by a pod that is not terminating
    (a terminating pod has read its files and never reads them again)."""
    mounted = {volume["configMap"]["name"]
               for pod in pods if not (pod.get("metadata") or {}).get("deletionTimestamp")
               for volume in (pod.get("spec") or {}).get("volumes") or [] if (volume.get("configMap") or {}).get("name")}
    names = (c["metadata"]["name"] for c in config_maps)
    return sorted(n for n in names if n not in current and n not in mounted)


# What cluster autoscalers read on pods (docs/autoscaling.md gives each one's reason).
# The Cluster Autoscaler removes no node whose pods have local storage (an emptyDir) unless they
# say they are safe to evict: https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/FAQ.md
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# Karpenter never voluntarily disrupts (consolidates, drifts) a node running such a pod:
# https://karpenter.sh/docs/concepts/disruption/#pod-level-controls
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def evictable(safe: bool) -> dict[str, str]:
    """Pod annotations: `safe` when losing the pod loses nothing its PDB does not already guard;
    otherwise both autoscalers are told to leave its node alone."""
    return {SAFE_TO_EVICT: "true"} if safe else {SAFE_TO_EVICT: "false", DO_NOT_DISRUPT: "true"}
