"""What Spillway builds for the balancing, session-store and headroom parts of a spec, said as
conditions a person reads, and the balancer actually in effect.

The schema already holds capabilities that later versions build (balancer providers beyond the
plain Service, the provisioned or external session store, headroom pods). A resource asking for
one is accepted, and is never silently half-served: each part gets a condition that says what
is honoured, what is not, and where traffic goes instead. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import format_duration
from spillway.resources.meta import Owner

# Reasons a person must act on (posted as Warning events).
NOT_HONOURED = {"ProviderNotAvailable", "AlgorithmNotHonoured", "SessionStoreNotAvailable", "HeadroomNotAvailable"}


@dataclass(frozen=True)
class Verdict:
    """One condition: `status` None means the condition does not apply and is removed."""

    type: str
    status: bool | None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Balancer:
    """The balancer in effect, for `status.balancer`."""

    provider: str
    algorithm: str
    endpoint: str


def balancer_in_effect(owner: Owner, spec: ScalableServiceSpec) -> Balancer:
    # kube-proxy picks a ready endpoint at random (iptables and nftables modes), per Service.
    return Balancer(provider="Service", algorithm="Random",
                    endpoint=f"{owner.name}.{owner.namespace}.svc:{spec.service_port}")


def verdicts(owner: Owner, spec: ScalableServiceSpec) -> list[Verdict]:
    return [_balancer(owner, spec), _session_store(spec), _headroom(spec)]


def _balancer(owner: Owner, spec: ScalableServiceSpec) -> Verdict:
    balancing = spec.balancing
    service = f"Service {owner.name}"
    if balancing.provider != "Service":
        return Verdict("BalancerReady", False, "ProviderNotAvailable", (
            f"balancing.provider {balancing.provider} is not built by this version of Spillway; traffic reaches "
            f"the replicas through {service}, spread at random by kube-proxy, without "
            f"{_policy_words(spec)}."))
    spread = f"{service} spreads traffic at random across the ready replicas (kube-proxy)"
    if balancing.affinity.type == "ClientIP":
        spread += f"; a client stays on one replica by its address for {format_duration(balancing.affinity.ttl)}"
    algorithm = balancing.algorithm
    if algorithm in (None, "Random"):
        return Verdict("BalancerReady", True, "ServiceBalancing", f"{spread}.")
    if algorithm == "Weighted":
        return Verdict("BalancerReady", True, "ServiceBalancing", (
            f"{spread}; replicas are split across pools by weight, so each pool's share of traffic follows "
            "its weight."))
    return Verdict("BalancerReady", True, "AlgorithmNotHonoured", (
        f"{spread}; balancing.algorithm {algorithm} is not applied: kube-proxy has no per-Service algorithm."))


def _policy_words(spec: ScalableServiceSpec) -> str:
    asked = [f"algorithm {spec.balancing.algorithm}"] if spec.balancing.algorithm else []
    if spec.balancing.affinity.type != "None":
        asked.append(f"{spec.balancing.affinity.type} affinity")
    return " or ".join(asked) if asked else "a balancer of its own"


def _session_store(spec: ScalableServiceSpec) -> Verdict:
    store = spec.session_store
    if store.type == "None":
        return Verdict("SessionStoreReady", None)
    return Verdict("SessionStoreReady", False, "SessionStoreNotAvailable", (
        f"sessionStore.type {store.type} is not provided by this version of Spillway; the app receives no "
        f"{store.env} and keeps sessions on each replica."))


def _headroom(spec: ScalableServiceSpec) -> Verdict:
    if spec.headroom.replicas == 0:
        return Verdict("HeadroomReady", None)
    return Verdict("HeadroomReady", False, "HeadroomNotAvailable", (
        f"headroom.replicas {spec.headroom.replicas}: placeholder pods are not created by this version of "
        "Spillway; scale-out waits for room as usual."))
