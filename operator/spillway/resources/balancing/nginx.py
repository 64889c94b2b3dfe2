"""Provider `NginxGatewayFabric`: the shared HTTPRoute plus an UpstreamSettingsPolicy that sets
NGINX's load-balancing method for the route's Services. Pure: no I/O.

Checked against NGINX Gateway Fabric's `apis/v1alpha1/upstreamsettingspolicy_types.go` (the
newest stored revision, after 2.4.0: https://github.com/nginx/nginx-gateway-fabric/blob/main/apis/
v1alpha1/upstreamsettingspolicy_types.go; the v2 module is not on the Go module proxy):
`targetRefs` of kind Service in the core group only (CEL), `loadBalancingMethod` round_robin |
least_conn | random | hash consistent | ip_hash | ... (all of these NGINX OSS), `hashMethodKey` an
NGINX variable matching `^\\$[a-z_]+$`. Weighted backendRefs become `split_clients $request_id`,
a draw per request, so affinity cannot span pools. Cookie `sessionPersistence` is NGINX Plus
only (https://docs.nginx.com/nginx-gateway-fabric/traffic-management/session-persistence/).
ClientIP affinity is `hash $remote_addr consistent` rather than `ip_hash`: ip_hash keys IPv4
clients by their /24 and maps by modulo, so every scale event would move most clients.
"""

from __future__ import annotations

import re
from typing import Any

from spillway.api.spec import HashKey, ScalableServiceSpec
from spillway.resources.balancing import gateway
from spillway.resources.balancing.base import Balancer, Context, Plan, Requirement, Support, default_algorithm
from spillway.resources.meta import Owner, metadata

POLICY = Requirement("gateway.nginx.org/v1alpha1", "UpstreamSettingsPolicy",
                     "upstreamsettingspolicies.gateway.nginx.org")
CLIENT_ADDRESS = "$remote_addr"
_KEY = re.compile(r"^\$[a-z_]+$")  # HashMethodKey's pattern
_METHOD = {"RoundRobin": "round_robin", "Random": "random", "LeastConnection": "least_conn",
           "Weighted": "round_robin"}
_WORDS = {"round_robin": "round robin", "random": "random choice", "least_conn": "fewest active connections"}

SUPPORT = Support(
    provider="NginxGatewayFabric",
    algorithms={"RoundRobin": "round_robin", "Random": "random", "LeastConnection": "least_conn",
                "Weighted": "backendRef weights (split_clients), round_robin",
                "ConsistentHash": "hash consistent: $remote_addr, $http_<name>, $cookie_<name>"},
    affinities={"ClientIP": "hash $remote_addr consistent, replaces the algorithm"},
    notes="UpstreamSettingsPolicy on the route's Services; Cookie affinity needs NGINX Plus.",
)


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    balancing = spec.balancing
    algorithm = default_algorithm(spec)
    problems: list[tuple[str, str]] = []
    key: str | None
    if balancing.affinity.type == "ClientIP":
        method, key, in_effect = "hash consistent", CLIENT_ADDRESS, "ConsistentHash"
        if balancing.algorithm is not None and not gateway.hashes_client_address(spec):
            problems.append(("AlgorithmNotHonoured", (
                f"balancing.algorithm {gateway.algorithm_words(spec)} is not applied: ClientIP affinity needs NGINX's "
                "consistent hash on the client address, and stickiness wins"
                f"{gateway.unweighted_words(owner) if algorithm == 'Weighted' else ''}.")))
    elif algorithm == "ConsistentHash":
        method, key, in_effect = "hash consistent", hash_key(balancing.hash), "ConsistentHash"
        if key is None:
            method, in_effect = "round_robin", "RoundRobin"
            problems.append(("AlgorithmNotHonoured", (
                f"balancing.algorithm {gateway.algorithm_words(spec)} is not applied: NGINX names a "
                f"{balancing.hash.source.lower()} by a variable of lowercase letters and underscores only, which "
                f"{balancing.hash.name} cannot be; NGINX balances by round robin instead. "
                "Providers EnvoyGateway, Istio and HAProxy hash any name.")))
    else:
        method, key, in_effect = _METHOD[algorithm], None, algorithm
    if balancing.affinity.type == "Cookie":
        problems.append(("AffinityNotHonoured", (
            "affinity Cookie is not applied: NginxGatewayFabric sets affinity cookies only with NGINX Plus "
            "(HTTPRoute sessionPersistence as sticky cookie); with NGINX OSS use ClientIP affinity, or "
            "provider EnvoyGateway, Istio or HAProxy for cookies.")))
    by_pool = in_effect == "Weighted"
    summary = f"{gateway.route_words(owner, spec, by_pool)}; NGINX picks the replica by {_words(method, key)}"
    objects = [
        *(gateway.pool_services(owner, spec, context) if by_pool else []),
        gateway.build_route(owner, spec, by_pool, cookie=False),
        build_policy(owner, spec, by_pool, method, key),
    ]
    return Plan(
        balancer=Balancer(provider="NginxGatewayFabric", algorithm=in_effect,
                          endpoint=gateway.route_endpoint(owner, spec)),
        verdict=gateway.verdict("NginxGatewayFabricBalancing", summary, problems),
        objects=tuple(objects),
        requires=(gateway.HTTPROUTE, POLICY),
    )


def hash_key(key: HashKey) -> str | None:
    """The NGINX variable holding what ConsistentHash hashes, or None when no variable the
    policy accepts can name it. Header variables are the lowercased name with `-` as `_`;
    NGINX matches cookie names regardless of case."""
    if key.source == "SourceIP":
        return CLIENT_ADDRESS
    name = (key.name or "").lower()
    variable = f"$http_{name.replace('-', '_')}" if key.source == "Header" else f"$cookie_{name}"
    return variable if _KEY.match(variable) else None


def build_policy(owner: Owner, spec: ScalableServiceSpec, by_pool: bool, method: str,
                 key: str | None) -> dict[str, Any]:
    """UpstreamSettingsPolicy `<owner>` on Service `<owner>` and, by pool, each pool's Service."""
    names = [owner.name, *(gateway.pool_service_name(owner, p) for p in spec.pools)] if by_pool else [owner.name]
    policy: dict[str, Any] = {"targetRefs": [{"group": "", "kind": "Service", "name": n} for n in names],
                              "loadBalancingMethod": method}
    if key is not None:
        policy["hashMethodKey"] = key
    return {"apiVersion": POLICY.api_version, "kind": POLICY.kind,
            "metadata": metadata(owner, owner.name, gateway.COMPONENT), "spec": policy}


def _words(method: str, key: str | None) -> str:
    if key is None:
        return _WORDS[method]
    return "consistent hash on the client address" if key == CLIENT_ADDRESS else f"consistent hash on {key}"


def readiness(spec: ScalableServiceSpec, applied: list[dict[str, Any]]) -> tuple[bool, str]:
    """Ready once a Gateway has accepted the route (`gateway.readiness`)."""
    return gateway.readiness(spec, applied)
