"""Invariants of the GatewayAPI, EnvoyGateway, Istio and NginxGatewayFabric renderers over any
valid spec: they never raise, every object is owned and namespaced, names stay DNS labels, and
every field obeys the provider's schema rules that a unit test can check."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.resources.balancing import envoygateway, gateway, istio, nginx
from spillway.resources.balancing.base import NOT_HONOURED, Plan
from spillway.resources.meta import Owner, owner_reference
from tests.unit.balancing.gateway_cases import context
from tests.unit.conftest import minimal_spec

MODULES = {"GatewayAPI": gateway, "EnvoyGateway": envoygateway, "Istio": istio, "NginxGatewayFabric": nginx}
GEP_2257 = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
HASH_METHOD_KEY = re.compile(r"^\$[a-z_]+$")
PROTO_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?s$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CORE_KINDS = {("v1", "Service")}

OWNERS = st.sampled_from([Owner("checkout", "shop", "u-1"), Owner("a" * 63, "ns", "u-2"), Owner("x", "team-b", "u-3")])
TTLS = st.sampled_from(["0s", "250ms", "1.5s", "30s", "1h", "1h30m", "24h", "200000h", "1h0m0.0005s"])
NAMES = st.sampled_from(["X-User", "sid", "JSESSIONID", "x_y", "a-b", "X-9", "tenant.v2"])
HASHES = st.one_of(st.just({}), st.builds(lambda s, n: {"source": s, "name": n},
                                          st.sampled_from(["SourceIP", "Header", "Cookie"]), NAMES))
AFFINITIES = st.builds(lambda t, c, ttl: {"type": t, "cookieName": c, "ttl": ttl},
                       st.sampled_from(["None", "ClientIP", "Cookie"]), st.sampled_from(["SPILLWAY", "sid", "a-b_9"]),
                       TTLS)
PARENTS = st.lists(st.builds(lambda n, ns, sec: {k: v for k, v in
                                                 {"name": n, "namespace": ns, "sectionName": sec}.items() if v},
                             st.sampled_from(["public", "internal"]), st.sampled_from([None, "infra"]),
                             st.sampled_from([None, "https"])), min_size=1, max_size=3)
HOSTNAMES = st.lists(st.sampled_from(["shop.example.com", "*.example.com", "api.example.org"]), max_size=2, unique=True)
POOL_SETS = st.sampled_from([
    [], [{"name": "large", "weight": 3}, {"name": "small", "weight": 1}],
    [{"name": "gpu", "weight": 100}], [{"name": f"p{i}", "weight": i + 1} for i in range(8)],
])


@st.composite
def specs(draw: Any) -> Any:
    provider = draw(st.sampled_from(list(MODULES)))
    pools = draw(POOL_SETS)
    algorithms = [None, "RoundRobin", "Random", "LeastConnection", "ConsistentHash"] + (["Weighted"] if pools else [])
    balancing: dict[str, Any] = {"provider": provider, "algorithm": draw(st.sampled_from(algorithms)),
                                 "affinity": draw(AFFINITIES), "hash": draw(HASHES)}
    if provider != "Istio" or draw(st.booleans()):
        balancing["gateway"] = {"parentRefs": draw(PARENTS), "hostnames": draw(HOSTNAMES)}
    body = minimal_spec(balancing=balancing, pools=pools, servicePort=draw(st.sampled_from([80, 8080])))
    if not pools and draw(st.booleans()):
        del body["template"]
        body["targetRef"] = {"name": "legacy"}  # an adopted Deployment: the same balancer objects
    return parse_spec(body)


def _walk(value: Any, key: str = "") -> Any:
    """Every (key, value) pair anywhere in `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, key)


@settings(max_examples=400, deadline=None)
@given(OWNERS, specs())
def test_every_plan_is_owned_namespaced_and_within_the_providers_schemas(owner: Owner, spec: Any) -> None:
    plan: Plan = MODULES[spec.balancing.provider].render(owner, spec, context(owner, spec))
    assert plan.objects
    served = {(r.api_version, r.kind) for r in plan.requires} | CORE_KINDS
    for obj in plan.objects:
        meta = obj["metadata"]
        assert meta["namespace"] == owner.namespace
        assert meta["ownerReferences"] == [owner_reference(owner)]
        assert (obj["apiVersion"], obj["kind"]) in served
        if obj["kind"] == "Service":
            assert len(meta["name"]) <= 63 and DNS_LABEL.match(meta["name"])
    text = json.dumps(plan.objects)
    assert "idleTimeout" not in text and "LEAST_CONN" not in text
    assert plan.verdict.honoured == (plan.verdict.reason not in NOT_HONOURED)
    assert plan.verdict.message.endswith(".")
    for key, value in _walk(list(plan.objects)):
        if key == "absoluteTimeout":
            assert GEP_2257.match(value)
        if key == "hashMethodKey":
            assert HASH_METHOD_KEY.match(value)
        if key == "ttl":
            assert PROTO_DURATION.match(value)
        if key == "sessionPersistence":
            # CEL in shared_types.go: Permanent needs absoluteTimeout; cookieConfig only with type Cookie.
            assert value["type"] == "Cookie"
            assert value["cookieConfig"]["lifetimeType"] != "Permanent" or "absoluteTimeout" in value
        if key == "loadBalancer" and "type" in value:
            # CEL in loadbalancer_types.go: consistentHash exactly when type is ConsistentHash.
            assert (value["type"] == "ConsistentHash") == ("consistentHash" in value)
        if key == "loadBalancer" and "type" not in value:
            assert len(value) == 1 and set(value) <= {"simple", "consistentHash"}
        if key == "backendRefs":
            assert 1 <= len(value) <= 16 and all(0 <= r.get("weight", 1) <= 1_000_000 for r in value)
    if any(k == "sessionPersistence" for k, _ in _walk(list(plan.objects))):
        assert gateway.HTTPROUTE_EXPERIMENTAL in plan.requires


@settings(max_examples=200, deadline=None)
@given(OWNERS, specs())
def test_rendering_is_deterministic(owner: Owner, spec: Any) -> None:
    module = MODULES[spec.balancing.provider]
    assert module.render(owner, spec, context(owner, spec)) == module.render(owner, spec, context(owner, spec))
