"""The balancing providers' APIs as their releases ship them (tests/cluster/crds.sh): every set
installs on a real API server, and the versions and fields Spillway's renderers write are served,
read back from the API server rather than from the files. Then what the renderers write, for every
provider and a matrix of specs, through a server-side dry run (OpenAPI, CEL, no field pruned), and
the operator itself: the objects each provider creates, a provider switch, garbage collection,
and APINotInstalled for an API or Gateway API channel the cluster lacks.

On a control plane of this module's own, without the real node: CRDs are cluster-wide, and the
session's cluster must not gain the providers' APIs (the reconcile reports a provider whose API
is missing as APINotInstalled). conftest orders these tests before anything starts the session's
cluster, so the two never run at once. No provider's controller runs: nothing acts on the objects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spillway.api import ScalableServiceSpec, SpecError, parse_spec
from spillway.resources import balancing
from spillway.resources.balancing import PROVIDERS
from spillway.resources.balancing.base import Context, Plan
from spillway.resources.compare import covers, fingerprinted
from spillway.resources.meta import Owner
from spillway.resources.workload import app_selector, pool_selector
from tests.cluster.crds import SETS, install_crds
from tests.cluster.localcluster import LocalCluster
from tests.integration.components import wait_until
from tests.integration.harness import CRD, Kubectl, condition, running_operator, scalable_service
from tests.unit.conftest import minimal_spec

pytestmark = [pytest.mark.integration, pytest.mark.own_control_plane]


@pytest.fixture(scope="module")
def control_plane() -> Iterator[LocalCluster]:
    if os.environ.get("SPILLWAY_KUBECONFIG"):
        pytest.skip("runs a control plane of its own, not the given cluster")
    cluster = LocalCluster(workdir=Path(tempfile.mkdtemp(prefix="spillway-crds-")), with_real_node=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def every_set(control_plane: LocalCluster) -> list[str]:
    return install_crds(control_plane.kubectl, list(SETS))


def crd(cluster: LocalCluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cluster.kubectl("get", "crd", name, "-o", "json").stdout)
    return found


def served_versions(definition: dict[str, Any]) -> set[str]:
    return {v["name"] for v in definition["spec"]["versions"] if v["served"]}


def schema_field(definition: dict[str, Any], version: str, path: str) -> dict[str, Any] | None:
    """The schema of `path` ("spec.rules[].sessionPersistence") in `version`, or None."""
    node: dict[str, Any] = next(v for v in definition["spec"]["versions"]
                                if v["name"] == version)["schema"]["openAPIV3Schema"]
    for part in path.split("."):
        node = node.get("properties", {}).get(part.removesuffix("[]"))
        if node is None:
            return None
        if part.endswith("[]"):
            node = node["items"]
    return node


def assert_discoverable(cluster: LocalCluster, group_version: str, plural: str) -> None:
    """The API server lists `plural` under /apis/<group_version>: the version is really served."""
    def listed() -> bool:
        result = cluster.kubectl("get", "--raw", f"/apis/{group_version}", check=False, timeout=10)
        return result.returncode == 0 and plural in {r["name"] for r in json.loads(result.stdout)["resources"]}
    wait_until(listed, 30, f"{plural} in the discovery of {group_version}")


def test_every_set_installs_and_its_crds_are_established(control_plane: LocalCluster, every_set: list[str]) -> None:
    assert {"httproutes.gateway.networking.k8s.io", "backendtrafficpolicies.gateway.envoyproxy.io",
            "destinationrules.networking.istio.io", "virtualservices.networking.istio.io",
            "podmonitors.monitoring.coreos.com"} <= set(every_set)
    for name in every_set:
        conditions = {c["type"]: c["status"] for c in crd(control_plane, name)["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)


def test_only_the_experimental_gateway_channel_has_httproute_session_persistence(
        control_plane: LocalCluster, every_set: list[str]) -> None:
    route = "httproutes.gateway.networking.k8s.io"
    install_crds(control_plane.kubectl, ["gateway-standard"])
    standard = crd(control_plane, route)
    assert standard["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
    assert "v1" in served_versions(standard)
    assert schema_field(standard, "v1", "spec.rules[].backendRefs[].weight") is not None
    assert schema_field(standard, "v1", "spec.rules[].sessionPersistence") is None

    install_crds(control_plane.kubectl, ["gateway-experimental"])
    experimental = crd(control_plane, route)
    assert experimental["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "experimental"
    assert "v1" in served_versions(experimental)
    persistence = schema_field(experimental, "v1", "spec.rules[].sessionPersistence")
    assert persistence is not None and {"type", "sessionName"} <= set(persistence["properties"])
    assert_discoverable(control_plane, "gateway.networking.k8s.io/v1", "httproutes")


def test_envoy_backend_traffic_policy_serves_v1alpha1_with_load_balancer_types(
        control_plane: LocalCluster, every_set: list[str]) -> None:
    policy = crd(control_plane, "backendtrafficpolicies.gateway.envoyproxy.io")
    assert "v1alpha1" in served_versions(policy)
    balancer = schema_field(policy, "v1alpha1", "spec.loadBalancer")
    assert balancer is not None and "consistentHash" in balancer["properties"]
    assert {"ConsistentHash", "LeastRequest", "RoundRobin", "Random"} <= set(balancer["properties"]["type"]["enum"])
    assert_discoverable(control_plane, "gateway.envoyproxy.io/v1alpha1", "backendtrafficpolicies")


def test_istio_destination_rule_and_virtual_service_serve_networking_v1(
        control_plane: LocalCluster, every_set: list[str]) -> None:
    rule = crd(control_plane, "destinationrules.networking.istio.io")
    assert "v1" in served_versions(rule)
    balancer = schema_field(rule, "v1", "spec.trafficPolicy.loadBalancer")
    assert balancer is not None and "consistentHash" in balancer["properties"]
    assert {"LEAST_REQUEST", "ROUND_ROBIN", "RANDOM"} <= set(balancer["properties"]["simple"]["enum"])
    assert "v1" in served_versions(crd(control_plane, "virtualservices.networking.istio.io"))
    assert_discoverable(control_plane, "networking.istio.io/v1", "destinationrules")
    assert_discoverable(control_plane, "networking.istio.io/v1", "virtualservices")


def test_podmonitor_serves_monitoring_v1_with_pod_metrics_endpoints(
        control_plane: LocalCluster, every_set: list[str]) -> None:
    monitor = crd(control_plane, "podmonitors.monitoring.coreos.com")
    assert "v1" in served_versions(monitor)
    endpoints = schema_field(monitor, "v1", "spec.podMetricsEndpoints[]")
    assert endpoints is not None and {"port", "path", "interval"} <= set(endpoints["properties"])
    assert_discoverable(control_plane, "monitoring.coreos.com/v1", "podmonitors")


# --- What Spillway renders, as the providers' API servers take it ----------------------------

PARENT_REFS = [{"name": "public"}, {"name": "internal", "namespace": "infra", "sectionName": "https"}]
HOSTNAMES = ["shop.example.com", "*.shop.example.com"]
POOLS = [{"name": "large", "weight": 3, "nodeSelector": {"node-size": "large"}}, {"name": "small", "weight": 1}]
ALGORITHMS: dict[str, dict[str, Any]] = {
    "default": {},
    "round-robin": {"algorithm": "RoundRobin"},
    "random": {"algorithm": "Random"},
    "least-connection": {"algorithm": "LeastConnection"},
    "weighted": {"algorithm": "Weighted"},
    "hash-source-ip": {"algorithm": "ConsistentHash", "hash": {"source": "SourceIP"}},
    "hash-header": {"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User-Id"}},
    "hash-cookie": {"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "SHOP"}},
}
AFFINITIES: dict[str, dict[str, Any]] = {
    "no-affinity": {},
    "client-ip": {"type": "ClientIP", "ttl": "30m"},
    "cookie": {"type": "Cookie", "cookieName": "SHOP", "ttl": "1h30m"},
    "session-cookie": {"type": "Cookie", "ttl": "0s"},
}
# Pools with one algorithm that splits by them and one that does not (HAProxy's per-pool backends).
POOLED = ("weighted", "least-connection")
# The one provider API crds.sh cannot fetch (see there): its objects are left out of the dry runs.
NOT_INSTALLED = {"UpstreamSettingsPolicy"}


def case_spec(provider: str, algorithm: str, affinity: str) -> ScalableServiceSpec:
    """The spec of one case: parent refs with namespace and sectionName everywhere, hostnames
    except with the default algorithm (a route on its Gateways only)."""
    gateway = {"parentRefs": PARENT_REFS, **({"hostnames": HOSTNAMES} if algorithm != "default" else {})}
    balancing = {"provider": provider, **ALGORITHMS[algorithm], "affinity": AFFINITIES[affinity], "gateway": gateway}
    return parse_spec(minimal_spec(balancing=balancing, **({"pools": POOLS} if algorithm in POOLED else {})))


def valid(provider: str, algorithm: str, affinity: str) -> bool:
    try:
        case_spec(provider, algorithm, affinity)
    except SpecError:  # Cookie affinity with the Service provider
        return False
    return True


def needs_experimental(plan: Plan) -> bool:
    return any(r.channel == "experimental" for r in plan.requires)


# The same owner in every case, so that cases rendering the same objects share one dry run.
OWNER_UID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://spillway.io/tests/provider-crds"))


def render_case(namespace: str, provider: str, algorithm: str, affinity: str) -> Plan:
    spec = case_spec(provider, algorithm, affinity)
    owner = Owner(name="checkout", namespace=namespace, uid=OWNER_UID)
    return balancing.render(owner, spec, Context(
        selector=app_selector(owner, spec, None), pool_selectors={p.name: pool_selector(owner, p) for p in spec.pools}))


CASES = [(provider, algorithm, affinity) for provider in PROVIDERS for algorithm in ALGORITHMS for affinity in AFFINITIES
         if valid(provider, algorithm, affinity)]
# Experimental first: the tests above leave that channel installed, so the module switches once.
CASES.sort(key=lambda case: not needs_experimental(render_case("order", *case)))


def set_gateway_channel(cluster: LocalCluster, channel: str) -> None:
    """Installs the Gateway API `channel` unless it is in place, then waits until the API server
    validates with it: a route with sessionPersistence passes a server-side dry run exactly on
    the experimental channel (a changed CRD's schema takes effect a moment after the update)."""
    route = crd(cluster, "httproutes.gateway.networking.k8s.io")
    if route["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] != channel:
        install_crds(cluster.kubectl, [f"gateway-{channel}"])
    probe = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "channel-probe", "namespace": "default"},
             "spec": {"rules": [{"sessionPersistence": {"sessionName": "probe", "type": "Cookie"}}]}}

    def in_effect() -> bool:
        result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(probe),
                                 check=False, timeout=30)
        return (result.returncode == 0) == (channel == "experimental")
    wait_until(in_effect, 30, f"the {channel} Gateway API channel in effect")


class DryRuns:
    """Server-side apply of objects as Spillway's field manager, through admission, OpenAPI and
    CEL validation and the typed patch that refuses any field the schema does not declare, never
    stored; one run per channel and set of objects."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.channel = ""
        self.answers: dict[tuple[str, str], subprocess.CompletedProcess[str]] = {}

    def __call__(self, channel: str, objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        if channel != self.channel:
            set_gateway_channel(self.cluster, channel)
            self.channel = channel
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, sort_keys=True)
        if (channel, body) not in self.answers:
            self.answers[(channel, body)] = self.cluster.kubectl(
                "apply", "--server-side", "--dry-run=server", "--field-manager=spillway", "-o", "json", "-f", "-",
                input=body, check=False, timeout=60)
        return self.answers[(channel, body)]


def uncovered(live: Any, desired: Any, path: str = "", key: str = "", parent: str = "") -> list[str]:
    """The paths of `desired` that `live` does not carry with the same value, by `covers`: the
    reconcile's own test of whether an object must be written, so an object it leaves out here
    would also be re-applied at every reconcile."""
    if covers(live, desired, key, parent):
        return []
    if isinstance(desired, dict) and isinstance(live, dict):
        missing = [f"{path}.{name} (absent)" for name, value in desired.items()
                   if name not in live and not covers(None, value)]
        return missing + [p for name, value in desired.items() if name in live
                          for p in uncovered(live[name], value, f"{path}.{name}", name, key)]
    if isinstance(desired, list) and isinstance(live, list) and len(live) == len(desired):
        return [p for i, (a, b) in enumerate(zip(live, desired, strict=True))
                for p in uncovered(a, b, f"{path}[{i}]", key, parent)]
    return [f"{path}: {json.dumps(live)} != {json.dumps(desired)}"]


@pytest.fixture(scope="module")
def scratch(control_plane: LocalCluster, every_set: list[str]) -> str:
    """A namespace for the dry runs (the API server checks that it exists)."""
    name = f"dry-run-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def dry_run(control_plane: LocalCluster, every_set: list[str]) -> DryRuns:
    return DryRuns(control_plane)


@pytest.mark.parametrize(("provider", "algorithm", "affinity"), CASES, ids=["-".join(c) for c in CASES])
def test_the_api_server_accepts_every_rendered_object_and_prunes_none_of_its_fields(
        control_plane: LocalCluster, every_set: list[str], scratch: str, dry_run: DryRuns,
        provider: str, algorithm: str, affinity: str) -> None:
    plan = render_case(scratch, provider, algorithm, affinity)
    served = {(r.api_version, r.kind) for r in plan.requires if r.crd in every_set}
    unserved = {(r.api_version, r.kind) for r in plan.requires} - served
    assert {kind for _, kind in unserved} <= NOT_INSTALLED
    objects = [fingerprinted(o) for o in plan.objects if (o["apiVersion"], o["kind"]) not in unserved]

    result = dry_run("experimental" if needs_experimental(plan) else "standard", objects)
    assert result.returncode == 0, f"{result.stderr}\n{json.dumps(objects, indent=1)}"

    answered = json.loads(result.stdout)
    stored = {(o["kind"], o["metadata"]["name"]): o
              for o in (answered["items"] if answered.get("kind") == "List" else [answered])}
    assert set(stored) == {(o["kind"], o["metadata"]["name"]) for o in objects}
    for desired in objects:
        missing = uncovered(stored[(desired["kind"], desired["metadata"]["name"])], desired)
        assert not missing, f"{desired['kind']} {desired['metadata']['name']} as the API server has it lacks {missing}"


# --- The operator on a cluster that serves the providers' APIs and runs none of them ----------

ROUTE, ENVOY_POLICY = "httproutes.gateway.networking.k8s.io", "backendtrafficpolicies.gateway.envoyproxy.io"
DESTINATION_RULE, VIRTUAL_SERVICE = "destinationrules.networking.istio.io", "virtualservices.networking.istio.io"
GARBAGE_COLLECTION_SECONDS = 90  # the garbage collector learns new kinds from discovery every 30s


@pytest.fixture(scope="module")
def k(control_plane: LocalCluster, every_set: list[str]) -> Kubectl:
    """kubectl on this module's control plane with Spillway's CRD installed and established."""
    kubectl = Kubectl(control_plane)
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/scalableservices.spillway.io", "--timeout=60s")
    wait_until(lambda: "ssvc" in kubectl.run("api-resources", "--api-group=spillway.io").stdout, 60,
               "ScalableService in discovery")
    return kubectl


def gateway_service(name: str, namespace: str, **balancing: Any) -> dict[str, Any]:
    return scalable_service(name, namespace, balancing={
        "gateway": {"parentRefs": [{"name": "public", "namespace": "infra", "sectionName": "http"}],
                    "hostnames": [f"{name}.example.com"]}, **balancing})


def balancer_ready(k: Kubectl, name: str, namespace: str, generation: int = 1) -> dict[str, Any]:
    """BalancerReady once the reconcile of `generation` has published it."""
    def published(obj: dict[str, Any]) -> bool:
        return (obj.get("status") or {}).get("observedGeneration") == generation and condition(
            obj, "BalancerReady") is not None
    found = condition(k.wait_for("ssvc", name, namespace, published, what=f"{name}'s BalancerReady"), "BalancerReady")
    assert found is not None
    return found


def owned(k: Kubectl, kind: str, name: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    """`kind/name`, which must exist and be controlled by `owner`, so the garbage collector
    removes it with the ScalableService."""
    found = k.get(kind, name, namespace)
    assert found is not None, f"{kind}/{name} is missing in {namespace}"
    refs = found["metadata"].get("ownerReferences") or []
    assert [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == [
        ("ScalableService", owner["metadata"]["name"], owner["metadata"]["uid"], True)], refs
    return found


def gone(k: Kubectl, kinds_and_names: list[tuple[str, str]], namespace: str, timeout: float, why: str) -> None:
    wait_until(lambda: all(k.get(kind, name, namespace) is None for kind, name in kinds_and_names), timeout,
               f"{why}: {kinds_and_names} gone from {namespace}", every=0.5)


def test_gateway_api_provider_creates_its_route_and_is_ready_once_a_gateway_accepts_it(
        control_plane: LocalCluster, k: Kubectl) -> None:
    ns = k.namespace("gateway")
    with running_operator(str(control_plane.kubeconfig)):
        k.apply(gateway_service("web", ns, provider="GatewayAPI"))
        waiting = balancer_ready(k, "web", ns)
        owner = k.get("ssvc", "web", ns)
        assert owner is not None
        route = owned(k, ROUTE, "web", ns, owner)
        owned(k, "service", "web", ns, owner)
        # What a Gateway controller writes when its Gateway takes the route.
        accepted = {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                  "namespace": "infra", "sectionName": "http"},
                    "controllerName": "example.com/gateway-controller",
                    "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                    "observedGeneration": route["metadata"]["generation"],
                                    "lastTransitionTime": "2026-11-25T00:00:00Z"}]}
        k.run("patch", ROUTE, "web", "-n", ns, "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"parents": [accepted]}}))
        k.run("annotate", "ssvc", "web", "-n", ns, "spillway.io/test-touch=1")  # a reconcile now, not at the resync
        ready = condition(k.wait_for("ssvc", "web", ns, lambda o: (condition(o, "BalancerReady") or {}).get(
            "status") == "True", timeout=75, what="BalancerReady True once the route is accepted"), "BalancerReady")
    # No Gateway controller runs here: until the route is accepted the balancer is not ready.
    assert (waiting["status"], waiting["reason"]) == ("False", "BalancerNotReady"), waiting
    assert waiting["message"].startswith("HTTPRoute web is not accepted by any Gateway yet"), waiting
    assert ready is not None and ready["reason"] == "GatewayAPIBalancing", ready
    assert ready["message"].startswith("HTTPRoute web on Gateway infra/public sends traffic to Service web"), ready
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                            "namespace": "infra", "sectionName": "http"}]
    assert route["spec"]["hostnames"] == ["web.example.com"]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 1}]
    assert owner["status"]["balancer"] == {"provider": "GatewayAPI", "algorithm": "ImplementationDefault",
                                           "endpoint": "web.example.com"}


def test_switching_envoy_gateway_to_istio_replaces_the_objects_and_deleting_collects_them(
        control_plane: LocalCluster, k: Kubectl) -> None:
    ns = k.namespace("switch")
    service = gateway_service("shop", ns, provider="EnvoyGateway", algorithm="Weighted")
    service["spec"]["pools"] = [{"name": "large", "weight": 3}, {"name": "small", "weight": 1}]
    with running_operator(str(control_plane.kubeconfig)):
        k.apply(service)
        envoy = balancer_ready(k, "shop", ns)
        owner = k.get("ssvc", "shop", ns)
        assert owner is not None
        policy = owned(k, ENVOY_POLICY, "shop", ns, owner)
        route = owned(k, ROUTE, "shop", ns, owner)
        for pool in ("shop-large", "shop-small"):
            owned(k, "service", pool, ns, owner)

        k.run("patch", "ssvc", "shop", "-n", ns, "--type=merge", "-p",
              json.dumps({"spec": {"balancing": {"provider": "Istio"}}}))
        istio = balancer_ready(k, "shop", ns, generation=2)
        owner = k.get("ssvc", "shop", ns)
        assert owner is not None
        rule = owned(k, DESTINATION_RULE, "shop", ns, owner)
        virtual = owned(k, VIRTUAL_SERVICE, "shop", ns, owner)
        gone(k, [(ROUTE, "shop"), (ENVOY_POLICY, "shop"), ("service", "shop-large"), ("service", "shop-small")], ns,
             10, "the EnvoyGateway provider's objects, after the switch")
        kept = [("service", "shop"), ("deployment", "shop-large"), ("deployment", "shop-small"),
                ("poddisruptionbudget", "shop")]
        for kind, name in kept:
            owned(k, kind, name, ns, owner)

        k.run("delete", "ssvc", "shop", "-n", ns, "--timeout=60s")  # the operator removes its finalizer
    gone(k, [(DESTINATION_RULE, "shop"), (VIRTUAL_SERVICE, "shop"), *kept], ns, GARBAGE_COLLECTION_SECONDS,
         "the garbage collector, after the ScalableService was deleted")

    # Rendered, not yet accepted: no Gateway controller runs here.
    assert (envoy["status"], envoy["reason"]) == ("False", "BalancerNotReady"), envoy
    assert policy["spec"] == {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "shop"}],
                              "loadBalancer": {"type": "RoundRobin"}}
    assert [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]] == [
        ("shop-large", 3), ("shop-small", 1)]
    assert (istio["status"], istio["reason"]) == ("True", "IstioBalancing"), istio
    assert rule["spec"]["trafficPolicy"] == {"loadBalancer": {"simple": "ROUND_ROBIN"}}
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["large", "small"]
    assert [(r["destination"]["subset"], r["weight"]) for r in virtual["spec"]["http"][0]["route"]] == [
        ("large", 3), ("small", 1)]


def test_nginx_gateway_fabric_without_its_api_reports_it_and_still_creates_the_route(
        control_plane: LocalCluster, k: Kubectl) -> None:
    assert "upstreamsettingspolicies.gateway.nginx.org" not in control_plane.kubectl("get", "crd", "-o", "name").stdout
    ns = k.namespace("nginx")
    with running_operator(str(control_plane.kubeconfig)):
        k.apply(gateway_service("web", ns, provider="NginxGatewayFabric", algorithm="LeastConnection"))
        ready = balancer_ready(k, "web", ns)
        owner = k.get("ssvc", "web", ns)
        assert owner is not None
        owned(k, ROUTE, "web", ns, owner)
        owned(k, "service", "web", ns, owner)
        owned(k, "deployment", "web", ns, owner)
        warned = wait_until(lambda: [e for e in k.items("events.events.k8s.io", ns) if e.get("reason") == "APINotInstalled"],
                            30, "the APINotInstalled event")
    assert (ready["status"], ready["reason"]) == ("False", "APINotInstalled"), ready
    assert ("CRD upstreamsettingspolicies.gateway.nginx.org is not installed, so UpstreamSettingsPolicy "
            "(gateway.nginx.org/v1alpha1) cannot be created") in ready["message"], ready
    assert warned[0]["type"] == "Warning" and warned[0]["regarding"]["name"] == "web"


def test_gateway_api_cookie_affinity_on_the_standard_channel_applies_no_route_until_experimental(
        control_plane: LocalCluster, k: Kubectl) -> None:
    set_gateway_channel(control_plane, "standard")
    ns = k.namespace("channel")
    service = gateway_service("web", ns, provider="GatewayAPI", affinity={"type": "Cookie"})
    with running_operator(str(control_plane.kubeconfig)):
        k.apply(service)
        standard = balancer_ready(k, "web", ns)
        owner = k.get("ssvc", "web", ns)
        assert owner is not None
        owned(k, "service", "web", ns, owner)
        assert k.get(ROUTE, "web", ns) is None
    assert (standard["status"], standard["reason"]) == ("False", "APINotInstalled"), standard
    assert ("HTTPRoute needs the experimental channel of CRD httproutes.gateway.networking.k8s.io "
            "(installed: standard)") in standard["message"], standard

    # A new operator (the CRD's presence is cached for a minute) finds the experimental channel
    # at its resume and applies the route with the cookie.
    set_gateway_channel(control_plane, "experimental")
    with running_operator(str(control_plane.kubeconfig)):
        route = k.wait_for(ROUTE, "web", ns, lambda _: True, what="the route on the experimental channel")
        k.wait_for("ssvc", "web", ns, lambda o: (condition(o, "BalancerReady") or {}).get("reason")
                   == "BalancerNotReady", what="BalancerReady waiting for a Gateway to accept the route")
    assert route["spec"]["rules"][0]["sessionPersistence"] == {
        "sessionName": "SPILLWAY", "type": "Cookie", "absoluteTimeout": "1h", "cookieConfig": {"lifetimeType": "Permanent"}}
