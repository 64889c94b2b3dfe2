"""What every balancing provider returns: the objects to apply and what it cannot honour.

A provider is a pure function `render(owner, spec, context) -> Plan`. The reconcile applies
`plan.objects` whose APIs the cluster serves, reports `plan.verdict` as the `BalancerReady`
condition (with the provider's own readiness on top) and `plan.balancer` as `status.balancer`.
Nothing is silently dropped: what a provider cannot apply of the spec is named in the verdict,
with reason `AlgorithmNotHonoured` or `AffinityNotHonoured`, never a quiet fallback. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.meta import Owner

# Reasons a person must act on (posted as Warning events).
NOT_HONOURED = frozenset({"AlgorithmNotHonoured", "AffinityNotHonoured", "APINotInstalled"})


@dataclass(frozen=True)
class Requirement:
    """An API the rendered objects need from the cluster, and which CRD serves it."""

    api_version: str  # "gateway.networking.k8s.io/v1"
    kind: str  # "HTTPRoute"
    crd: str  # "httproutes.gateway.networking.k8s.io"
    # A field only a channel's CRD accepts ("experimental" for HTTPRoute sessionPersistence).
    channel: str | None = None
    # Optional: without the API the objects of that kind are left out and nothing is reported
    # (a PodMonitor where no Prometheus Operator runs: the scrape annotations serve instead).
    optional: bool = False


@dataclass(frozen=True)
class Balancer:
    """The balancer in effect, for `status.balancer`."""

    provider: str
    algorithm: str
    endpoint: str


@dataclass(frozen=True)
class Verdict:
    """`BalancerReady` as far as the rendering can tell: `honoured` False when part of the
    spec cannot be applied by this provider (the reason names which part)."""

    honoured: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Context:
    """What a provider needs beyond the spec, found by the reconcile.

    `selector`: the labels of every app replica (Spillway's own, or an adopted Deployment's).
    `pool_selectors`: each pool's labels, by pool name (empty without pools).
    `cookie_secret`: the name of the Secret holding generated balancer keys (HAProxy's
    dynamic-cookie-key), created once by the reconcile and never shown in status.
    """

    selector: dict[str, str]
    pool_selectors: dict[str, dict[str, str]] = field(default_factory=dict)
    cookie_secret: str | None = None


@dataclass(frozen=True)
class Plan:
    balancer: Balancer
    verdict: Verdict
    objects: tuple[dict[str, Any], ...]
    requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class Support:
    """One line of the README's support matrix: how a provider serves each algorithm and affinity.
    Values are short phrases; an empty string means not honoured."""

    provider: str
    algorithms: dict[str, str]
    affinities: dict[str, str]
    notes: str = ""


def default_algorithm(spec: ScalableServiceSpec) -> str:
    """The algorithm when `balancing.algorithm` is unset (the CRD's documented defaults)."""
    if spec.balancing.algorithm is not None:
        return spec.balancing.algorithm
    return {"Service": "Random", "HAProxy": "LeastConnection"}.get(spec.balancing.provider, "RoundRobin")


def service_host(owner: Owner, name: str | None = None) -> str:
    return f"{name or owner.name}.{owner.namespace}.svc.cluster.local"
