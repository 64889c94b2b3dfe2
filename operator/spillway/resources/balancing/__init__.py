"""Balancing providers: one module per `spec.balancing.provider`, each a pure `render` from the
spec to the objects to apply and what it cannot honour (see `base`)."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing import envoygateway, gateway, haproxy, istio, matrix, nginx, service
from spillway.resources.balancing.base import Context, Plan, Requirement
from spillway.resources.meta import Owner
from spillway.resources.workload import build_service

PROVIDERS: dict[str, ModuleType] = {"Service": service, "HAProxy": haproxy, "GatewayAPI": gateway,
                                    "EnvoyGateway": envoygateway, "Istio": istio, "NginxGatewayFabric": nginx}


# Providers whose routes and policies point at the app's own Service `<name>`, which they take
# as the Service provider renders it (without kube-proxy affinity: the provider decides).
_BEHIND_THE_APP_SERVICE = ("GatewayAPI", "EnvoyGateway", "Istio", "NginxGatewayFabric")


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    plan: Plan = PROVIDERS[spec.balancing.provider].render(owner, spec, context)
    if spec.balancing.provider in _BEHIND_THE_APP_SERVICE:
        plan = replace(plan, objects=(build_service(owner, spec, context.selector), *plan.objects))
    return plan


def readiness(spec: ScalableServiceSpec, applied: list[dict[str, Any]]) -> tuple[bool, str]:
    """The provider's own readiness from its applied objects as the API server returned them."""
    check = getattr(PROVIDERS[spec.balancing.provider], "readiness", None)
    return (True, "") if check is None else check(spec, applied)


def support_matrix() -> str:
    """The README's support matrix, from each provider's own `SUPPORT`."""
    return matrix.markdown([module.SUPPORT for module in PROVIDERS.values()])


def every_requirement() -> tuple[Requirement, ...]:
    """Every API some provider may render: what the reconcile lists to remove a provider's
    objects after the spec moves to another."""
    return (gateway.HTTPROUTE, envoygateway.POLICY, istio.DESTINATION_RULE, istio.VIRTUAL_SERVICE, nginx.POLICY,
            *haproxy.REQUIRES)


__all__ = ["PROVIDERS", "Context", "Plan", "render"]
