"""Working with the cluster's capacity: the headroom objects of a ScalableService (applied where
they differ, the other mechanism's removed, `HeadroomReady` said), and the count of its replicas
the scheduler could not place (`CapacityPending`). Through the `Cluster` port; the objects are
`spillway.resources.headroom`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.children import apply_changed, remove_owned
from spillway.ports import Cluster
from spillway.resources import headroom
from spillway.resources.meta import Owner

PRIORITY_API = "scheduling.k8s.io/v1"


@dataclass(frozen=True)
class HeadroomOutcome:
    condition: tuple[bool, str, str] | None  # None: no headroom is asked for
    writes: int


@dataclass(frozen=True)
class Unschedulable:
    """App pods the scheduler marked `PodScheduled=False, reason Unschedulable`, and its message
    for the first of them."""

    count: int
    message: str


def reconcile_headroom(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec, replicas: int,
                       deployments: dict[str, dict[str, Any]], settings: headroom.Settings,
                       cleanup: bool, previous_reason: str | None = None) -> HeadroomOutcome:
    """`deployments`: the app's, as applied or adopted, by name. `cleanup` lists and removes the
    headroom objects no longer wanted (on a new generation), as does a change of mechanism since
    the condition's `previous_reason` (the buffer API appeared or went away)."""
    if not headroom.wanted(spec):
        removed = remove_owned(cluster, owner, headroom.COMPONENT, _kinds(cluster), set()) if cleanup else 0
        return HeadroomOutcome(None, removed)
    mechanism, problem = _mechanism(cluster, spec)
    cleanup = cleanup or (previous_reason == "CapacityBuffer") != (mechanism == "CapacityBuffer")
    priority_class = spec.headroom.priority_class_name or settings.priority_class
    if problem is None and mechanism == "Placeholders":
        problem = _priority_problem(cluster, priority_class, deployments)
    found = headroom.targets(owner, spec, replicas, deployments)
    objects: list[dict[str, Any]] = []
    if problem is None:
        try:
            objects = headroom.build(owner, found, mechanism, settings, priority_class)
        except ValueError as err:
            problem = (False, "InvalidRequests", f"headroom: the app's pod requests cannot be read: {err}")
    writes = 0
    live = []
    for obj in objects:
        applied, wrote = apply_changed(cluster, obj, cluster.get(obj["apiVersion"], obj["kind"], owner.namespace,
                                                                 obj["metadata"]["name"]))
        writes += wrote
        live.append(applied)
    if cleanup:
        wanted = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}
        writes += remove_owned(cluster, owner, headroom.COMPONENT, _kinds(cluster), wanted)
    if problem is not None:
        return HeadroomOutcome(problem, writes)
    return HeadroomOutcome(headroom.readiness(mechanism, found, live, priority_class), writes)


def unschedulable(cluster: Cluster, namespace: str, selector: dict[str, str]) -> Unschedulable:
    """The app's pods the scheduler found no node for (one LIST)."""
    count, message = 0, ""
    for pod in cluster.list("v1", "Pod", namespace, selector):
        if (pod.get("metadata") or {}).get("deletionTimestamp") or (pod.get("spec") or {}).get("nodeName"):
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
                    "PodScheduled", "False", "Unschedulable"):
                count += 1
                message = message or str(condition.get("message") or "")
    return Unschedulable(count, message)


def _kinds(cluster: Cluster) -> list[tuple[str, str]]:
    """Kinds to look for when removing: a CapacityBuffer only where the API is served (listing
    one elsewhere fails)."""
    return [k for k in headroom.KINDS if k[0] != headroom.BUFFER_API or _serves_buffers(cluster)]


def _serves_buffers(cluster: Cluster) -> bool:
    crd = cluster.crd(headroom.BUFFER_CRD)
    version = headroom.BUFFER_API.rsplit("/", 1)[-1]
    return crd is not None and any(v.get("name") == version and v.get("served")
                                   for v in (crd.get("spec") or {}).get("versions") or [])


def _mechanism(cluster: Cluster, spec: ScalableServiceSpec) -> tuple[headroom.Mechanism, tuple[bool, str, str] | None]:
    asked = spec.headroom.mechanism
    served = _serves_buffers(cluster)
    if asked == "Placeholders" or (asked == "Auto" and not served):
        return "Placeholders", None
    if not served:
        return "CapacityBuffer", (False, "APINotInstalled", (
            f"headroom.mechanism CapacityBuffer: CRD {headroom.BUFFER_CRD} does not serve {headroom.BUFFER_API} "
            "(Cluster Autoscaler 1.36 and Karpenter 1.14 install it); no room is kept."))
    return "CapacityBuffer", None


def _priority_problem(cluster: Cluster, priority_class: str,
                      deployments: dict[str, dict[str, Any]]) -> tuple[bool, str, str] | None:
    """The placeholders' PriorityClass must exist and sit below every app pod's priority, or the
    scheduler would never preempt them for the app."""
    found = cluster.get(PRIORITY_API, "PriorityClass", "", priority_class)
    if found is None:
        return False, "PriorityClassNotFound", (
            f"headroom: PriorityClass {priority_class!r} does not exist (the chart installs spillway-headroom); "
            "no placeholder pods are run.")
    value = int(found.get("value") or 0)
    for deployment in deployments.values():
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        app_class = pod_spec.get("priorityClassName")
        app_value = 0
        if app_class:
            app_found = cluster.get(PRIORITY_API, "PriorityClass", "", app_class)
            app_value = int((app_found or {}).get("value") or 0)
        if value >= app_value:
            return False, "PriorityNotLower", (
                f"headroom: PriorityClass {priority_class!r} has value {value}, not below the app pods' {app_value}: "
                "the app could never preempt the placeholders, so none are run.")
    return None
