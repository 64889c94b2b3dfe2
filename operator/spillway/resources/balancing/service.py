"""Provider `Service`: the plain Kubernetes Service, balanced by kube-proxy. Pure: no I/O.

kube-proxy picks a ready endpoint at random (iptables and nftables modes) and has no
per-Service algorithm; its only policy is `sessionAffinity: ClientIP` with a timeout of at most
86400 s (https://kubernetes.io/docs/reference/networking/virtual-ips/#session-affinity).
"""

from __future__ import annotations

from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import format_duration
from spillway.resources.balancing.base import Balancer, Context, Plan, Support, Verdict
from spillway.resources.meta import Owner
from spillway.resources.workload import build_service

SUPPORT = Support(
    provider="Service",
    algorithms={"Random": "kube-proxy (default)", "Weighted": "replicas split by pool weight"},
    affinities={"ClientIP": "sessionAffinity ClientIP, ttl ≤ 24h"},
    notes="kube-proxy has no per-Service algorithm; Cookie affinity is refused by the API server.",
)


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    balancer = Balancer(provider="Service", algorithm="Random",
                        endpoint=f"{owner.name}.{owner.namespace}.svc:{spec.service_port}")
    service = build_service(owner, spec, context.selector)
    return Plan(balancer=balancer, verdict=_verdict(owner, spec), objects=(service,))


def _verdict(owner: Owner, spec: ScalableServiceSpec) -> Verdict:
    spread = f"Service {owner.name} spreads traffic at random across the ready replicas (kube-proxy)"
    affinity = spec.balancing.affinity
    if affinity.type == "ClientIP":
        spread += f"; a client stays on one replica by its address for {format_duration(affinity.ttl)}"
    algorithm = spec.balancing.algorithm
    if algorithm in (None, "Random"):
        return Verdict(True, "ServiceBalancing", f"{spread}.")
    if algorithm == "Weighted":
        return Verdict(True, "ServiceBalancing", (
            f"{spread}; replicas are split across pools by weight, so each pool's share of traffic follows "
            "its weight."))
    return Verdict(False, "AlgorithmNotHonoured", (
        f"{spread}; balancing.algorithm {algorithm} is not applied: kube-proxy has no per-Service algorithm. "
        "Provider HAProxy applies it."))
