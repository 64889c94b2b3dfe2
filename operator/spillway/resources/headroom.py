"""Headroom: room kept free on the nodes so that a scale-out starts at once instead of waiting
minutes for a cluster autoscaler's new node. Pure: no I/O.

Two mechanisms, one per cluster (docs/autoscaling.md):
- **CapacityBuffer** (`autoscaling.x-k8s.io/v1beta1`, served where Cluster Autoscaler 1.36 or
  Karpenter 1.14 installed the API): one buffer per app Deployment, its `scalableRef` naming the
  Deployment so that the autoscaler sizes each chunk like the app's pods, and `replicas` the
  count Spillway computes. `percentage` is not used: upstream takes the smaller of `replicas`
  and `percentage` when both are set, so a floor cannot be said with it, and Spillway knows the
  count anyway.
- **Placeholders** elsewhere: a Deployment of pause containers per app Deployment, each pod
  requesting what one app pod requests, on the same nodes (nodeSelector, node affinity,
  tolerations), in a PriorityClass of negative value. The scheduler preempts them the moment an
  app pod needs the room; evicted, they go Pending, and a cluster autoscaler adds a node for
  them ahead of the next step. The chart's class has value -1: the Cluster Autoscaler ignores
  pods below `--expendable-pods-priority-cutoff` (default -10), so a lower value would never
  bring a node.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.meta import POOL_LABEL, SAFE_TO_EVICT, Owner, child_name, metadata, selector_labels
from spillway.resources.workload import deployment_name, split_by_weight

COMPONENT = "headroom"
BUFFER_API = "autoscaling.x-k8s.io/v1beta1"
BUFFER_CRD = "capacitybuffers.autoscaling.x-k8s.io"
DEFAULT_PRIORITY_CLASS = "spillway-headroom"
DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
KINDS = [("apps/v1", "Deployment"), (BUFFER_API, "CapacityBuffer")]
Mechanism = Literal["CapacityBuffer", "Placeholders"]

# Pause runs as nobody; the restricted profile wants a numeric non-root user.
_NOBODY = 65535
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$")
_FACTORS = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("0.001"), "": Decimal(1),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
            "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
            "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
            "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}


@dataclass(frozen=True)
class Settings:
    """The operator's own: the pause image (a registry mirror's where pulls are restricted) and
    the PriorityClass the chart installs."""

    image: str = DEFAULT_PAUSE_IMAGE
    priority_class: str = DEFAULT_PRIORITY_CLASS


@dataclass(frozen=True)
class Target:
    """Room for `pods` pods like those of the app Deployment `deployment` (pod spec `pod_spec`)."""

    deployment: str
    pool: str | None
    pod_spec: dict[str, Any]
    pods: int


def wanted(spec: ScalableServiceSpec) -> bool:
    """Whether the spec asks for headroom at all (a percent asks even at a count giving 0)."""
    return bool(spec.headroom.replicas) or spec.headroom.percent is not None


def targets(owner: Owner, spec: ScalableServiceSpec, replicas: int,
            deployments: dict[str, dict[str, Any]]) -> list[Target]:
    """Room per app Deployment: the spec's count for an app of `replicas`, split as the pools
    split the replicas. `deployments` are the app's Deployments as built or adopted, by name."""
    pods = spec.headroom.pods(replicas)
    if not spec.pools:
        name = spec.target_ref.name if spec.target_ref is not None else deployment_name(owner, None)
        found = deployments.get(name)
        return [] if found is None else [Target(name, None, _pod_spec(found), pods)]
    shares = split_by_weight(pods, [p.weight for p in spec.pools])
    found_targets = []
    for pool, share in zip(spec.pools, shares, strict=True):
        found = deployments.get(deployment_name(owner, pool))
        if found is not None:
            found_targets.append(Target(deployment_name(owner, pool), pool.name, _pod_spec(found), share))
    return found_targets


def name(owner: Owner, target: Target) -> str:
    return child_name(owner, COMPONENT if target.pool is None else f"{target.pool}-{COMPONENT}")


def capacity_buffer(owner: Owner, target: Target) -> dict[str, Any]:
    return {
        "apiVersion": BUFFER_API, "kind": "CapacityBuffer",
        "metadata": metadata(owner, name(owner, target), COMPONENT),
        "spec": {"scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": target.deployment},
                 "replicas": target.pods},
    }


def placeholders(owner: Owner, target: Target, settings: Settings, priority_class: str) -> dict[str, Any]:
    """Pause pods standing in for `target.pods` app pods: same requests, same nodes, lower priority."""
    match = selector_labels(owner, COMPONENT)
    if target.pool is not None:
        match[POOL_LABEL] = target.pool
    app = target.pod_spec
    requests = pod_requests(app)
    resources: dict[str, Any] = {"requests": requests}
    # The API server refuses a request of what cannot be overcommitted without an equal limit.
    fixed = {r: q for r, q in requests.items() if not _overcommittable(r)}
    if fixed:
        resources["limits"] = fixed
    container: dict[str, Any] = {
        "name": "pause", "image": settings.image, "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
    }
    pod_spec: dict[str, Any] = {
        "priorityClassName": priority_class,
        "terminationGracePeriodSeconds": 0,  # preempted at once: the app pod waits for nothing
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": _NOBODY, "runAsGroup": _NOBODY,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    for key in ("nodeSelector", "tolerations", "runtimeClassName", "resources"):
        if app.get(key):
            pod_spec[key] = copy.deepcopy(app[key])
    node_affinity = (app.get("affinity") or {}).get("nodeAffinity")
    if node_affinity:  # pod (anti-)affinity speaks of the app's labels, which placeholders lack
        pod_spec["affinity"] = {"nodeAffinity": copy.deepcopy(node_affinity)}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": metadata(owner, name(owner, target), COMPONENT),
        "spec": {"replicas": target.pods, "selector": {"matchLabels": match},
                 "template": {"metadata": {"labels": {**metadata(owner, "", COMPONENT)["labels"], **match},
                                           "annotations": {SAFE_TO_EVICT: "true"}},
                              "spec": pod_spec}},
    }


def build(owner: Owner, found_targets: list[Target], mechanism: Mechanism, settings: Settings,
          priority_class: str) -> list[dict[str, Any]]:
    if mechanism == "CapacityBuffer":
        return [capacity_buffer(owner, t) for t in found_targets]
    return [placeholders(owner, t, settings, priority_class) for t in found_targets]


def pod_requests(pod_spec: dict[str, Any]) -> dict[str, str]:
    """What the scheduler counts a pod as requesting: per resource, the sum over its containers
    and sidecars (init containers with `restartPolicy: Always`, which keep running), or what an
    init container needs beside the sidecars started before it when that is more (Kubernetes'
    resourcehelper.PodRequests; pod overhead is the RuntimeClass's and comes with
    `runtimeClassName`). Raises ValueError on a quantity it cannot read."""
    total: dict[str, Decimal] = {}
    for container in pod_spec.get("containers") or []:
        _add(total, _requests(container))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for container in pod_spec.get("initContainers") or []:
        own = _requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            running = sidecars
        else:
            running = _add(dict(sidecars), own)
        for resource, value in running.items():
            init_peak[resource] = max(init_peak.get(resource, Decimal(0)), value)
    for resource, value in init_peak.items():
        total[resource] = max(total.get(resource, Decimal(0)), value)
    return {resource: _format(value) for resource, value in sorted(total.items())}


def _add(into: dict[str, Decimal], more: dict[str, Decimal]) -> dict[str, Decimal]:
    for resource, value in more.items():
        into[resource] = into.get(resource, Decimal(0)) + value
    return into


def _overcommittable(resource: str) -> bool:
    """Kubernetes' IsOverCommitAllowed: native resources (no domain, or kubernetes.io's) other
    than hugepages; an extended resource such as nvidia.com/gpu is not."""
    native = "/" not in resource or "kubernetes.io/" in resource
    return native and not resource.startswith("hugepages-")


def _requests(container: dict[str, Any]) -> dict[str, Decimal]:
    """A container's requests; a limit stands for a request it lacks, as the API server defaults."""
    resources = container.get("resources") or {}
    stated = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {str(r): parse(q) for r, q in stated.items()}


def parse(quantity: Any) -> Decimal:
    """A Kubernetes quantity (`250m`, `1.5Gi`, `1e3`, a number) as a Decimal of its unit."""
    text = str(quantity).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    suffix = match.group(2) or ""
    try:
        number = Decimal(match.group(1))
        factor = _FACTORS[suffix] if suffix in _FACTORS else Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError) as err:  # pragma: no cover - the pattern admits only these
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity") from err
    return number * factor


def _format(value: Decimal) -> str:
    """Whole units where exact, else milli-units rounded up (never less than was asked)."""
    if value == value.to_integral_value():
        return str(int(value))
    return f"{int((value * 1000).to_integral_value(rounding='ROUND_CEILING'))}m"


def _pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec


def readiness(mechanism: Mechanism, found_targets: list[Target], live: list[dict[str, Any]],
              priority_class: str) -> tuple[bool, str, str]:
    """HeadroomReady from the applied headroom objects (in `found_targets`' order)."""
    asked = sum(t.pods for t in found_targets)
    if mechanism == "CapacityBuffer":
        names = ", ".join(name_of(o) for o in live)
        provisioned = [(o.get("status") or {}).get("replicas") for o in live]
        known = [p for p in provisioned if isinstance(p, int)]
        seen = (f"; the autoscaler reports {sum(known)} provisioned" if len(known) == len(provisioned) and known
                else "; no autoscaler has reported on it yet")
        return True, "CapacityBuffer", (
            f"CapacityBuffer {names} asks the cluster autoscaler to keep room for {asked} pods like the app's"
            f"{seen}.")
    running = sum((o.get("status") or {}).get("readyReplicas") or 0 for o in live)
    if running >= asked:
        return True, "Placeholders", (
            f"{running} placeholder pods (PriorityClass {priority_class}) hold room for {asked} of the app's pods; "
            "a scale-out preempts them.")
    return False, "PlaceholdersPending", (
        f"{running} of {asked} placeholder pods run (PriorityClass {priority_class}); the others wait for room, "
        "which a cluster autoscaler adds for them, or were just preempted by the app.")


def name_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])
