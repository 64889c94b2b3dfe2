"""The app's own objects: Deployments (one, or one per pool), the Service and the
PodDisruptionBudget, as plain dicts ready for server-side apply. Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from spillway import GROUP
from spillway.api.spec import Pool, ScalableServiceSpec
from spillway.resources.meta import POOL_LABEL, SAFE_TO_EVICT, Owner, metadata, selector_labels

APP = "app"

# The `restricted` Pod Security profile's requirements, filled in where the template is silent:
# https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

# Requests of an app container whose template states none (neither a request nor a limit, which
# Kubernetes would copy): without them the scheduler packs pods onto a node without bound and a
# cluster autoscaler cannot tell how many more fit on a new one. Documented in docs/autoscaling.md.
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}


def defaulted_requests(pod_spec: dict[str, Any]) -> list[str]:
    """`container/resource` for each request of DEFAULT_REQUESTS that an app container leaves
    unstated, in the template's order."""
    found = []
    for container in pod_spec.get("containers") or []:
        resources = container.get("resources") or {}
        stated = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        found += [f"{container.get('name')}/{r}" for r in DEFAULT_REQUESTS if r not in stated]
    return found


def with_default_requests(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """`pod_spec` (changed in place) with DEFAULT_REQUESTS where a container states neither a
    request nor a limit of that resource."""
    for container in pod_spec.get("containers") or []:
        resources = container.setdefault("resources", {})
        stated = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        missing = {r: q for r, q in DEFAULT_REQUESTS.items() if r not in stated}
        if missing:
            resources["requests"] = {**(resources.get("requests") or {}), **missing}
    return pod_spec


def split_by_weight(total: int, weights: list[int]) -> list[int]:
    """`total` replicas split in proportion to `weights` (largest remainder, earlier pools first
    on ties); the parts always add up to `total`."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def restricted(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of `pod_spec` meeting the restricted profile wherever the user left a field unset."""
    spec = copy.deepcopy(pod_spec)
    pod_context = spec.setdefault("securityContext", {})
    for key, value in _POD_SECURITY.items():
        pod_context.setdefault(key, copy.deepcopy(value))
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            context = container.setdefault("securityContext", {})
            for key, value in _CONTAINER_SECURITY.items():
                context.setdefault(key, copy.deepcopy(value))
    return spec


def deployment_name(owner: Owner, pool: Pool | None) -> str:
    return owner.name if pool is None else f"{owner.name}-{pool.name}"


def pool_selector(owner: Owner, pool: Pool) -> dict[str, str]:
    return {**selector_labels(owner, APP), POOL_LABEL: pool.name}


SESSION_STORE_CHECKSUM = f"{GROUP}/session-store-checksum"


def with_env(pod_spec: dict[str, Any], env: list[dict[str, Any]]) -> dict[str, Any]:
    """`pod_spec` with `env` added to every container; a name the template already sets is the
    template's."""
    if not env:
        return pod_spec
    for container in pod_spec.get("containers") or []:
        own = {e.get("name") for e in container.get("env") or []}
        container["env"] = [*(container.get("env") or []), *(copy.deepcopy(e) for e in env if e["name"] not in own)]
    return pod_spec


def build_deployment(owner: Owner, spec: ScalableServiceSpec, replicas: int, pool: Pool | None = None,
                     env: list[dict[str, Any]] | None = None, checksum: str | None = None) -> dict[str, Any]:
    assert spec.template is not None, "an adopted Deployment is never built"
    match = selector_labels(owner, APP) if pool is None else pool_selector(owner, pool)
    template = copy.deepcopy(spec.template)
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **match}
    annotations = template_meta.get("annotations") or {}
    # The app's pods keep nothing on their node (sessions live in the store): the Cluster
    # Autoscaler may drain it, within the PDB, even when the template mounts an emptyDir.
    annotations = {SAFE_TO_EVICT: "true", **annotations}
    if checksum is not None:  # a new password or address rolls the app onto it
        annotations[SESSION_STORE_CHECKSUM] = checksum
    template_meta["annotations"] = annotations
    pod_spec = with_env(with_default_requests(restricted(template.get("spec") or {})), env or [])
    if pool is not None and pool.node_selector:
        pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **pool.node_selector}
    template["spec"] = pod_spec
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, deployment_name(owner, pool), APP),
        "spec": {"replicas": replicas, "selector": {"matchLabels": match}, "template": template},
    }


def build_deployments(owner: Owner, spec: ScalableServiceSpec, replicas: int, env: list[dict[str, Any]] | None = None,
                      checksum: str | None = None) -> list[dict[str, Any]]:
    """One Deployment, or one per pool with `replicas` split by weight."""
    if not spec.pools:
        return [build_deployment(owner, spec, replicas, None, env, checksum)]
    shares = split_by_weight(replicas, [p.weight for p in spec.pools])
    return [build_deployment(owner, spec, n, pool, env, checksum) for pool, n in zip(spec.pools, shares, strict=True)]


def build_service(owner: Owner, spec: ScalableServiceSpec, selector: dict[str, str]) -> dict[str, Any]:
    service: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector,
        "ports": [{"name": "http", "protocol": "TCP", "port": spec.service_port, "targetPort": spec.port}],
    }
    affinity = spec.balancing.affinity
    if spec.balancing.provider == "Service" and affinity.type == "ClientIP":
        service["sessionAffinity"] = "ClientIP"
        service["sessionAffinityConfig"] = {
            "clientIP": {"timeoutSeconds": int(affinity.ttl.total_seconds())}
        }
    else:
        service["sessionAffinity"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, owner.name, APP), "spec": service}


def build_pdb(owner: Owner, spec: ScalableServiceSpec, selector: dict[str, str]) -> dict[str, Any] | None:
    budget = spec.disruption_budget
    if not budget.enabled:
        return None
    pdb: dict[str, Any] = {"selector": {"matchLabels": selector}}
    if budget.min_available is not None:
        pdb["minAvailable"] = budget.min_available
    else:
        # One pod at a time by default: a floor of minAvailable=1 with replicas.min=1 would block
        # every node drain.
        pdb["maxUnavailable"] = 1 if budget.max_unavailable is None else budget.max_unavailable
    # A replica that is not ready serves no one: it never blocks a node drain (a crash-looping
    # pod would otherwise hold its node forever against a cluster autoscaler's scale-down).
    pdb["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(owner, owner.name, APP), "spec": pdb}


def app_selector(owner: Owner, spec: ScalableServiceSpec, adopted: dict[str, Any] | None) -> dict[str, str]:
    """Labels that select every replica: Spillway's own, or the adopted Deployment's."""
    if spec.target_ref is not None:
        if adopted is None:
            raise ValueError("an adopted Deployment is needed to know its selector")
        labels: dict[str, str] = adopted["spec"]["selector"].get("matchLabels") or {}
        return dict(labels)
    return selector_labels(owner, APP)


def build_app(owner: Owner, spec: ScalableServiceSpec, replicas: int, adopted: dict[str, Any] | None = None,
              env: list[dict[str, Any]] | None = None, checksum: str | None = None) -> list[dict[str, Any]]:
    """The app's own objects, in apply order; the Service in front of it is the balancing
    provider's (`spillway.resources.balancing`). `env` (secretKeyRefs to the session store's
    connection) goes into every container, `checksum` onto the pod template."""
    selector = app_selector(owner, spec, adopted)
    objects = build_deployments(owner, spec, replicas, env, checksum) if spec.target_ref is None else []
    pdb = build_pdb(owner, spec, selector)
    if pdb is not None:
        objects.append(pdb)
    return objects
