"""Writing a ScalableService's children: apply one only where the live object differs, and
remove the ones Spillway made and no longer wants. Through the `Cluster` port; shared by the
reconcile and the session store's part of it."""

from __future__ import annotations

from typing import Any

from spillway.ports import Cluster
from spillway.resources.compare import covers, fingerprinted
from spillway.resources.meta import Owner, selector_labels, unused_configs


class NameConflict(Exception):
    """A child's name is held by an object this ScalableService does not control: it is left
    untouched (server-side apply with forced conflicts would take it over, and the owner
    reference would let garbage collection delete it with the ScalableService)."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"{kind} {name} exists and is not this ScalableService's; Spillway leaves it untouched. "
                         f"Rename the ScalableService, or delete or rename that {kind}.")


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether `obj` carries a controller owner reference to the object of `uid`."""
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def check_ours(desired: dict[str, Any], live: dict[str, Any] | None) -> None:
    """NameConflict when `live` exists and is not controlled by `desired`'s controller."""
    uid = next((ref["uid"] for ref in desired["metadata"].get("ownerReferences") or [] if ref.get("controller")),
               None)
    if uid is not None:
        check_owner(uid, desired["kind"], desired["metadata"]["name"], live)


def check_owner(uid: str, kind: str, name: str, live: dict[str, Any] | None) -> None:
    """NameConflict when `live` (the `kind` named `name`) exists and is not controlled by `uid`."""
    if live is not None and not controlled_by(live, uid):
        raise NameConflict(kind, name)


def apply_changed(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """`obj` applied unless `live` already covers it: the object as the cluster has it, and the
    writes made (0 or 1). NameConflict, nothing written, when `live` is someone else's."""
    check_ours(obj, live)
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


def retire_configs(cluster: Cluster, owner: Owner, component: str, pod_components: tuple[str, ...],
                   current: set[str]) -> int:
    """Delete the `component` ConfigMaps Spillway made that are neither `current` nor mounted by
    a live pod of `pod_components` (content-named and immutable, each stays while a pod started
    with it may restart); the number deleted. One list while nothing is stale, two otherwise."""
    found = [c for c in cluster.list("v1", "ConfigMap", owner.namespace, selector_labels(owner, component))
             if any(ref.get("uid") == owner.uid for ref in c["metadata"].get("ownerReferences") or [])]
    if all(c["metadata"]["name"] in current for c in found):
        return 0
    pods = [p for c in pod_components for p in cluster.list("v1", "Pod", owner.namespace, selector_labels(owner, c))]
    stale = unused_configs(found, pods, current)
    for name in stale:
        cluster.delete("v1", "ConfigMap", owner.namespace, name)
    return len(stale)
