"""Provider `EnvoyGateway`: the shared HTTPRoute plus a BackendTrafficPolicy that sets Envoy's
load balancer for it. Pure: no I/O.

Checked against Envoy Gateway v1.9.1 (the newest v1.9 on the Go module proxy):
https://github.com/envoyproxy/gateway/blob/v1.9.1/api/v1alpha1/loadbalancer_types.go —
`loadBalancer.type` ConsistentHash | LeastRequest | Random | RoundRobin (CEL: `consistentHash`
exactly when ConsistentHash), `consistentHash.type` SourceIP | Headers | Cookie (`Header` with a
single `header` is deprecated in v1.9 for `headers: [{name}]`), `cookie.ttl` a Gateway API
Duration; `targetRefs` and the inlined `loadBalancer` from backendtrafficpolicy_types.go,
policy_helpers.go and shared_types.go.

Cookie affinity is the route's `sessionPersistence`, which Envoy Gateway implements with Envoy's
stateful-session filter (internal/gatewayapi/route.go, internal/xds/translator/session_persistence.go
at v1.9.1): the cookie names the replica itself, so a client stays put when Spillway scales, and
the algorithm still picks a new client's first replica. A ConsistentHash cookie (`cookie.ttl`)
would move a share of clients at every scale event and replace the algorithm. It needs the
experimental HTTPRoute CRD, which Envoy Gateway's Helm chart installs (charts/gateway-helm/charts/
crds/crds/gatewayapi-crds.yaml, experimental channel v1.6.1). ClientIP affinity is ConsistentHash
on SourceIP and takes the algorithm's place.
"""

from __future__ import annotations

from typing import Any

from spillway.api.spec import HashKey, ScalableServiceSpec
from spillway.resources.balancing import gateway
from spillway.resources.balancing.base import Balancer, Context, Plan, Requirement, Support, default_algorithm
from spillway.resources.meta import Owner, metadata

POLICY = Requirement("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy",
                     "backendtrafficpolicies.gateway.envoyproxy.io")
_TYPE = {"RoundRobin": "RoundRobin", "Random": "Random", "LeastConnection": "LeastRequest",
         "Weighted": "RoundRobin"}

SUPPORT = Support(
    provider="EnvoyGateway",
    algorithms={"RoundRobin": "RoundRobin", "Random": "Random", "LeastConnection": "LeastRequest",
                "Weighted": "backendRef weights, RoundRobin",
                "ConsistentHash": "ConsistentHash: SourceIP, Headers, Cookie"},
    affinities={"ClientIP": "ConsistentHash SourceIP, replaces the algorithm",
                "Cookie": "HTTPRoute sessionPersistence (experimental channel)"},
    notes="BackendTrafficPolicy on the HTTPRoute; ClientIP affinity has no ttl: it lasts while the replicas do.",
)


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    balancing = spec.balancing
    algorithm = default_algorithm(spec)
    problems: list[tuple[str, str]] = []
    if balancing.affinity.type == "ClientIP":
        load_balancer: dict[str, Any] = {"type": "ConsistentHash", "consistentHash": {"type": "SourceIP"}}
        in_effect = "ConsistentHash"
        picks = "Envoy hashes the client address onto a replica (ClientIP affinity)"
        if balancing.algorithm is not None and not gateway.hashes_client_address(spec):
            problems.append(("AlgorithmNotHonoured", (
                f"balancing.algorithm {gateway.algorithm_words(spec)} is not applied: ClientIP affinity needs Envoy's "
                f"consistent hash on the client address, and stickiness wins{_unweighted(owner, algorithm)}.")))
    else:
        load_balancer = load_balancer_for(algorithm, balancing.hash)
        in_effect = algorithm
        picks = f"Envoy picks the replica by {_words(load_balancer)}"
    by_pool = in_effect == "Weighted"
    cookie = balancing.affinity.type == "Cookie"
    summary = f"{gateway.route_words(owner, spec, by_pool)}; {picks}"
    if cookie:
        summary += gateway.cookie_words(balancing.affinity)
    objects = [
        *(gateway.pool_services(owner, spec, context) if by_pool else []),
        gateway.build_route(owner, spec, by_pool, cookie),
        build_policy(owner, load_balancer),
    ]
    return Plan(
        balancer=Balancer(provider="EnvoyGateway", algorithm=in_effect, endpoint=gateway.route_endpoint(owner, spec)),
        verdict=gateway.verdict("EnvoyGatewayBalancing", summary, problems),
        objects=tuple(objects),
        requires=(gateway.HTTPROUTE_EXPERIMENTAL if cookie else gateway.HTTPROUTE, POLICY),
    )


def load_balancer_for(algorithm: str, key: HashKey) -> dict[str, Any]:
    if algorithm != "ConsistentHash":
        return {"type": _TYPE[algorithm]}
    if key.source == "Header":
        hashed: dict[str, Any] = {"type": "Headers", "headers": [{"name": key.name}]}
    elif key.source == "Cookie":
        hashed = {"type": "Cookie", "cookie": {"name": key.name}}
    else:
        hashed = {"type": "SourceIP"}
    return {"type": "ConsistentHash", "consistentHash": hashed}


def build_policy(owner: Owner, load_balancer: dict[str, Any]) -> dict[str, Any]:
    """BackendTrafficPolicy `<owner>` on HTTPRoute `<owner>`: Envoy's load balancer for every
    backend of the route (all in one cluster when hashing or session persistence needs it)."""
    return {
        "apiVersion": POLICY.api_version, "kind": POLICY.kind,
        "metadata": metadata(owner, owner.name, gateway.COMPONENT),
        "spec": {"targetRefs": [{"group": gateway.GATEWAY_GROUP, "kind": "HTTPRoute", "name": owner.name}],
                 "loadBalancer": load_balancer},
    }


def _words(load_balancer: dict[str, Any]) -> str:
    if load_balancer["type"] != "ConsistentHash":
        return {"RoundRobin": "round robin", "Random": "random choice",
                "LeastRequest": "fewest active requests"}[load_balancer["type"]]
    hashed = load_balancer["consistentHash"]
    if hashed["type"] == "Headers":
        return f"consistent hash on header {hashed['headers'][0]['name']}"
    if hashed["type"] == "Cookie":
        return f"consistent hash on cookie {hashed['cookie']['name']}"
    return "consistent hash on the client address"


def _unweighted(owner: Owner, algorithm: str) -> str:
    if algorithm != "Weighted":
        return ""
    # Envoy Gateway builds Maglev without locality weighting unless weightedZones are set
    # (internal/xds/translator/cluster.go at v1.9.1), so backendRef weights would be ignored.
    return gateway.unweighted_words(owner)


def readiness(spec: ScalableServiceSpec, applied: list[dict[str, Any]]) -> tuple[bool, str]:
    """Ready once a Gateway has accepted the route (`gateway.readiness`)."""
    return gateway.readiness(spec, applied)
