"""Provider `GatewayAPI`: an HTTPRoute any Gateway API implementation serves, and the route
builder the EnvoyGateway and NginxGatewayFabric providers share. Pure: no I/O.

Core Gateway API carries no balancing algorithm: the implementation picks the replica. What it
does carry is backendRef weights (Weighted: one backendRef per pool, to a Service of that pool)
and, in the experimental channel, cookie `sessionPersistence`. Client-address affinity is not in
the API. Fields checked against Gateway API v1.6.3
(https://github.com/kubernetes-sigs/gateway-api/blob/v1.6.3/apis/v1/httproute_types.go and
https://github.com/kubernetes-sigs/gateway-api/blob/v1.6.3/apis/v1/shared_types.go):
`parentRefs`, `hostnames`, `rules[].backendRefs[].weight` (default 1), `rules[].sessionPersistence`
(`<gateway:experimental>`; `sessionName`, `absoluteTimeout`, `type`, `cookieConfig.lifetimeType`,
Permanent needing absoluteTimeout) and `Duration` (GEP-2257, `^([0-9]{1,5}(h|m|s|ms)){1,4}$`).
`idleTimeout` was removed from sessionPersistence in v1.6.0 and is never written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from spillway.api.spec import Affinity, ParentRef, Pool, ScalableServiceSpec
from spillway.resources import workload
from spillway.resources.balancing.base import Balancer, Context, Plan, Requirement, Support, Verdict
from spillway.resources.meta import Owner, child_name, metadata

COMPONENT = "balancer"
GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE = Requirement(f"{GATEWAY_GROUP}/v1", "HTTPRoute", f"httproutes.{GATEWAY_GROUP}")
HTTPROUTE_EXPERIMENTAL = Requirement(f"{GATEWAY_GROUP}/v1", "HTTPRoute", f"httproutes.{GATEWAY_GROUP}",
                                     channel="experimental")
APPLYING_PROVIDERS = "Providers EnvoyGateway, Istio and NginxGatewayFabric apply it."
# GEP-2257: at most 5 digits per unit, so the longest duration is 99999h59m59s999ms.
_MAX_GATEWAY_MS = (99999 * 3600 + 59 * 60 + 59) * 1000 + 999

SUPPORT = Support(
    provider="GatewayAPI",
    algorithms={"Weighted": "backendRef weight per pool"},
    affinities={"Cookie": "HTTPRoute sessionPersistence (experimental channel)"},
    notes="Gateway API has no algorithm field: the implementation's default applies.",
)


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    balancing = spec.balancing
    by_pool = balancing.algorithm == "Weighted"
    cookie = balancing.affinity.type == "Cookie"
    problems: list[tuple[str, str]] = []
    if balancing.algorithm not in (None, "Weighted"):
        problems.append(("AlgorithmNotHonoured", (
            f"balancing.algorithm {algorithm_words(spec)} is not applied: Gateway API has no algorithm field, "
            f"so the Gateway's implementation picks the replica. {APPLYING_PROVIDERS}")))
    if balancing.affinity.type == "ClientIP":
        problems.append(("AffinityNotHonoured", (
            "affinity ClientIP is not applied: core Gateway API has no client-address affinity "
            f"(sessionPersistence is by cookie or header). {APPLYING_PROVIDERS}")))
    summary = f"{route_words(owner, spec, by_pool)}; the Gateway's implementation picks the replica"
    if by_pool:
        summary += " within each pool"
    if cookie:
        summary += cookie_words(balancing.affinity)
    objects = [*(pool_services(owner, spec, context) if by_pool else []), build_route(owner, spec, by_pool, cookie)]
    return Plan(
        balancer=Balancer(provider="GatewayAPI", algorithm="Weighted" if by_pool else "ImplementationDefault",
                          endpoint=route_endpoint(owner, spec)),
        verdict=verdict("GatewayAPIBalancing", summary, problems),
        objects=tuple(objects),
        requires=(HTTPROUTE_EXPERIMENTAL if cookie else HTTPROUTE,),
    )


def readiness(spec: ScalableServiceSpec, applied: list[dict[str, Any]]) -> tuple[bool, str]:
    """Ready once a Gateway has accepted the HTTPRoute (its `status.parents[].conditions`
    `Accepted=True`, written by the Gateway's controller); until then, why not."""
    route = next((o for o in applied if o.get("kind") == "HTTPRoute"), None)
    if route is None:
        return False, "The HTTPRoute is not applied."
    name = route["metadata"]["name"]
    parents = (route.get("status") or {}).get("parents") or []
    refused = []
    for parent in parents:
        ref = parent.get("parentRef") or {}
        where = f"{ref.get('namespace') or route['metadata'].get('namespace')}/{ref.get('name')}"
        accepted = next((c for c in parent.get("conditions") or [] if c.get("type") == "Accepted"), None)
        if accepted is not None and accepted.get("status") == "True":
            return True, f"HTTPRoute {name} is accepted by Gateway {where}."
        if accepted is not None:
            refused.append(f"Gateway {where}: {accepted.get('reason')}: {accepted.get('message')}")
    if refused:
        return False, f"HTTPRoute {name} is not accepted: " + "; ".join(refused)
    return False, (f"HTTPRoute {name} is not accepted by any Gateway yet: no Gateway controller has reported on "
                   "it (is the Gateway there, and its controller running?).")


def build_route(owner: Owner, spec: ScalableServiceSpec, by_pool: bool, cookie: bool) -> dict[str, Any]:
    """HTTPRoute `<owner>`: every request on the route's hostnames to the app, through one
    backendRef to Service `<owner>` or, `by_pool`, one per pool weighted by the pool's weight."""
    gateway = spec.balancing.gateway
    rule: dict[str, Any] = {"backendRefs": backend_refs(owner, spec, by_pool)}
    if cookie:
        rule["sessionPersistence"] = session_persistence(spec.balancing.affinity)
    route: dict[str, Any] = {"parentRefs": [parent_ref(p) for p in gateway.parent_refs]}
    if gateway.hostnames:
        route["hostnames"] = list(gateway.hostnames)
    route["rules"] = [rule]
    return {"apiVersion": HTTPROUTE.api_version, "kind": "HTTPRoute",
            "metadata": metadata(owner, owner.name, COMPONENT), "spec": route}


def parent_ref(ref: ParentRef) -> dict[str, Any]:
    parent = {"group": ref.group, "kind": ref.kind, "name": ref.name}
    if ref.namespace is not None:
        parent["namespace"] = ref.namespace
    if ref.section_name is not None:
        parent["sectionName"] = ref.section_name
    return parent


def backend_refs(owner: Owner, spec: ScalableServiceSpec, by_pool: bool) -> list[dict[str, Any]]:
    if not by_pool:
        return [{"kind": "Service", "name": owner.name, "port": spec.service_port}]
    return [{"kind": "Service", "name": pool_service_name(owner, pool), "port": spec.service_port,
             "weight": pool.weight} for pool in spec.pools]


def session_persistence(affinity: Affinity) -> dict[str, Any]:
    """A cookie the Gateway sets, lasting `affinity.ttl` (Permanent: Max-Age/Expires); a ttl of
    zero is a session cookie, as Istio reads a zero httpCookie ttl."""
    persistence: dict[str, Any] = {"sessionName": affinity.cookie_name, "type": "Cookie"}
    if affinity.ttl > timedelta(0):
        persistence["absoluteTimeout"] = gateway_duration(affinity.ttl)
        persistence["cookieConfig"] = {"lifetimeType": "Permanent"}
    else:
        persistence["cookieConfig"] = {"lifetimeType": "Session"}
    return persistence


def gateway_duration(value: timedelta) -> str:
    """A Gateway API Duration (GEP-2257): whole h, m, s and ms, at most 5 digits each, so
    `1h30m`, `1s500ms`; rounded to the millisecond and capped at 99999h59m59s999ms."""
    millis = min(max(0, round(value.total_seconds() * 1000)), _MAX_GATEWAY_MS)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")) if n]
    return "".join(parts) or "0s"


def pool_service_name(owner: Owner, pool: Pool) -> str:
    return child_name(owner, pool.name)


def pool_selector(owner: Owner, context: Context, pool: Pool) -> dict[str, str]:
    """The pool's pod labels as the reconcile found them; without them, the labels Spillway's
    own pool Deployments carry (pools never adopt a Deployment)."""
    return dict(context.pool_selectors.get(pool.name) or workload.pool_selector(owner, pool))


def pool_services(owner: Owner, spec: ScalableServiceSpec, context: Context) -> list[dict[str, Any]]:
    """ClusterIP Service `<owner>-<pool>` per pool: what a weighted backendRef points at."""
    return [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata(owner, pool_service_name(owner, pool), COMPONENT),
        "spec": {"type": "ClusterIP", "selector": pool_selector(owner, context, pool),
                 "ports": [{"name": "http", "protocol": "TCP", "port": spec.service_port, "targetPort": spec.port}]},
    } for pool in spec.pools]


def route_endpoint(owner: Owner, spec: ScalableServiceSpec) -> str:
    """Where clients reach the app: the route's hostnames, else the Gateways it attaches to."""
    gateway = spec.balancing.gateway
    if gateway.hostnames:
        return ", ".join(gateway.hostnames)
    return "via " + ", ".join(f"{p.namespace or owner.namespace}/{p.name}" for p in gateway.parent_refs)


def route_words(owner: Owner, spec: ScalableServiceSpec, by_pool: bool) -> str:
    parents = ", ".join(f"{p.kind} {p.namespace or owner.namespace}/{p.name}" for p in spec.balancing.gateway.parent_refs)
    if by_pool:
        weights = ", ".join(f"{p.name} {p.weight}" for p in spec.pools)
        return f"HTTPRoute {owner.name} on {parents} splits traffic across the pools by weight ({weights})"
    return f"HTTPRoute {owner.name} on {parents} sends traffic to Service {owner.name}"


def cookie_words(affinity: Affinity) -> str:
    lasting = f"for {gateway_duration(affinity.ttl)}" if affinity.ttl > timedelta(0) else "for the browser session"
    return f", and cookie {affinity.cookie_name} keeps a client on its replica {lasting}"


def algorithm_words(spec: ScalableServiceSpec) -> str:
    algorithm = spec.balancing.algorithm
    if algorithm != "ConsistentHash":
        return str(algorithm)
    key = spec.balancing.hash
    return "ConsistentHash on the client address" if key.source == "SourceIP" else (
        f"ConsistentHash on {key.source.lower()} {key.name}")


def hashes_client_address(spec: ScalableServiceSpec) -> bool:
    """ClientIP affinity and the algorithm agree: ConsistentHash on the client address."""
    return spec.balancing.algorithm == "ConsistentHash" and spec.balancing.hash.source == "SourceIP"


def unweighted_words(owner: Owner) -> str:
    """Why Weighted yields to affinity: a per-request split across pools would move a client."""
    return (f"; traffic goes to Service {owner.name} across all pools rather than split by pool weight (a split "
            "per request would move a client between pools), and as replicas are split by pool weight each pool's "
            "share still follows its replica count")


def verdict(ok_reason: str, summary: str, problems: list[tuple[str, str]]) -> Verdict:
    """Honoured with `ok_reason` when nothing was left out; else the first reason of
    AffinityNotHonoured and AlgorithmNotHonoured that applies, every problem in the message."""
    if not problems:
        return Verdict(True, ok_reason, f"{summary}.")
    reasons = {reason for reason, _ in problems}
    reason = "AffinityNotHonoured" if "AffinityNotHonoured" in reasons else "AlgorithmNotHonoured"
    return Verdict(False, reason, f"{summary}. " + " ".join(sentence for _, sentence in problems))
