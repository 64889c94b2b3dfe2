"""Headroom's builders: what one placeholder pod requests, where it may run and whom it yields
to; the CapacityBuffer's shape; how the room is counted and split over pools."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.api.spec import Headroom, ScalableServiceSpec
from spillway.resources import headroom
from spillway.resources.meta import SAFE_TO_EVICT, Owner, owner_reference
from spillway.resources.workload import build_app
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="0b5e2c1a-uid")
KUBERNETES_VERSION = "1.36.0"
SETTINGS = headroom.Settings(image="mirror.example/pause:3.10.1", priority_class="spillway-headroom")


def _container(name: str, requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
               **extra: Any) -> dict[str, Any]:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v is not None}
    return {"name": name, "image": "ghcr.io/acme/x:1", "resources": resources, **extra}


def _target(pod_spec: dict[str, Any], pods: int = 2, pool: str | None = None) -> headroom.Target:
    return headroom.Target(deployment="checkout", pool=pool, pod_spec=pod_spec, pods=pods)


def _deployments(spec: ScalableServiceSpec, replicas: int = 4) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in build_app(OWNER, spec, replicas) if o["kind"] == "Deployment"}


# --- what one pod requests ---------------------------------------------------------------------

@pytest.mark.parametrize(("pod", "expected"), [
    ({"containers": [_container("a", {"cpu": "250m", "memory": "256Mi"}),
                     _container("b", {"cpu": "0.5", "memory": "64Mi"})]},
     {"cpu": "750m", "memory": str(320 * 2**20)}),
    # An init container needing more than the app containers together sets the pod's request.
    ({"containers": [_container("a", {"cpu": "100m", "memory": "128Mi"})],
      "initContainers": [_container("migrate", {"cpu": "2", "memory": "64Mi"})]},
     {"cpu": "2", "memory": str(128 * 2**20)}),
    # Init containers run one at a time: the largest counts, not their sum.
    ({"containers": [_container("a", {"cpu": "100m"})],
      "initContainers": [_container("i1", {"cpu": "300m"}), _container("i2", {"cpu": "400m"})]},
     {"cpu": "400m"}),
    # A limit without a request is the request, as the API server defaults it.
    ({"containers": [_container("a", {"memory": "1Gi"}, {"cpu": "1500m", "memory": "2Gi"})]},
     {"cpu": "1500m", "memory": str(2**30)}),
    # A sidecar (an init container that keeps running) adds to the app containers, and runs
    # beside the init containers that start after it.
    ({"containers": [_container("a", {"cpu": "500m"})],
      "initContainers": [_container("proxy", {"cpu": "200m"}, restartPolicy="Always"),
                         _container("migrate", {"cpu": "1"})]},
     {"cpu": "1200m"}),
    ({"containers": [_container("a", {"cpu": "500m"})],
      "initContainers": [_container("proxy", {"cpu": "200m"}, restartPolicy="Always")]},
     {"cpu": "700m"}),
    ({"containers": [_container("a")]}, {}),
], ids=["sum", "init-larger", "init-max-not-sum", "limit-as-request", "sidecar-and-init", "sidecar", "none"])
def test_pod_requests_count_as_the_scheduler_does(pod: dict[str, Any], expected: dict[str, str]) -> None:
    assert headroom.pod_requests(pod) == expected


@pytest.mark.parametrize("quantity", ["", "lots", "1.2.3", "10 Mi", "1Mb", "Mi", "1e", "0x10"])
def test_a_quantity_kubernetes_would_not_read_is_refused(quantity: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        headroom.parse(quantity)


@pytest.mark.parametrize(("quantity", "value"), [
    ("250m", Fraction(1, 4)), ("1.5Gi", Fraction(3 * 2**29)), ("1e3", Fraction(1000)), ("1E3", Fraction(1000)),
    ("2E", Fraction(2 * 10**18)), ("100u", Fraction(1, 10**4)), ("5n", Fraction(5, 10**9)), ("12e-1", Fraction(6, 5)), (".5", Fraction(1, 2)), ("3", Fraction(3)),
    (2, Fraction(2)), (0.5, Fraction(1, 2)), ("128Mi", Fraction(128 * 2**20)), ("1k", Fraction(1000)),
])
def test_quantities_read_as_kubernetes_reads_them(quantity: Any, value: Fraction) -> None:
    assert Fraction(headroom.parse(quantity)) == value


SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9),
    "T": Fraction(10**12), "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30),
    "Ti": Fraction(2**40), "e3": Fraction(10**3), "E-2": Fraction(1, 100), "e+1": Fraction(10), "e0": Fraction(1),
}
quantities = st.tuples(st.integers(0, 10**6), st.text("0123456789", max_size=4), st.sampled_from(sorted(SUFFIXES)))


@settings(max_examples=300, deadline=None)
@given(quantities, st.integers(1, 4))
def test_a_requested_quantity_is_read_exactly_and_never_rounded_down(parts: tuple[int, str, str],
                                                                     containers: int) -> None:
    whole, fraction, suffix = parts
    text = f"{whole}.{fraction}{suffix}" if fraction else f"{whole}{suffix}"
    exact = Fraction(f"{whole}.{fraction or 0}") * SUFFIXES[suffix]
    assert Fraction(headroom.parse(text)) == exact
    pod = {"containers": [_container(f"c{i}", {"cpu": text}) for i in range(containers)]}
    written = headroom.pod_requests(pod)
    summed = Fraction(headroom.parse(written["cpu"]))
    # What the placeholder asks is what the app asks, or at most a milli-unit more (a fraction
    # of a milli-unit, which no Kubernetes quantity keeps, rounds up).
    assert containers * exact <= summed < containers * exact + Fraction(1, 1000)


# --- placeholders --------------------------------------------------------------------------------

APP_POD: dict[str, Any] = {
    "containers": [_container("app", {"cpu": "250m", "memory": "256Mi"})],
    "nodeSelector": {"node-size": "large"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "checkout"}}}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "cache"}}}]},
    },
    "priorityClassName": "shop-high",
    "serviceAccountName": "checkout",
    "hostNetwork": False,
}


def _placeholders(pod: dict[str, Any] | None = None, pods: int = 3, pool: str | None = None) -> dict[str, Any]:
    return headroom.placeholders(OWNER, _target(APP_POD if pod is None else pod, pods, pool), SETTINGS,
                                 "spillway-headroom")


def test_placeholders_meet_the_restricted_pod_security_profile() -> None:
    deployment = _placeholders()
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC", "volumes"))
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not container["securityContext"].get("privileged")
    assert container["image"] == SETTINGS.image


def test_placeholders_stand_on_the_app_pods_nodes_and_ask_what_one_app_pod_asks() -> None:
    deployment = _placeholders(pods=3)
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "250m", "memory": str(256 * 2**20)}}
    assert pod["nodeSelector"] == APP_POD["nodeSelector"]
    assert pod["tolerations"] == APP_POD["tolerations"]
    # Pod (anti-)affinity speaks of the app's labels, which placeholders do not carry.
    assert pod["affinity"] == {"nodeAffinity": APP_POD["affinity"]["nodeAffinity"]}
    assert "serviceAccountName" not in pod


def test_placeholders_yield_to_the_app_and_never_hold_a_node() -> None:
    deployment = _placeholders()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "spillway-headroom", "not the app's class: the app must preempt them"
    assert pod["terminationGracePeriodSeconds"] == 0
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {SAFE_TO_EVICT: "true"}


def test_placeholders_are_owned_and_never_selected_as_the_app() -> None:
    deployment = _placeholders(pool="large")
    assert deployment["metadata"]["name"] == "checkout-large-headroom"
    assert deployment["metadata"]["ownerReferences"] == [owner_reference(OWNER)]
    match = deployment["spec"]["selector"]["matchLabels"]
    assert match["app.kubernetes.io/component"] == "headroom" and match["spillway.io/pool"] == "large"
    assert match.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert _placeholders()["metadata"]["name"] == "checkout-headroom"


def test_placeholders_of_an_app_on_gpus_state_the_limit_the_api_server_requires() -> None:
    """A request of a resource that cannot be overcommitted (an extended resource, hugepages)
    needs an equal limit, or the API server refuses the pod."""
    pod = {"containers": [_container("app", {"cpu": "1", "memory": "1Gi"},
                                     {"nvidia.com/gpu": 1, "hugepages-2Mi": "64Mi", "memory": "2Gi"})]}
    resources = _placeholders(pod)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "1", "memory": str(2**30), "hugepages-2Mi": str(64 * 2**20),
                                     "nvidia.com/gpu": "1"}
    assert resources["limits"] == {"hugepages-2Mi": str(64 * 2**20), "nvidia.com/gpu": "1"}


def test_pod_level_fields_of_the_app_come_along() -> None:
    pod = {**APP_POD, "runtimeClassName": "gvisor",
           "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}}
    placeholder = _placeholders(pod)["spec"]["template"]["spec"]
    assert placeholder["runtimeClassName"] == "gvisor", "its overhead is counted as the app pod's is"
    assert placeholder["resources"] == pod["resources"]


def test_placeholders_for_the_app_spillway_builds_are_valid_kubernetes() -> None:
    spec = parse_spec(minimal_spec(pools=[{"name": "large", "weight": 3, "nodeSelector": {"size": "l"}},
                                          {"name": "small"}], headroom={"replicas": 4}))
    found = headroom.targets(OWNER, spec, 4, _deployments(spec))
    for obj in headroom.build(OWNER, found, "Placeholders", SETTINGS, "spillway-headroom"):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    large = next(t for t in found if t.pool == "large")
    placeholder = headroom.placeholders(OWNER, large, SETTINGS, "spillway-headroom")["spec"]["template"]["spec"]
    assert placeholder["nodeSelector"] == {"size": "l"}, "the pool's nodes"
    # The app's defaulted requests (it states none) are what each placeholder holds.
    assert placeholder["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": str(128 * 2**20)}


# --- CapacityBuffer ------------------------------------------------------------------------------

def test_a_capacity_buffer_names_the_app_deployment_and_the_count() -> None:
    target = headroom.Target(deployment="checkout-large", pool="large", pod_spec=APP_POD, pods=5)
    buffer = headroom.capacity_buffer(OWNER, target)
    assert (buffer["apiVersion"], buffer["kind"]) == ("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer")
    assert buffer["metadata"]["name"] == "checkout-large-headroom"
    assert buffer["metadata"]["ownerReferences"] == [owner_reference(OWNER)]
    assert buffer["metadata"]["labels"]["app.kubernetes.io/component"] == "headroom"
    assert buffer["spec"] == {"scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "checkout-large"},
                              "replicas": 5}


def test_build_makes_one_object_per_target_of_the_mechanism() -> None:
    found = [_target(APP_POD, 1, "a"), _target(APP_POD, 2, "b")]
    assert [o["kind"] for o in headroom.build(OWNER, found, "CapacityBuffer", SETTINGS, "x")] == ["CapacityBuffer"] * 2
    assert [o["kind"] for o in headroom.build(OWNER, found, "Placeholders", SETTINGS, "x")] == ["Deployment"] * 2


# --- how much room, where ------------------------------------------------------------------------

@pytest.mark.parametrize(("pools", "room", "expected"), [
    ([{"name": "large", "weight": 3}, {"name": "small", "weight": 1}], {"replicas": 4},
     [("checkout-large", "large", 3), ("checkout-small", "small", 1)]),
    ([{"name": "large", "weight": 3}, {"name": "small", "weight": 1}], {"percent": 50},
     [("checkout-large", "large", 2), ("checkout-small", "small", 0)]),  # 50 % of 4 is 2: large first
    ([], {"replicas": 3}, [("checkout", None, 3)]),
    ([], {"percent": 10}, [("checkout", None, 1)]),  # the floor of 1
    ([], {"percent": 10, "minReplicas": 0}, [("checkout", None, 1)]),  # 10 % of 4 rounds up
])
def test_room_is_split_over_the_pools_as_the_replicas_are(pools: list[dict[str, Any]], room: dict[str, Any],
                                                          expected: list[tuple[str, str | None, int]]) -> None:
    spec = parse_spec(minimal_spec(pools=pools, headroom=room))
    found = headroom.targets(OWNER, spec, 4, _deployments(spec))
    assert [(t.deployment, t.pool, t.pods) for t in found] == expected


def test_a_pool_whose_deployment_is_missing_gets_no_room() -> None:
    spec = parse_spec(minimal_spec(pools=[{"name": "large", "weight": 3}, {"name": "small"}],
                                   headroom={"replicas": 4}))
    deployments = _deployments(spec)
    del deployments["checkout-large"]
    assert [(t.pool, t.pods) for t in headroom.targets(OWNER, spec, 4, deployments)] == [("small", 1)]


def test_an_adopted_deployment_is_the_target() -> None:
    spec = parse_spec({"targetRef": {"name": "legacy"}, "port": 8080, "headroom": {"replicas": 2}})
    legacy = {"spec": {"template": {"spec": APP_POD}}}
    [target] = headroom.targets(OWNER, spec, 3, {"legacy": legacy})
    assert (target.deployment, target.pods, target.pod_spec) == ("legacy", 2, APP_POD)


@pytest.mark.parametrize(("room", "wanted"), [
    ({}, False), ({"replicas": 0}, False), ({"replicas": 1}, True), ({"percent": 10, "minReplicas": 0}, True),
])
def test_headroom_is_wanted_only_when_the_spec_asks(room: dict[str, Any], wanted: bool) -> None:
    assert headroom.wanted(parse_spec(minimal_spec(headroom=room))) is wanted


@given(st.integers(1, 1000), st.integers(0, 1000), st.integers(0, 10000), st.integers(0, 10000))
def test_percent_follows_the_app_above_its_floor(percent: int, floor: int, smaller: int, larger: int) -> None:
    smaller, larger = sorted((smaller, larger))
    room = Headroom(percent=percent, min_replicas=floor)
    assert room.pods(smaller) <= room.pods(larger), "more replicas never need less room"
    assert room.pods(larger) >= floor
    assert room.pods(larger) == max(floor, -(-larger * percent // 100))
    assert room.pods(larger) * 100 >= larger * percent, "rounded up, never down"
    assert Headroom(percent=percent).pods(larger) >= 1, "the floor is 1 unless said"


@given(st.integers(0, 1000), st.integers(-5, 10000))
def test_a_fixed_count_ignores_the_app_size_and_nothing_is_negative(replicas: int, current: int) -> None:
    assert Headroom(replicas=replicas).pods(current) == replicas
    assert Headroom().pods(current) == 0
    assert Headroom(percent=50, min_replicas=0).pods(current) >= 0


# --- HeadroomReady -------------------------------------------------------------------------------

def test_placeholders_are_ready_once_every_one_runs() -> None:
    found = [_target(APP_POD, 2, "a"), _target(APP_POD, 1, "b")]
    live = [{"metadata": {"name": "x"}, "status": {"readyReplicas": 2}}, {"metadata": {"name": "y"}, "status": {}}]
    ready, reason, message = headroom.readiness("Placeholders", found, live, "spillway-headroom")
    assert (ready, reason) == (False, "PlaceholdersPending") and message.startswith("2 of 3 placeholder pods run")
    live[1]["status"] = {"readyReplicas": 1}
    assert headroom.readiness("Placeholders", found, live, "spillway-headroom")[:2] == (True, "Placeholders")


def test_a_capacity_buffer_says_what_the_autoscaler_reported() -> None:
    found = [_target(APP_POD, 3)]
    live = [{"metadata": {"name": "checkout-headroom"}}]
    ready, reason, message = headroom.readiness("CapacityBuffer", found, live, "unused")
    assert (ready, reason) == (True, "CapacityBuffer")
    assert "room for 3 pods" in message and "no autoscaler has reported on it yet" in message
    live[0]["status"] = {"replicas": 3}
    assert "the autoscaler reports 3 provisioned" in headroom.readiness("CapacityBuffer", found, live, "unused")[2]
