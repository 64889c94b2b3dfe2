"""Provider Istio: a DestinationRule with the mesh's load balancer, consistent hash for
affinity, and subsets with a weighted VirtualService for Weighted pools."""

from __future__ import annotations

from typing import Any

import pytest

from spillway.resources.balancing import istio
from spillway.resources.balancing.base import Balancer
from tests.unit.balancing.gateway_cases import POOLS, SELECTOR, meta, objects, one, plan

HOST = "checkout.shop.svc.cluster.local"


def _load_balancer(**balancing: Any) -> dict[str, Any]:
    rule = one(plan(istio, "Istio", **balancing), "DestinationRule")
    lb: dict[str, Any] = rule["spec"]["trafficPolicy"]["loadBalancer"]
    return lb


def test_default_is_a_round_robin_destination_rule_for_the_service() -> None:
    p = plan(istio, "Istio")
    assert p.objects == ({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta("checkout"),
        "spec": {"host": HOST, "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
    },)
    assert p.balancer == Balancer("Istio", "RoundRobin", f"{HOST}:80")
    assert p.verdict.honoured and p.verdict.reason == "IstioBalancing"
    assert p.verdict.message == (
        "DestinationRule checkout has the mesh reach Service checkout, picking the replica by round robin.")
    assert p.requires == (istio.DESTINATION_RULE,)


@pytest.mark.parametrize(("balancing", "load_balancer"), [
    ({"algorithm": "RoundRobin"}, {"simple": "ROUND_ROBIN"}),
    ({"algorithm": "Random"}, {"simple": "RANDOM"}),
    ({"algorithm": "LeastConnection"}, {"simple": "LEAST_REQUEST"}),
    ({"algorithm": "ConsistentHash"}, {"consistentHash": {"useSourceIp": True}}),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}},
     {"consistentHash": {"httpHeaderName": "X-User"}}),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "JSESSIONID"}},
     {"consistentHash": {"httpCookie": {"name": "JSESSIONID"}}}),
    ({"affinity": {"type": "ClientIP"}}, {"consistentHash": {"useSourceIp": True}}),
    ({"affinity": {"type": "Cookie"}},
     {"consistentHash": {"httpCookie": {"name": "SPILLWAY", "path": "/", "ttl": "3600s"}}}),
    ({"affinity": {"type": "Cookie", "cookieName": "sid", "ttl": "1.5s"}},
     {"consistentHash": {"httpCookie": {"name": "sid", "path": "/", "ttl": "1.5s"}}}),
    ({"affinity": {"type": "Cookie", "ttl": "0s"}},
     {"consistentHash": {"httpCookie": {"name": "SPILLWAY", "path": "/", "ttl": "0s"}}}),
], ids=["round-robin", "random", "least-connection", "hash-source", "hash-header", "hash-cookie",
        "client-ip", "cookie", "cookie-fraction", "session-cookie"])
def test_each_algorithm_and_affinity_is_the_destination_rules_load_balancer(
        balancing: dict[str, Any], load_balancer: dict[str, Any]) -> None:
    p = plan(istio, "Istio", **balancing)
    assert one(p, "DestinationRule")["spec"]["trafficPolicy"]["loadBalancer"] == load_balancer
    assert p.verdict.honoured
    assert objects(p, "VirtualService") == []


def test_least_conn_is_never_written() -> None:
    assert "LEAST_CONN" not in str(plan(istio, "Istio", algorithm="LeastConnection").objects)


@pytest.mark.parametrize(("affinity", "ending"), [
    ({"type": "ClientIP"}, "hashing the client address onto a replica."),
    ({"type": "Cookie", "ttl": "90m"}, "and cookie SPILLWAY keeps a client on its replica for 1h30m."),
    ({"type": "Cookie", "ttl": "0s"}, "and cookie SPILLWAY keeps a client on its replica for the browser session."),
])
def test_affinity_is_said_in_the_message(affinity: dict[str, Any], ending: str) -> None:
    assert plan(istio, "Istio", affinity=affinity).verdict.message.endswith(ending)


@pytest.mark.parametrize("balancing", [
    {"affinity": {"type": "ClientIP"}, "algorithm": "ConsistentHash"},
    {"affinity": {"type": "Cookie", "cookieName": "sid"}, "algorithm": "ConsistentHash",
     "hash": {"source": "Cookie", "name": "sid"}},
], ids=["client-ip-and-source-hash", "cookie-and-same-cookie-hash"])
def test_affinity_and_the_same_hash_agree(balancing: dict[str, Any]) -> None:
    p = plan(istio, "Istio", **balancing)
    assert p.verdict.honoured and p.balancer.algorithm == "ConsistentHash"


@pytest.mark.parametrize(("balancing", "words"), [
    ({"affinity": {"type": "Cookie"}, "algorithm": "LeastConnection"}, "LeastConnection"),
    ({"affinity": {"type": "ClientIP"}, "algorithm": "Random"}, "Random"),
    ({"affinity": {"type": "Cookie"}, "algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "other"}},
     "ConsistentHash on cookie other"),
    ({"affinity": {"type": "ClientIP"}, "algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-A"}},
     "ConsistentHash on header X-A"),
], ids=["cookie-least-connection", "client-ip-random", "cookie-other-cookie", "client-ip-header"])
def test_affinity_wins_over_another_algorithm(balancing: dict[str, Any], words: str) -> None:
    p = plan(istio, "Istio", **balancing)
    assert "consistentHash" in one(p, "DestinationRule")["spec"]["trafficPolicy"]["loadBalancer"]
    assert not p.verdict.honoured and p.verdict.reason == "AlgorithmNotHonoured"
    assert f"balancing.algorithm {words} is not applied: " in p.verdict.message
    assert "Istio's consistent hash, which takes the algorithm's place." in p.verdict.message


def test_weighted_renders_a_subset_per_pool_and_a_weighted_virtual_service() -> None:
    p = plan(istio, "Istio", POOLS, algorithm="Weighted")
    assert one(p, "DestinationRule")["spec"] == {
        "host": HOST, "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
        "subsets": [{"name": "large", "labels": {**SELECTOR, "spillway.io/pool": "large"}},
                    {"name": "small", "labels": {**SELECTOR, "spillway.io/pool": "small"}}],
    }
    assert one(p, "VirtualService") == {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta("checkout"),
        "spec": {"hosts": [HOST], "http": [{"route": [
            {"destination": {"host": HOST, "subset": "large", "port": {"number": 80}}, "weight": 3},
            {"destination": {"host": HOST, "subset": "small", "port": {"number": 80}}, "weight": 1},
        ]}]},
    }
    assert p.requires == (istio.DESTINATION_RULE, istio.VIRTUAL_SERVICE)
    assert p.balancer.algorithm == "Weighted" and p.verdict.honoured
    assert "split across the pools by weight (large 3, small 1, VirtualService checkout)" in p.verdict.message


@pytest.mark.parametrize("affinity", ["ClientIP", "Cookie"])
def test_weighted_yields_to_affinity_without_subsets(affinity: str) -> None:
    p = plan(istio, "Istio", POOLS, algorithm="Weighted", affinity={"type": affinity})
    assert "subsets" not in one(p, "DestinationRule")["spec"]
    assert objects(p, "VirtualService") == []
    assert p.requires == (istio.DESTINATION_RULE,)
    assert p.verdict.reason == "AlgorithmNotHonoured"
    assert "a split per request would move a client between pools" in p.verdict.message


def test_pools_without_weighted_need_no_subsets() -> None:
    p = plan(istio, "Istio", POOLS, algorithm="LeastConnection")
    assert "subsets" not in one(p, "DestinationRule")["spec"] and objects(p, "VirtualService") == []
