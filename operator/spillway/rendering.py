"""`spillway render`: every object the operator would create for a ScalableService, without a
cluster, for review before it is applied (the rendered haproxy.cfg and redis.conf in GitOps).

The operator's own reconcile runs against an empty in-memory cluster that serves every API the
chosen balancing provider needs and no CapacityBuffer API (so `headroom.mechanism: Auto` renders
placeholder pods). Secrets keep their names and keys; every value is replaced by a placeholder:
their content is generated at creation and never shown. Checksum annotations over generated
content differ from one render to the next.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from spillway.api import SpecError, parse_spec
from spillway.ports import ClusterError
from spillway.reconcile import reconcile
from spillway.resources import balancing
from spillway.resources.balancing import Context
from spillway.resources.meta import Owner, relabel
from spillway.resources.workload import app_selector, pool_selector

GENERATED = "<generated when the operator creates it; never shown>"
NOW = datetime(2000, 1, 1, tzinfo=UTC)


class RenderError(ValueError):
    """A resource that cannot be rendered; `str()` names the field or what is missing."""


class MemoryCluster:
    """The `Cluster` port over a dict: what is applied is kept, and what the reconcile reads back
    is what it wrote. `serves` are the CRDs it pretends are installed, by name."""

    def __init__(self, serves: dict[str, dict[str, Any]]) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.serves = serves

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (v, k, ns, _), o in self.objects.items()
                if (v, k, ns) == (api_version, kind, namespace)
                and labels.items() <= ((o.get("metadata") or {}).get("labels") or {}).items()]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self.objects[(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def create(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]) not in self.objects:
            self.apply(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((api_version, kind, namespace, name), None)

    def scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None:
        found = self.objects.get((api_version, kind, namespace, name))
        if found is None:
            raise ClusterError(f"{kind} {name} not found", status=404, retryable=False)
        found.setdefault("spec", {})["replicas"] = replicas

    def label(self, api_version: str, kind: str, namespace: str, name: str, labels: dict[str, str | None]) -> None:
        found = self.objects.get((api_version, kind, namespace, name))
        if found is not None:
            relabel(found, labels)

    def patch_status(self, body: dict[str, Any], status: dict[str, Any]) -> None:
        body.setdefault("status", {}).update(copy.deepcopy(status))

    def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        pass

    def crd(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.serves.get(name))


def _served_crds(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A CRD for every API the balancing provider of `resource` needs, serving the version and
    carrying the Gateway API channel it asks for."""
    owner = Owner.from_body(resource)
    spec = parse_spec(resource.get("spec") or {})
    plan = balancing.render(owner, spec, Context(selector=app_selector(owner, spec, None),
                                                 pool_selectors={p.name: pool_selector(owner, p) for p in spec.pools}))
    crds: dict[str, dict[str, Any]] = {}
    for need in plan.requires:
        found = crds.setdefault(need.crd, {"metadata": {"name": need.crd, "annotations": {}}, "spec": {"versions": []}})
        found["spec"]["versions"].append({"name": need.api_version.rsplit("/", 1)[-1], "served": True})
        if need.channel is not None:
            found["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] = need.channel
    return crds


def _hidden(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") != "Secret":
        return obj
    shown = copy.deepcopy(obj)
    for field in ("data", "stringData"):
        if field in shown:
            shown[field] = dict.fromkeys(shown[field], GENERATED)
    return shown


def render(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the operator would create for `resource` (a ScalableService, as applied), in
    the order a reader wants them: by kind, then name. RenderError names an invalid field."""
    if resource.get("kind") != "ScalableService":
        raise RenderError(f"kind: {resource.get('kind')!r} is not ScalableService")
    metadata = resource.get("metadata") or {}
    if not metadata.get("name"):
        raise RenderError("metadata.name: required")
    if (resource.get("spec") or {}).get("targetRef") is not None:
        raise RenderError("spec.targetRef: an adopted Deployment is read from the cluster; render shows what "
                          "Spillway creates from spec.template")
    body = copy.deepcopy(resource)
    body["metadata"] = {"namespace": "default", **metadata, "uid": "<uid>", "generation": 1}
    try:
        cluster = MemoryCluster(_served_crds(body))
    except SpecError as err:
        raise RenderError(str(err)) from err
    reconcile(cluster, body, NOW)
    problems = [c for c in (body.get("status") or {}).get("conditions", [])
                if c.get("type") == "SpecValid" and c.get("status") == "False"]
    if problems:
        raise RenderError(problems[0]["message"])
    return [_hidden(o) for _, o in sorted(cluster.objects.items(), key=lambda item: (item[0][1], item[0][3]))]
