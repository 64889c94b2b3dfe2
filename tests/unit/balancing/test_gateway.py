"""Provider GatewayAPI: the HTTPRoute, the pool Services for Weighted, cookie sessionPersistence,
and what core Gateway API cannot express."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.resources.balancing import envoygateway, gateway, nginx
from spillway.resources.balancing.base import Balancer
from spillway.resources.meta import Owner
from tests.unit.conftest import minimal_spec
from tests.unit.balancing.gateway_cases import (
    POOLS,
    SINGLE_REF,
    WEIGHTED_REFS,
    context,
    meta,
    objects,
    one,
    plan,
    pool_service,
    spec,
)

GEP_2257 = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


def test_default_is_one_route_to_the_app_service_through_the_gateway() -> None:
    p = plan(gateway, "GatewayAPI")
    assert p.objects == ({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("checkout"),
        "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                 "namespace": "infra"}],
                 "rules": [{"backendRefs": SINGLE_REF}]},
    },)
    assert p.balancer == Balancer("GatewayAPI", "ImplementationDefault", "via infra/public")
    assert p.verdict.honoured and p.verdict.reason == "GatewayAPIBalancing"
    assert p.verdict.message == (
        "HTTPRoute checkout on Gateway infra/public sends traffic to Service checkout; the Gateway's "
        "implementation picks the replica.")
    assert p.requires == (gateway.HTTPROUTE,) and gateway.HTTPROUTE.channel is None


@pytest.mark.parametrize(("refs", "expected"), [
    ([{"name": "public"}], [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}]),
    ([{"name": "public", "sectionName": "https"}],
     [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "sectionName": "https"}]),
    ([{"name": "a", "namespace": "infra"}, {"name": "b", "group": "example.com", "kind": "Mesh"}],
     [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "a", "namespace": "infra"},
      {"group": "example.com", "kind": "Mesh", "name": "b"}]),
], ids=["name-only", "section", "two-parents"])
def test_parent_refs_carry_namespace_and_section_only_when_set(refs: list[dict[str, Any]],
                                                                expected: list[dict[str, Any]]) -> None:
    route = one(plan(gateway, "GatewayAPI", gateway={"parentRefs": refs}), "HTTPRoute")
    assert route["spec"]["parentRefs"] == expected


@pytest.mark.parametrize(("config", "hostnames", "endpoint"), [
    ({"parentRefs": [{"name": "public"}]}, None, "via shop/public"),
    ({"parentRefs": [{"name": "a"}, {"name": "b", "namespace": "infra"}]}, None, "via shop/a, infra/b"),
    ({"parentRefs": [{"name": "public"}], "hostnames": ["shop.example.com", "www.shop.example.com"]},
     ["shop.example.com", "www.shop.example.com"], "shop.example.com, www.shop.example.com"),
], ids=["one-gateway", "two-gateways", "hostnames"])
def test_hostnames_are_written_when_given_and_name_the_endpoint(config: dict[str, Any], hostnames: list[str] | None,
                                                                endpoint: str) -> None:
    p = plan(gateway, "GatewayAPI", gateway=config)
    assert one(p, "HTTPRoute")["spec"].get("hostnames") == hostnames
    assert p.balancer.endpoint == endpoint


@pytest.mark.parametrize(("balancing", "words"), [
    ({"algorithm": "RoundRobin"}, "RoundRobin"),
    ({"algorithm": "Random"}, "Random"),
    ({"algorithm": "LeastConnection"}, "LeastConnection"),
    ({"algorithm": "ConsistentHash"}, "ConsistentHash on the client address"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}}, "ConsistentHash on header X-User"),
], ids=["round-robin", "random", "least-connection", "hash-source", "hash-header"])
def test_an_explicit_algorithm_is_reported_not_honoured(balancing: dict[str, Any], words: str) -> None:
    p = plan(gateway, "GatewayAPI", **balancing)
    assert not p.verdict.honoured and p.verdict.reason == "AlgorithmNotHonoured"
    assert p.verdict.message == (
        "HTTPRoute checkout on Gateway infra/public sends traffic to Service checkout; the Gateway's implementation "
        f"picks the replica. balancing.algorithm {words} is not applied: Gateway API has no algorithm field, so the "
        "Gateway's implementation picks the replica. Providers EnvoyGateway, Istio and NginxGatewayFabric apply it.")
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]
    assert p.balancer.algorithm == "ImplementationDefault"


def test_weighted_splits_by_pool_weight_through_a_service_per_pool() -> None:
    p = plan(gateway, "GatewayAPI", POOLS, algorithm="Weighted")
    assert objects(p, "Service") == [pool_service("large"), pool_service("small")]
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": WEIGHTED_REFS}]
    assert [o["kind"] for o in p.objects] == ["Service", "Service", "HTTPRoute"]  # backends before the route
    assert p.balancer.algorithm == "Weighted"
    assert p.verdict.honoured
    assert "splits traffic across the pools by weight (large 3, small 1)" in p.verdict.message


@pytest.mark.parametrize("algorithm", [None, "RoundRobin", "LeastConnection"])
def test_pools_without_weighted_share_one_backend_spanning_every_pool(algorithm: str | None) -> None:
    p = plan(gateway, "GatewayAPI", POOLS, algorithm=algorithm)
    assert objects(p, "Service") == []
    assert one(p, "HTTPRoute")["spec"]["rules"] == [{"backendRefs": SINGLE_REF}]


@pytest.mark.parametrize(("affinity", "persistence", "lasting"), [
    ({"type": "Cookie"}, {"sessionName": "SPILLWAY", "type": "Cookie", "absoluteTimeout": "1h",
                          "cookieConfig": {"lifetimeType": "Permanent"}}, "for 1h"),
    ({"type": "Cookie", "cookieName": "sid", "ttl": "90m"},
     {"sessionName": "sid", "type": "Cookie", "absoluteTimeout": "1h30m", "cookieConfig": {"lifetimeType": "Permanent"}},
     "for 1h30m"),
    ({"type": "Cookie", "ttl": "1.5s"}, {"sessionName": "SPILLWAY", "type": "Cookie", "absoluteTimeout": "1s500ms",
                                         "cookieConfig": {"lifetimeType": "Permanent"}}, "for 1s500ms"),
    ({"type": "Cookie", "ttl": "0s"}, {"sessionName": "SPILLWAY", "type": "Cookie",
                                       "cookieConfig": {"lifetimeType": "Session"}}, "for the browser session"),
], ids=["default-ttl", "named-90m", "fraction", "session-cookie"])
def test_cookie_affinity_is_session_persistence_on_the_experimental_channel(
        affinity: dict[str, Any], persistence: dict[str, Any], lasting: str) -> None:
    p = plan(gateway, "GatewayAPI", affinity=affinity)
    rule = one(p, "HTTPRoute")["spec"]["rules"][0]
    assert rule == {"backendRefs": SINGLE_REF, "sessionPersistence": persistence}
    assert p.requires == (gateway.HTTPROUTE_EXPERIMENTAL,) and p.requires[0].channel == "experimental"
    assert p.verdict.honoured
    assert p.verdict.message.endswith(f"keeps a client on its replica {lasting}.")


def test_cookie_affinity_with_weighted_keeps_both() -> None:
    p = plan(gateway, "GatewayAPI", POOLS, algorithm="Weighted", affinity={"type": "Cookie"})
    rule = one(p, "HTTPRoute")["spec"]["rules"][0]
    assert rule["backendRefs"] == WEIGHTED_REFS and rule["sessionPersistence"]["sessionName"] == "SPILLWAY"
    assert p.verdict.honoured


def test_client_ip_affinity_is_reported_not_honoured() -> None:
    p = plan(gateway, "GatewayAPI", affinity={"type": "ClientIP"})
    assert not p.verdict.honoured and p.verdict.reason == "AffinityNotHonoured"
    assert "affinity ClientIP is not applied: core Gateway API has no client-address affinity" in p.verdict.message
    assert "sessionPersistence" not in one(p, "HTTPRoute")["spec"]["rules"][0]
    assert p.requires == (gateway.HTTPROUTE,)


def test_an_algorithm_and_client_ip_affinity_both_unhonoured_report_the_affinity_and_say_both() -> None:
    p = plan(gateway, "GatewayAPI", algorithm="Random", affinity={"type": "ClientIP"})
    assert p.verdict.reason == "AffinityNotHonoured"
    assert "balancing.algorithm Random is not applied" in p.verdict.message
    assert "affinity ClientIP is not applied" in p.verdict.message


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(0), "0s"), (timedelta(milliseconds=250), "250ms"), (timedelta(seconds=1.5), "1s500ms"),
    (timedelta(hours=1), "1h"), (timedelta(seconds=3601), "1h1s"), (timedelta(days=2), "48h"),
    (timedelta(hours=1, minutes=2, seconds=3, milliseconds=4), "1h2m3s4ms"),
    (timedelta(microseconds=400), "0s"), (timedelta(days=5000), "99999h59m59s999ms"),
])
def test_gateway_durations_follow_gep_2257(value: timedelta, text: str) -> None:
    assert gateway.gateway_duration(value) == text
    assert GEP_2257.match(text)


def test_a_long_owner_name_keeps_pool_service_names_dns_labels() -> None:
    long_owner = Owner(name="a" * 60, namespace="shop", uid="u-1")
    s = spec("GatewayAPI", POOLS, algorithm="Weighted")
    p = gateway.render(long_owner, s, context(long_owner, s))
    names = [o["metadata"]["name"] for o in objects(p, "Service")]
    assert all(len(n) <= 63 for n in names) and len(set(names)) == 2
    assert [r["name"] for r in one(p, "HTTPRoute")["spec"]["rules"][0]["backendRefs"]] == names


def _route(parents: list[dict[str, Any]] | None) -> dict[str, Any]:
    route: dict[str, Any] = {"kind": "HTTPRoute", "metadata": {"name": "checkout", "namespace": "shop"}}
    if parents is not None:
        route["status"] = {"parents": parents}
    return route


def _parent(name: str, status: str, reason: str = "Accepted", message: str = "") -> dict[str, Any]:
    return {"parentRef": {"name": name}, "controllerName": "example.com/gateway",
            "conditions": [{"type": "Accepted", "status": status, "reason": reason, "message": message}]}


@pytest.mark.parametrize(("parents", "ready", "message"), [
    (None, False, "HTTPRoute checkout is not accepted by any Gateway yet: no Gateway controller has reported on it "
                  "(is the Gateway there, and its controller running?)."),
    ([_parent("edge", "False", "NotAllowedByListeners", "no listener allows routes from shop")], False,
     "HTTPRoute checkout is not accepted: Gateway shop/edge: NotAllowedByListeners: no listener allows routes "
     "from shop"),
    ([_parent("edge", "False", "NoMatchingParent", "x"), _parent("public", "True")], True,
     "HTTPRoute checkout is accepted by Gateway shop/public."),
], ids=["no-controller", "refused", "one-of-two"])
def test_a_route_is_ready_once_a_gateway_accepts_it(parents: list[dict[str, Any]] | None, ready: bool,
                                                     message: str) -> None:
    spec = parse_spec(minimal_spec(balancing={"provider": "GatewayAPI", "gateway": {"parentRefs": [{"name": "edge"}]}}))
    assert gateway.readiness(spec, [_route(parents)]) == (ready, message)
    assert envoygateway.readiness(spec, [_route(parents)]) == (ready, message)
    assert nginx.readiness(spec, [_route(parents)]) == (ready, message)
