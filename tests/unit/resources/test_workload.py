from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.resources import sessionstore
from spillway.resources.balancing import Context, render
from spillway.resources.meta import DO_NOT_DISRUPT, SAFE_TO_EVICT, Owner
from spillway.resources.workload import (
    DEFAULT_REQUESTS,
    app_selector,
    build_app,
    defaulted_requests,
    pool_selector,
    restricted,
    split_by_weight,
)
from tests.unit.conftest import minimal_spec

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OWNER = Owner(name="checkout", namespace="shop", uid="0b5e2c1a-uid")
KUBERNETES_VERSION = "1.36.0"

CASES: dict[str, dict[str, Any]] = {
    "minimal": minimal_spec(),
    "client-ip-affinity": minimal_spec(replicas={"min": 3, "max": 9},
                                       balancing={"affinity": {"type": "ClientIP", "ttl": "30m"}},
                                       disruptionBudget={"minAvailable": "50%"}, servicePort=8080),
    "pools": minimal_spec(pools=[{"name": "large", "weight": 3, "nodeSelector": {"node-size": "large"}},
                                 {"name": "small", "weight": 1}]),
    "no-budget": minimal_spec(disruptionBudget={"enabled": False}, port=8080),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_builders_match_golden_objects(case: str) -> None:
    spec = parse_spec(CASES[case])
    built = build_app(OWNER, spec, replicas=spec.replicas.min + 3) + _front(spec)
    path = GOLDEN / f"workload-{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(yaml.safe_dump_all(built, sort_keys=True))
    assert list(yaml.safe_load_all(path.read_text())) == built


def test_adopted_deployment_gets_service_and_budget_with_its_own_selector() -> None:
    spec = parse_spec({"targetRef": {"name": "legacy"}, "port": 8080})
    adopted = {"spec": {"selector": {"matchLabels": {"app": "legacy"}}}}
    built = build_app(OWNER, spec, replicas=2, adopted=adopted) + _front(spec, adopted)
    assert [o["kind"] for o in built] == ["PodDisruptionBudget", "Service"]
    assert built[0]["spec"]["selector"] == {"matchLabels": {"app": "legacy"}}
    assert built[1]["spec"]["selector"] == {"app": "legacy"}


def _front(spec: ScalableServiceSpec, adopted: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The Service in front of the app, as the default provider renders it."""
    context = Context(selector=app_selector(OWNER, spec, adopted),
                      pool_selectors={p.name: pool_selector(OWNER, p) for p in spec.pools})
    return list(render(OWNER, spec, context).objects)


def test_restricted_fills_only_what_the_template_left_unset() -> None:
    pod = {"securityContext": {"runAsNonRoot": False},
           "containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}},
                          {"name": "b"}]}
    result = restricted(pod)
    assert result["securityContext"] == {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}
    assert result["containers"][0]["securityContext"] == {"capabilities": {"add": ["NET_BIND_SERVICE"]},
                                                          "allowPrivilegeEscalation": False}
    assert result["containers"][1]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                          "capabilities": {"drop": ["ALL"]}}
    assert "securityContext" not in pod["containers"][1], "the input is not modified"


@pytest.mark.parametrize(("total", "weights", "expected"), [
    (8, [3, 1], [6, 2]), (5, [3, 1], [4, 1]), (1, [1, 1], [1, 0]), (0, [2, 5], [0, 0]), (7, [1, 1, 1], [3, 2, 2]),
])
def test_split_by_weight(total: int, weights: list[int], expected: list[int]) -> None:
    assert split_by_weight(total, weights) == expected


@given(st.integers(0, 10000), st.lists(st.integers(1, 100), min_size=1, max_size=8))
def test_split_always_adds_up_and_stays_within_one_of_exact(total: int, weights: list[int]) -> None:
    parts = split_by_weight(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


names = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
valid_specs = st.fixed_dictionaries({
    "replicas": st.integers(1, 50).flatmap(lambda lo: st.fixed_dictionaries(
        {"min": st.just(lo), "max": st.integers(lo, 100)})),
    "servicePort": st.integers(1, 65535),
    "port": st.one_of(st.just("http"), st.integers(1, 65535)),
    "balancing": st.fixed_dictionaries({"affinity": st.fixed_dictionaries({
        "type": st.sampled_from(["None", "ClientIP"]), "ttl": st.sampled_from(["10s", "30m", "24h"])})}),
    "disruptionBudget": st.one_of(
        st.just({}), st.just({"enabled": False}),
        st.fixed_dictionaries({"minAvailable": st.one_of(st.integers(0, 5), st.just("50%"))}),
        st.fixed_dictionaries({"maxUnavailable": st.one_of(st.integers(1, 5), st.just("25%"))})),
    "pools": st.lists(st.fixed_dictionaries({"name": names, "weight": st.integers(1, 100),
                                             "nodeSelector": st.dictionaries(names, names, max_size=2)}),
                      max_size=3, unique_by=lambda p: p["name"]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_specs, st.integers(0, 100))
def test_any_valid_spec_builds_objects_kubernetes_accepts(overrides: dict[str, Any], replicas: int) -> None:
    spec = parse_spec(minimal_spec(**overrides))
    for obj in build_app(OWNER, spec, replicas=replicas):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# --- what cluster autoscalers read ---------------------------------------------------------------

def _containers(spec: ScalableServiceSpec) -> list[dict[str, Any]]:
    deployment = next(o for o in build_app(OWNER, spec, 2) if o["kind"] == "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def _template(*containers: dict[str, Any], **pod: Any) -> dict[str, Any]:
    return {"metadata": pod.pop("metadata", {}), "spec": {"containers": list(containers), **pod}}


APP = {"name": "app", "image": "ghcr.io/acme/checkout:1.4", "ports": [{"name": "http", "containerPort": 8080}]}


@pytest.mark.parametrize(("resources", "expected"), [
    (None, {"requests": DEFAULT_REQUESTS}),
    ({"requests": {"cpu": "2"}}, {"requests": {"cpu": "2", "memory": "128Mi"}}),
    # A limit alone is the request (the API server copies it): no default beside it.
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, {"limits": {"cpu": "1", "memory": "1Gi"}}),
    ({"limits": {"memory": "1Gi"}}, {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}}),
    ({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}},
     {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}),
    ({"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
     {"requests": {"nvidia.com/gpu": 1, **DEFAULT_REQUESTS}, "limits": {"nvidia.com/gpu": 1}}),
], ids=["none", "cpu-only", "limits", "memory-limit", "both-stated", "gpu"])
def test_default_requests_fill_only_what_neither_a_request_nor_a_limit_states(
        resources: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    container = APP if resources is None else {**APP, "resources": resources}
    spec = parse_spec(minimal_spec(template=_template(container)))
    stated = copy.deepcopy(spec.template)
    assert _containers(spec)[0]["resources"] == expected
    assert spec.template == stated, "the spec itself is not modified"


def test_defaulted_requests_are_named_by_container_and_resource() -> None:
    pod = _template({**APP, "resources": {"limits": {"memory": "1Gi"}}}, {"name": "sidecar", "image": "x"},
                    {"name": "full", "image": "y", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}})["spec"]
    assert defaulted_requests(pod) == ["app/cpu", "sidecar/cpu", "sidecar/memory"]
    init = _template({**APP, "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                     initContainers=[{"name": "migrate", "image": "z"}])["spec"]
    assert defaulted_requests(init) == [], "init containers run before the app: left as they are"


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = obj["spec"]["template"]["metadata"].get("annotations") or {}
    return found


def test_app_pods_let_a_cluster_autoscaler_drain_their_node() -> None:
    spec = parse_spec(minimal_spec())
    built = build_app(OWNER, spec, 2)
    deployment = next(o for o in built if o["kind"] == "Deployment")
    assert _annotations(deployment)[SAFE_TO_EVICT] == "true"
    assert DO_NOT_DISRUPT not in _annotations(deployment)
    pdb = next(o for o in built if o["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_the_templates_own_safe_to_evict_wins() -> None:
    template = _template(APP, metadata={"annotations": {SAFE_TO_EVICT: "false", "team": "shop"}})
    spec = parse_spec(minimal_spec(template=template))
    deployment = next(o for o in build_app(OWNER, spec, 2) if o["kind"] == "Deployment")
    assert _annotations(deployment) == {SAFE_TO_EVICT: "false", "team": "shop"}


def test_haproxy_pods_may_be_drained_and_an_unready_one_never_blocks_it() -> None:
    spec = parse_spec(minimal_spec(balancing={"provider": "HAProxy"}))
    objects = _front(spec)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert _annotations(deployment)[SAFE_TO_EVICT] == "true"
    pdb = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize(("redis", "expected"), [
    # A lone Redis holds every session: neither autoscaler may move it for a scale-down.
    ({"mode": "Standalone"}, {"checkout-redis": {SAFE_TO_EVICT: "false", DO_NOT_DISRUPT: "true"}}),
    # Replicated, with PDBs letting one pod go at a time: drained like any other.
    ({"mode": "Sentinel", "replicas": 2}, {"checkout-redis": {SAFE_TO_EVICT: "true"},
                                           "checkout-sentinel": {SAFE_TO_EVICT: "true"}}),
])
def test_session_store_pods_tell_the_autoscalers_whether_their_node_may_go(
        redis: dict[str, Any], expected: dict[str, dict[str, str]]) -> None:
    spec = parse_spec(minimal_spec(sessionStore={"type": "Redis", "redis": redis}))
    objects = sessionstore.build(OWNER, spec, "p" * 32, app_selector(OWNER, spec, None))
    found = {o["metadata"]["name"]: {k: v for k, v in _annotations(o).items() if k in (SAFE_TO_EVICT, DO_NOT_DISRUPT)}
             for o in objects if o["kind"] == "StatefulSet"}
    assert found == expected
