"""Provider EnvoyGateway: the shared HTTPRoute plus a BackendTrafficPolicy with Envoy's load
balancer, sessionPersistence for cookies, ConsistentHash SourceIP for ClientIP affinity."""

from __future__ import annotations

from typing import Any

import pytest

from spillway.resources.balancing import envoygateway, gateway
from spillway.resources.balancing.base import Balancer
from tests.unit.balancing.gateway_cases import (
    OWNER,
    POOLS,
    SINGLE_REF,
    WEIGHTED_REFS,
    meta,
    objects,
    one,
    plan,
    pool_service,
    spec,
)

SOURCE_IP = {"type": "ConsistentHash", "consistentHash": {"type": "SourceIP"}}


def test_default_renders_the_route_and_a_round_robin_policy_on_it() -> None:
    p = plan(envoygateway, "EnvoyGateway")
    assert [o["kind"] for o in p.objects] == ["HTTPRoute", "BackendTrafficPolicy"]
    assert one(p, "HTTPRoute") == gateway.build_route(OWNER, spec("EnvoyGateway"), by_pool=False, cookie=False)
    assert one(p, "BackendTrafficPolicy") == {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "BackendTrafficPolicy", "metadata": meta("checkout"),
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "checkout"}],
                 "loadBalancer": {"type": "RoundRobin"}},
    }
    assert p.balancer == Balancer("EnvoyGateway", "RoundRobin", "via infra/public")
    assert p.verdict.honoured and p.verdict.reason == "EnvoyGatewayBalancing"
    assert p.verdict.message == (
        "HTTPRoute checkout on Gateway infra/public sends traffic to Service checkout; Envoy picks the replica by "
        "round robin.")
    assert p.requires == (gateway.HTTPROUTE, envoygateway.POLICY)


@pytest.mark.parametrize(("balancing", "load_balancer", "in_effect", "words"), [
    ({"algorithm": "RoundRobin"}, {"type": "RoundRobin"}, "RoundRobin", "round robin"),
    ({"algorithm": "Random"}, {"type": "Random"}, "Random", "random choice"),
    ({"algorithm": "LeastConnection"}, {"type": "LeastRequest"}, "LeastConnection", "fewest active requests"),
    ({"algorithm": "ConsistentHash"}, SOURCE_IP, "ConsistentHash", "consistent hash on the client address"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}},
     {"type": "ConsistentHash", "consistentHash": {"type": "Headers", "headers": [{"name": "X-User"}]}},
     "ConsistentHash", "consistent hash on header X-User"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "JSESSIONID"}},
     {"type": "ConsistentHash", "consistentHash": {"type": "Cookie", "cookie": {"name": "JSESSIONID"}}},
     "ConsistentHash", "consistent hash on cookie JSESSIONID"),
], ids=["round-robin", "random", "least-connection", "hash-source", "hash-header", "hash-cookie"])
def test_each_algorithm_is_envoys_load_balancer(balancing: dict[str, Any], load_balancer: dict[str, Any],
                                               in_effect: str, words: str) -> None:
    p = plan(envoygateway, "EnvoyGateway", **balancing)
    assert one(p, "BackendTrafficPolicy")["spec"]["loadBalancer"] == load_balancer
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]
    assert p.balancer.algorithm == in_effect
    assert p.verdict.honoured
    assert p.verdict.message.endswith(f"Envoy picks the replica by {words}.")


def test_weighted_is_round_robin_over_weighted_backend_refs() -> None:
    p = plan(envoygateway, "EnvoyGateway", POOLS, algorithm="Weighted")
    assert objects(p, "Service") == [pool_service("large"), pool_service("small")]
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": WEIGHTED_REFS}]
    assert one(p, "BackendTrafficPolicy")["spec"]["loadBalancer"] == {"type": "RoundRobin"}
    assert p.balancer.algorithm == "Weighted" and p.verdict.honoured


def test_cookie_affinity_is_session_persistence_and_keeps_the_algorithm() -> None:
    p = plan(envoygateway, "EnvoyGateway", algorithm="LeastConnection", affinity={"type": "Cookie", "ttl": "30m"})
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF, "sessionPersistence": {
        "sessionName": "SPILLWAY", "type": "Cookie", "absoluteTimeout": "30m",
        "cookieConfig": {"lifetimeType": "Permanent"}}}]
    assert one(p, "BackendTrafficPolicy")["spec"]["loadBalancer"] == {"type": "LeastRequest"}
    assert p.requires == (gateway.HTTPROUTE_EXPERIMENTAL, envoygateway.POLICY)
    assert p.verdict.honoured and p.balancer.algorithm == "LeastConnection"
    assert p.verdict.message.endswith("fewest active requests, and cookie SPILLWAY keeps a client on its replica for 30m.")


def test_cookie_affinity_with_weighted_pools_keeps_the_weights() -> None:
    p = plan(envoygateway, "EnvoyGateway", POOLS, algorithm="Weighted", affinity={"type": "Cookie"})
    assert one(p, "HTTPRoute")["spec"]["rules"][0]["backendRefs"] == WEIGHTED_REFS
    assert p.verdict.honoured


@pytest.mark.parametrize("balancing", [
    {}, {"algorithm": "ConsistentHash"}, {"algorithm": "ConsistentHash", "hash": {"source": "SourceIP"}},
], ids=["no-algorithm", "hash-default-source", "hash-source-ip"])
def test_client_ip_affinity_is_a_source_ip_hash(balancing: dict[str, Any]) -> None:
    p = plan(envoygateway, "EnvoyGateway", affinity={"type": "ClientIP"}, **balancing)
    assert one(p, "BackendTrafficPolicy")["spec"]["loadBalancer"] == SOURCE_IP
    assert p.balancer.algorithm == "ConsistentHash"
    assert p.verdict.honoured
    assert p.verdict.message.endswith("Envoy hashes the client address onto a replica (ClientIP affinity).")


@pytest.mark.parametrize(("balancing", "words"), [
    ({"algorithm": "LeastConnection"}, "LeastConnection"),
    ({"algorithm": "RoundRobin"}, "RoundRobin"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}}, "ConsistentHash on header X-User"),
], ids=["least-connection", "round-robin", "hash-header"])
def test_client_ip_affinity_wins_over_another_algorithm(balancing: dict[str, Any], words: str) -> None:
    p = plan(envoygateway, "EnvoyGateway", affinity={"type": "ClientIP"}, **balancing)
    assert one(p, "BackendTrafficPolicy")["spec"]["loadBalancer"] == SOURCE_IP
    assert not p.verdict.honoured and p.verdict.reason == "AlgorithmNotHonoured"
    assert (f"balancing.algorithm {words} is not applied: ClientIP affinity needs Envoy's consistent hash on the "
            "client address, and stickiness wins.") in p.verdict.message


def test_client_ip_affinity_with_weighted_sends_to_the_service_of_every_pool() -> None:
    p = plan(envoygateway, "EnvoyGateway", POOLS, algorithm="Weighted", affinity={"type": "ClientIP"})
    assert objects(p, "Service") == []
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]
    assert p.verdict.reason == "AlgorithmNotHonoured"
    assert "traffic goes to Service checkout across all pools rather than split by pool weight" in p.verdict.message
