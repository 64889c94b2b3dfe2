"""Writing a ScalableService's children: apply one only where the live object differs, and
remove the ones Spillway made and no longer wants. Through the `Cluster` port; shared by the
reconcile and the session store's part of it."""

from __future__ import annotations

from typing import Any

from spillway.ports import Cluster
from spillway.resources.compare import covers, fingerprinted
from spillway.resources.meta import Owner, selector_labels


def apply_changed(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """`obj` applied unless `live` already covers it: the object as the cluster has it, and the
    writes made (0 or 1)."""
    desired = fingerprinted(obj)
    if live is not None and covers(live, desired):
        return live, 0
    return cluster.apply(desired), 1


def remove_owned(cluster: Cluster, owner: Owner, component: str, kinds: list[tuple[str, str]],
                 wanted: set[tuple[str, str, str]]) -> int:
    """Delete the `component` children of these kinds Spillway made but no longer wants; the
    number deleted."""
    removed = 0
    for api_version, kind in kinds:
        for obj in cluster.list(api_version, kind, owner.namespace, selector_labels(owner, component)):
            meta = obj["metadata"]
            owned = any(ref.get("uid") == owner.uid for ref in meta.get("ownerReferences") or [])
            if owned and (api_version, kind, meta["name"]) not in wanted:
                cluster.delete(api_version, kind, owner.namespace, meta["name"])
                removed += 1
    return removed
