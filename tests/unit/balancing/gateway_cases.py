"""Specs, owner and context shared by the GatewayAPI, EnvoyGateway, Istio and
NginxGatewayFabric provider tests."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing.base import Context, Plan
from spillway.resources.meta import Owner, owner_reference, selector_labels
from spillway.resources.workload import pool_selector
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="u-1")
SELECTOR = selector_labels(OWNER, "app")
POOLS = [{"name": "large", "weight": 3}, {"name": "small", "weight": 1}]
PARENT = {"name": "public", "namespace": "infra"}
META_LABELS = {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/instance": "checkout",
               "app.kubernetes.io/component": "balancer", "app.kubernetes.io/managed-by": "spillway"}


def spec(provider: str, pools: list[dict[str, Any]] | None = None, **balancing: Any) -> ScalableServiceSpec:
    """A valid spec with `balancing` for `provider`; Gateway providers attach to Gateway infra/public."""
    if provider != "Istio":
        balancing.setdefault("gateway", {"parentRefs": [PARENT]})
    overrides: dict[str, Any] = {"balancing": {"provider": provider, **balancing}}
    if pools:
        overrides["pools"] = pools
    return parse_spec(minimal_spec(**overrides))


def context(owner: Owner, s: ScalableServiceSpec) -> Context:
    return Context(selector=selector_labels(owner, "app"),
                   pool_selectors={p.name: pool_selector(owner, p) for p in s.pools})


def plan(module: ModuleType, provider: str, pools: list[dict[str, Any]] | None = None, **balancing: Any) -> Plan:
    s = spec(provider, pools, **balancing)
    rendered: Plan = module.render(OWNER, s, context(OWNER, s))
    return rendered


def objects(p: Plan, kind: str) -> list[dict[str, Any]]:
    return [o for o in p.objects if o["kind"] == kind]


def one(p: Plan, kind: str) -> dict[str, Any]:
    found = objects(p, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "shop", "labels": META_LABELS, "ownerReferences": [owner_reference(OWNER)]}


def pool_service(pool: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(f"checkout-{pool}"),
            "spec": {"type": "ClusterIP", "selector": {**SELECTOR, "spillway.io/pool": pool},
                     "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}]}}


WEIGHTED_REFS = [{"kind": "Service", "name": "checkout-large", "port": 80, "weight": 3},
                 {"kind": "Service", "name": "checkout-small", "port": 80, "weight": 1}]
SINGLE_REF = [{"kind": "Service", "name": "checkout", "port": 80}]
