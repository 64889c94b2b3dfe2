from __future__ import annotations

from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.resources.capabilities import Verdict, balancer_in_effect, verdicts
from spillway.resources.meta import Owner
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="u")
POOLS = [{"name": "large", "weight": 3}, {"name": "small", "weight": 1}]
GATEWAY = {"parentRefs": [{"name": "edge"}]}


def _by_type(**overrides: Any) -> dict[str, Verdict]:
    return {v.type: v for v in verdicts(OWNER, parse_spec(minimal_spec(**overrides)))}


@pytest.mark.parametrize(("balancing", "status", "reason", "message"), [
    ({}, True, "ServiceBalancing",
     "Service checkout spreads traffic at random across the ready replicas (kube-proxy)."),
    ({"algorithm": "Random", "affinity": {"type": "ClientIP", "ttl": "30m"}}, True, "ServiceBalancing",
     "Service checkout spreads traffic at random across the ready replicas (kube-proxy); a client stays on one "
     "replica by its address for 30m."),
    ({"algorithm": "LeastConnection"}, True, "AlgorithmNotHonoured",
     "Service checkout spreads traffic at random across the ready replicas (kube-proxy); balancing.algorithm "
     "LeastConnection is not applied: kube-proxy has no per-Service algorithm."),
    ({"provider": "HAProxy", "algorithm": "LeastConnection", "affinity": {"type": "Cookie"}}, False,
     "ProviderNotAvailable",
     "balancing.provider HAProxy is not built by this version of Spillway; traffic reaches the replicas through "
     "Service checkout, spread at random by kube-proxy, without algorithm LeastConnection or Cookie affinity."),
    ({"provider": "Istio"}, False, "ProviderNotAvailable",
     "balancing.provider Istio is not built by this version of Spillway; traffic reaches the replicas through "
     "Service checkout, spread at random by kube-proxy, without a balancer of its own."),
    ({"provider": "GatewayAPI", "gateway": GATEWAY}, False, "ProviderNotAvailable", None),
], ids=["default", "client-ip", "service-least-connection", "haproxy", "istio", "gateway"])
def test_balancer_condition_says_what_is_honoured(balancing: dict[str, Any], status: bool, reason: str,
                                                  message: str | None) -> None:
    verdict = _by_type(balancing=balancing)["BalancerReady"]
    assert (verdict.status, verdict.reason) == (status, reason)
    if message is not None:
        assert verdict.message == message


def test_weighted_pools_behind_a_service_follow_their_weights() -> None:
    verdict = _by_type(balancing={"algorithm": "Weighted"}, pools=POOLS)["BalancerReady"]
    assert (verdict.status, verdict.reason) == (True, "ServiceBalancing")
    assert "share of traffic follows its weight" in verdict.message


@pytest.mark.parametrize(("store", "message"), [
    ({"type": "Redis"}, "sessionStore.type Redis is not provided by this version of Spillway; the app receives no "
                        "SESSION_STORE_URL and keeps sessions on each replica."),
    ({"type": "External", "external": {"urlSecretRef": {"name": "s", "key": "url"}}, "env": "SESSIONS"},
     "sessionStore.type External is not provided by this version of Spillway; the app receives no SESSIONS and "
     "keeps sessions on each replica."),
])
def test_asked_for_session_store_is_reported_not_available(store: dict[str, Any], message: str) -> None:
    verdict = _by_type(sessionStore=store)["SessionStoreReady"]
    assert (verdict.status, verdict.reason, verdict.message) == (False, "SessionStoreNotAvailable", message)


def test_parts_not_asked_for_have_no_condition() -> None:
    found = _by_type()
    assert found["SessionStoreReady"].status is None
    assert found["HeadroomReady"].status is None


def test_headroom_asked_for_is_reported_not_available() -> None:
    verdict = _by_type(headroom={"replicas": 2})["HeadroomReady"]
    assert (verdict.status, verdict.reason) == (False, "HeadroomNotAvailable")
    assert verdict.message.startswith("headroom.replicas 2: placeholder pods are not created")


def test_balancer_in_effect_is_the_service() -> None:
    balancer = balancer_in_effect(OWNER, parse_spec(minimal_spec(servicePort=8080, balancing={"provider": "Istio"})))
    assert (balancer.provider, balancer.algorithm, balancer.endpoint) == ("Service", "Random",
                                                                          "checkout.shop.svc:8080")
