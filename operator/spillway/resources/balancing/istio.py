"""Provider `Istio`: a DestinationRule for Service `<owner>` that sets the mesh's load balancer,
and for Weighted a subset per pool with a VirtualService splitting traffic by weight. Pure: no I/O.

Checked against istio.io/api v1.30.8 (https://github.com/istio/api/blob/v1.30.8/networking/
v1alpha3/destination_rule.proto, virtual_service.proto and kubernetes/customresourcedefinitions.gen.yaml,
`networking.istio.io/v1` served and stored): `trafficPolicy.loadBalancer.simple` ROUND_ROBIN | RANDOM |
LEAST_REQUEST (LEAST_CONN is deprecated for LEAST_REQUEST and never written), `consistentHash`
with one of `httpHeaderName`, `httpCookie {name, path, ttl}` (a protobuf Duration: `3600s`; a
zero ttl makes a session cookie) or `useSourceIp`; `subsets[] {name, labels}`; VirtualService
`http[].route[] {destination {host, subset, port.number}, weight}` with weights relative to
their sum. Affinity takes the algorithm's place (one `lb_policy`), and with it the weighted
split: VirtualService weights are drawn per request, which would move a client between pools.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing import gateway
from spillway.resources.balancing.base import (
    Balancer,
    Context,
    Plan,
    Requirement,
    Support,
    default_algorithm,
    service_host,
)
from spillway.resources.meta import Owner, metadata

DESTINATION_RULE = Requirement("networking.istio.io/v1", "DestinationRule", "destinationrules.networking.istio.io")
VIRTUAL_SERVICE = Requirement("networking.istio.io/v1", "VirtualService", "virtualservices.networking.istio.io")
_SIMPLE = {"RoundRobin": "ROUND_ROBIN", "Random": "RANDOM", "LeastConnection": "LEAST_REQUEST",
           "Weighted": "ROUND_ROBIN"}
_WORDS = {"ROUND_ROBIN": "round robin", "RANDOM": "random choice", "LEAST_REQUEST": "fewest active requests"}

SUPPORT = Support(
    provider="Istio",
    algorithms={"RoundRobin": "ROUND_ROBIN", "Random": "RANDOM", "LeastConnection": "LEAST_REQUEST",
                "Weighted": "subset per pool, VirtualService weights",
                "ConsistentHash": "consistentHash: useSourceIp, httpHeaderName, httpCookie"},
    affinities={"ClientIP": "consistentHash useSourceIp, replaces the algorithm",
                "Cookie": "consistentHash httpCookie with ttl, replaces the algorithm"},
    notes="Applies to mesh clients (sidecars or a waypoint); ClientIP affinity has no ttl.",
)


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    balancing = spec.balancing
    affinity = balancing.affinity
    algorithm = default_algorithm(spec)
    host = service_host(owner)
    problems: list[tuple[str, str]] = []
    if affinity.type != "None":
        sticky = ({"useSourceIp": True} if affinity.type == "ClientIP" else
                  {"httpCookie": {"name": affinity.cookie_name, "path": "/", "ttl": proto_duration(affinity.ttl)}})
        load_balancer: dict[str, Any] = {"consistentHash": sticky}
        in_effect = "ConsistentHash"
        if balancing.algorithm is not None and not _agrees(spec):
            problems.append(("AlgorithmNotHonoured", (
                f"balancing.algorithm {gateway.algorithm_words(spec)} is not applied: {affinity.type} affinity is "
                "Istio's consistent hash, which takes the algorithm's place"
                f"{gateway.unweighted_words(owner) if algorithm == 'Weighted' else ''}.")))
    else:
        load_balancer = load_balancer_for(spec, algorithm)
        in_effect = algorithm
    by_pool = in_effect == "Weighted"
    rule: dict[str, Any] = {"host": host, "trafficPolicy": {"loadBalancer": load_balancer}}
    if by_pool:
        rule["subsets"] = [{"name": pool.name, "labels": gateway.pool_selector(owner, context, pool)}
                           for pool in spec.pools]
    objects = [{"apiVersion": DESTINATION_RULE.api_version, "kind": "DestinationRule",
                "metadata": metadata(owner, owner.name, gateway.COMPONENT), "spec": rule}]
    if by_pool:
        objects.append(build_virtual_service(owner, spec))
    return Plan(
        balancer=Balancer(provider="Istio", algorithm=in_effect, endpoint=f"{host}:{spec.service_port}"),
        verdict=gateway.verdict("IstioBalancing", _summary(owner, spec, load_balancer, by_pool), problems),
        objects=tuple(objects),
        requires=(DESTINATION_RULE, VIRTUAL_SERVICE) if by_pool else (DESTINATION_RULE,),
    )


def load_balancer_for(spec: ScalableServiceSpec, algorithm: str) -> dict[str, Any]:
    if algorithm != "ConsistentHash":
        return {"simple": _SIMPLE[algorithm]}
    key = spec.balancing.hash
    hashed: dict[str, Any] = ({"useSourceIp": True} if key.source == "SourceIP" else
                              {"httpHeaderName": key.name} if key.source == "Header" else
                              {"httpCookie": {"name": key.name}})
    return {"consistentHash": hashed}


def build_virtual_service(owner: Owner, spec: ScalableServiceSpec) -> dict[str, Any]:
    """VirtualService `<owner>` for the Service's host: each pool's subset gets its weight."""
    host = service_host(owner)
    routes = [{"destination": {"host": host, "subset": pool.name, "port": {"number": spec.service_port}},
               "weight": pool.weight} for pool in spec.pools]
    return {"apiVersion": VIRTUAL_SERVICE.api_version, "kind": "VirtualService",
            "metadata": metadata(owner, owner.name, gateway.COMPONENT),
            "spec": {"hosts": [host], "http": [{"route": routes}]}}


def proto_duration(value: timedelta) -> str:
    """A protobuf JSON Duration: seconds with an `s` (`3600s`, `1.5s`), as Istio parses it."""
    micros = max(0, round(value.total_seconds() * 1_000_000))
    return f"{(Decimal(micros) / 1_000_000).normalize():f}s"


def _agrees(spec: ScalableServiceSpec) -> bool:
    """The algorithm asked for is the hash the affinity needs anyway."""
    balancing = spec.balancing
    if balancing.affinity.type == "ClientIP":
        return gateway.hashes_client_address(spec)
    return (balancing.algorithm == "ConsistentHash" and balancing.hash.source == "Cookie"
            and balancing.hash.name == balancing.affinity.cookie_name)


def _summary(owner: Owner, spec: ScalableServiceSpec, load_balancer: dict[str, Any], by_pool: bool) -> str:
    rule = f"DestinationRule {owner.name} has the mesh reach Service {owner.name}"
    if by_pool:
        weights = ", ".join(f"{p.name} {p.weight}" for p in spec.pools)
        rule += f" split across the pools by weight ({weights}, VirtualService {owner.name})"
    if "simple" in load_balancer:
        return f"{rule}, picking the replica by {_WORDS[load_balancer['simple']]}"
    hashed = load_balancer["consistentHash"]
    if "useSourceIp" in hashed:
        return f"{rule}, hashing the client address onto a replica"
    if "httpHeaderName" in hashed:
        return f"{rule}, hashing header {hashed['httpHeaderName']} onto a replica"
    if "ttl" not in hashed["httpCookie"]:
        return f"{rule}, hashing cookie {hashed['httpCookie']['name']} onto a replica"
    return rule + gateway.cookie_words(spec.balancing.affinity)
