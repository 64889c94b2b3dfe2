"""Provider NginxGatewayFabric: the shared HTTPRoute plus an UpstreamSettingsPolicy with NGINX's
load-balancing method, a consistent hash for ClientIP, and no cookies without NGINX Plus."""

from __future__ import annotations

import re
from typing import Any

import pytest

from spillway.api.spec import HashKey
from spillway.resources.balancing import gateway, nginx
from spillway.resources.balancing.base import Balancer, Plan
from tests.unit.balancing.gateway_cases import POOLS, SINGLE_REF, WEIGHTED_REFS, meta, objects, one, plan, pool_service

HASH_METHOD_KEY = re.compile(r"^\$[a-z_]+$")  # upstreamsettingspolicy_types.go, HashMethodKey


def _policy(p: Plan) -> dict[str, Any]:
    spec: dict[str, Any] = one(p, "UpstreamSettingsPolicy")["spec"]
    return spec


def test_default_renders_the_route_and_a_round_robin_policy_on_the_service() -> None:
    p = plan(nginx, "NginxGatewayFabric")
    assert [o["kind"] for o in p.objects] == ["HTTPRoute", "UpstreamSettingsPolicy"]
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]
    assert one(p, "UpstreamSettingsPolicy") == {
        "apiVersion": "gateway.nginx.org/v1alpha1", "kind": "UpstreamSettingsPolicy", "metadata": meta("checkout"),
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "checkout"}],
                 "loadBalancingMethod": "round_robin"},
    }
    assert p.balancer == Balancer("NginxGatewayFabric", "RoundRobin", "via infra/public")
    assert p.verdict.honoured and p.verdict.reason == "NginxGatewayFabricBalancing"
    assert p.verdict.message == (
        "HTTPRoute checkout on Gateway infra/public sends traffic to Service checkout; NGINX picks the replica by "
        "round robin.")
    assert p.requires == (gateway.HTTPROUTE, nginx.POLICY)


@pytest.mark.parametrize(("balancing", "policy", "in_effect"), [
    ({"algorithm": "RoundRobin"}, {"loadBalancingMethod": "round_robin"}, "RoundRobin"),
    ({"algorithm": "Random"}, {"loadBalancingMethod": "random"}, "Random"),
    ({"algorithm": "LeastConnection"}, {"loadBalancingMethod": "least_conn"}, "LeastConnection"),
    ({"algorithm": "ConsistentHash"}, {"loadBalancingMethod": "hash consistent", "hashMethodKey": "$remote_addr"},
     "ConsistentHash"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User-Id"}},
     {"loadBalancingMethod": "hash consistent", "hashMethodKey": "$http_x_user_id"}, "ConsistentHash"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "JSESSIONID"}},
     {"loadBalancingMethod": "hash consistent", "hashMethodKey": "$cookie_jsessionid"}, "ConsistentHash"),
    ({"affinity": {"type": "ClientIP"}}, {"loadBalancingMethod": "hash consistent", "hashMethodKey": "$remote_addr"},
     "ConsistentHash"),
    ({"affinity": {"type": "ClientIP"}, "algorithm": "ConsistentHash"},
     {"loadBalancingMethod": "hash consistent", "hashMethodKey": "$remote_addr"}, "ConsistentHash"),
], ids=["round-robin", "random", "least-connection", "hash-source", "hash-header", "hash-cookie", "client-ip",
        "client-ip-and-source-hash"])
def test_each_algorithm_is_nginxs_load_balancing_method(balancing: dict[str, Any], policy: dict[str, Any],
                                                       in_effect: str) -> None:
    p = plan(nginx, "NginxGatewayFabric", **balancing)
    assert _policy(p) == {"targetRefs": [{"group": "", "kind": "Service", "name": "checkout"}], **policy}
    assert p.balancer.algorithm == in_effect
    assert p.verdict.honoured


@pytest.mark.parametrize(("key", "name"), [("Header", "X-Tenant2"), ("Cookie", "my-sid"), ("Cookie", "sid.v2")])
def test_a_hash_key_nginx_cannot_name_is_reported_and_round_robin_applies(key: str, name: str) -> None:
    p = plan(nginx, "NginxGatewayFabric", algorithm="ConsistentHash", hash={"source": key, "name": name})
    assert _policy(p) == {"targetRefs": [{"group": "", "kind": "Service", "name": "checkout"}],
                          "loadBalancingMethod": "round_robin"}
    assert not p.verdict.honoured and p.verdict.reason == "AlgorithmNotHonoured"
    assert f"{key.lower()} by a variable of lowercase letters and underscores only, which {name} cannot be" in (
        p.verdict.message)
    assert p.balancer.algorithm == "RoundRobin"


@pytest.mark.parametrize(("balancing", "words"), [
    ({"algorithm": "LeastConnection"}, "LeastConnection"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "sid"}}, "ConsistentHash on cookie sid"),
], ids=["least-connection", "hash-cookie"])
def test_client_ip_affinity_wins_over_another_algorithm(balancing: dict[str, Any], words: str) -> None:
    p = plan(nginx, "NginxGatewayFabric", affinity={"type": "ClientIP"}, **balancing)
    assert _policy(p)["hashMethodKey"] == "$remote_addr"
    assert p.verdict.reason == "AlgorithmNotHonoured"
    assert f"balancing.algorithm {words} is not applied: ClientIP affinity needs NGINX's consistent hash" in (
        p.verdict.message)


def test_weighted_targets_the_pool_services_of_the_weighted_route() -> None:
    p = plan(nginx, "NginxGatewayFabric", POOLS, algorithm="Weighted")
    assert objects(p, "Service") == [pool_service("large"), pool_service("small")]
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": WEIGHTED_REFS}]
    assert _policy(p) == {"targetRefs": [{"group": "", "kind": "Service", "name": n}
                                         for n in ("checkout", "checkout-large", "checkout-small")],
                          "loadBalancingMethod": "round_robin"}
    assert p.balancer.algorithm == "Weighted" and p.verdict.honoured


def test_client_ip_affinity_with_weighted_sends_to_the_service_of_every_pool() -> None:
    p = plan(nginx, "NginxGatewayFabric", POOLS, algorithm="Weighted", affinity={"type": "ClientIP"})
    assert objects(p, "Service") == []
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]
    assert [t["name"] for t in _policy(p)["targetRefs"]] == ["checkout"]
    assert p.verdict.reason == "AlgorithmNotHonoured"


@pytest.mark.parametrize("algorithm", [None, "LeastConnection"])
def test_cookie_affinity_needs_nginx_plus_and_is_reported(algorithm: str | None) -> None:
    p = plan(nginx, "NginxGatewayFabric", algorithm=algorithm, affinity={"type": "Cookie"})
    assert "sessionPersistence" not in one(p, "HTTPRoute")["spec"]["rules"][0]
    assert p.requires == (gateway.HTTPROUTE, nginx.POLICY)
    assert not p.verdict.honoured and p.verdict.reason == "AffinityNotHonoured"
    assert "affinity Cookie is not applied: NginxGatewayFabric sets affinity cookies only with NGINX Plus" in (
        p.verdict.message)
    assert _policy(p)["loadBalancingMethod"] == ("least_conn" if algorithm else "round_robin")


@pytest.mark.parametrize(("source", "name", "variable"), [
    ("SourceIP", None, "$remote_addr"), ("Header", "X-Forwarded-For", "$http_x_forwarded_for"),
    ("Header", "tenant", "$http_tenant"), ("Cookie", "SESSION", "$cookie_session"),
    ("Header", "x_y", "$http_x_y"), ("Header", "X-9", None), ("Cookie", "a-b", None),
])
def test_hash_keys_are_nginx_variables_the_policy_accepts(source: str, name: str | None,
                                                          variable: str | None) -> None:
    key = nginx.hash_key(HashKey.model_validate({"source": source, "name": name}))
    assert key == variable
    assert key is None or HASH_METHOD_KEY.match(key)
