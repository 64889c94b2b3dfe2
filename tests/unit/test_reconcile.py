from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spillway.ports import ClusterError
from spillway.reconcile import reconcile
from spillway.resources import headroom
from tests.unit.conftest import minimal_spec, resource
from tests.unit.fakes import FakeCluster

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _condition(body: dict, type_: str) -> dict:
    return next(c for c in body["status"]["conditions"] if c["type"] == type_)


def test_first_reconcile_creates_deployment_service_and_budget_at_min(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 6}))
    outcome = reconcile(cluster, body, NOW)
    applied = [(verb, kind, name) for verb, kind, name in cluster.writes if verb == "apply"]
    assert applied == [("apply", "Deployment", "checkout"), ("apply", "PodDisruptionBudget", "checkout"),
                       ("apply", "Service", "checkout")]
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 2
    assert body["status"]["desiredReplicas"] == 2
    assert body["status"]["selector"] == ("app.kubernetes.io/component=app,app.kubernetes.io/instance=checkout,"
                                          "app.kubernetes.io/managed-by=spillway")
    assert body["status"]["observedGeneration"] == 1
    assert _condition(body, "SpecValid")["status"] == "True"
    assert _condition(body, "Ready") | {} == {
        "type": "Ready", "status": "False", "reason": "ReplicasNotReady", "message": "0 of 2 replicas are ready.",
        "lastTransitionTime": "2026-11-24T12:00:00Z", "observedGeneration": 1}
    assert not outcome.ready


def test_second_reconcile_of_an_unchanged_resource_writes_nothing(cluster: FakeCluster) -> None:
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    before, events = len(cluster.writes), len(cluster.events)
    outcome = reconcile(cluster, body, NOW + timedelta(seconds=30))
    assert outcome.writes == 0
    assert len(cluster.writes) == before and len(cluster.events) == events


def test_ready_replicas_reach_status_and_ready_turns_true(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 3, "max": 5}))
    reconcile(cluster, body, NOW)
    cluster.make_ready("Deployment", "checkout")
    outcome = reconcile(cluster, body, NOW + timedelta(seconds=5))
    assert outcome.ready
    assert (body["status"]["replicas"], body["status"]["readyReplicas"]) == (3, 3)
    ready = _condition(body, "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "True", "AllReplicasReady", "2026-11-24T12:00:05Z")
    assert ("Normal", "AllReplicasReady", "3 of 3 replicas are ready.") in cluster.events


def test_invalid_spec_sets_spec_valid_false_posts_one_warning_and_changes_nothing(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 5, "max": 3}))
    reconcile(cluster, body, NOW)
    assert [w for w in cluster.writes if w[0] != "status"] == []
    spec_valid = _condition(body, "SpecValid")
    assert (spec_valid["status"], spec_valid["reason"]) == ("False", "InvalidSpec")
    assert spec_valid["message"] == "spec.replicas: replicas.min must be less than or equal to replicas.max"
    assert cluster.events[0] == ("Warning", "InvalidSpec", spec_valid["message"])
    writes, events = len(cluster.writes), len(cluster.events)
    assert reconcile(cluster, body, NOW + timedelta(minutes=1)).writes == 0
    assert (len(cluster.writes), len(cluster.events)) == (writes, events), "no hot loop on a bad resource"


def test_a_value_the_renderer_cannot_write_is_an_invalid_spec_and_changes_nothing(
        cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderer's own check stands behind the patterns: a spec that passed parsing some other
    way (here, a parse without them) with a newline in the hash key."""
    import spillway.reconcile as module
    from spillway.api import parse_spec

    def unchecked(raw: dict) -> object:
        spec = parse_spec(raw)
        hashed = spec.balancing.hash.model_copy(update={"name": "X\nbackend evil"})
        return spec.model_copy(update={"balancing": spec.balancing.model_copy(update={"hash": hashed})})

    monkeypatch.setattr(module, "parse_spec", unchecked)
    body = resource(minimal_spec(balancing={"provider": "HAProxy", "algorithm": "ConsistentHash",
                                            "hash": {"source": "Header", "name": "X-User"}}))
    reconcile(cluster, body, NOW)
    assert [w for w in cluster.writes if w[0] != "status"] == []
    spec_valid = _condition(body, "SpecValid")
    assert (spec_valid["status"], spec_valid["reason"]) == ("False", "InvalidSpec")
    assert spec_valid["message"].startswith("spec.balancing.hash.name: 'X\\nbackend evil' cannot be written")
    assert _condition(body, "Ready")["reason"] == "InvalidSpec"


def test_invalid_edit_keeps_the_running_children(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 4}))
    reconcile(cluster, body, NOW)
    body["spec"]["replicas"] = {"min": 9, "max": 4}
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 2
    assert not any(verb == "delete" for verb, _, _ in cluster.writes)


def test_editing_the_spec_updates_the_children(cluster: FakeCluster) -> None:
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/checkout:1.5"
    body["spec"]["servicePort"] = 8080
    reconcile(cluster, body, NOW)
    deployment = cluster.get("apps/v1", "Deployment", "shop", "checkout")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/checkout:1.5"
    assert cluster.get("v1", "Service", "shop", "checkout")["spec"]["ports"][0]["port"] == 8080


def test_a_field_spillway_stops_setting_is_applied_away(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"affinity": {"type": "ClientIP"}}))
    reconcile(cluster, body, NOW)
    body["spec"]["balancing"] = {}
    reconcile(cluster, body, NOW)
    assert "sessionAffinityConfig" not in cluster.get("v1", "Service", "shop", "checkout")["spec"]


def test_raising_min_scales_at_once_without_prometheus(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 8}))
    reconcile(cluster, body, NOW)
    body["spec"]["replicas"]["min"] = 5  # what `kubectl scale ssvc --replicas=5` does
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 5
    body["spec"]["replicas"]["min"] = 3
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 3


def test_with_prometheus_the_last_decision_stands_within_bounds(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(replicas={"min": 2, "max": 8}, scaling={"prometheus": {"url": "http://prom:9090"}}))
    body["status"] = {"desiredReplicas": 12}
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 8


def test_removed_pool_and_disabled_budget_are_deleted(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(pools=[{"name": "large", "weight": 3}, {"name": "small"}]))
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-small") is not None
    body["spec"]["pools"] = [{"name": "large", "weight": 3}]
    body["spec"]["disruptionBudget"] = {"enabled": False}
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-small") is None
    assert cluster.get("policy/v1", "PodDisruptionBudget", "shop", "checkout") is None
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-large") is not None


def test_adopted_deployment_is_only_scaled(cluster: FakeCluster) -> None:
    cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "legacy", "namespace": "shop"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "legacy"}}, "template": {}}})
    cluster.writes.clear()
    body = resource({"targetRef": {"name": "legacy"}, "port": 8080, "replicas": {"min": 3, "max": 6}})
    reconcile(cluster, body, NOW)
    assert ("scale", "Deployment", "legacy") in cluster.writes
    assert not any(kind == "Deployment" and verb == "apply" for verb, kind, _ in cluster.writes)
    assert cluster.get("apps/v1", "Deployment", "shop", "legacy")["spec"]["replicas"] == 3
    assert cluster.get("v1", "Service", "shop", "checkout")["spec"]["selector"] == {"app": "legacy"}


def test_missing_adopted_deployment_is_reported(cluster: FakeCluster) -> None:
    body = resource({"targetRef": {"name": "legacy"}, "port": 8080})
    reconcile(cluster, body, NOW)
    ready = _condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TargetNotFound")
    assert ("Warning", "TargetNotFound", ready["message"]) in cluster.events
    assert [w for w in cluster.writes if w[0] != "status"] == []


def test_refused_apply_becomes_a_condition_not_a_retry(cluster: FakeCluster) -> None:
    cluster.refuse["Deployment"] = ClusterError('Deployment.apps "checkout" is invalid: bad', status=422,
                                                retryable=False)
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    ready = _condition(body, "Ready")
    assert (ready["reason"], ready["message"]) == ("ApplyFailed", 'Deployment.apps "checkout" is invalid: bad')


def test_transient_failure_propagates_for_a_retry(cluster: FakeCluster) -> None:
    cluster.refuse["Service"] = ClusterError("etcdserver: request timed out", status=500)
    with pytest.raises(ClusterError):
        reconcile(cluster, resource(minimal_spec()), NOW)


def test_what_cannot_be_honoured_is_a_condition_and_one_warning(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"algorithm": "LeastConnection"}, headroom={"replicas": 1}))
    reconcile(cluster, body, NOW)
    balancer = _condition(body, "BalancerReady")
    assert (balancer["status"], balancer["reason"]) == ("True", "AlgorithmNotHonoured")
    room = _condition(body, "HeadroomReady")
    assert (room["status"], room["reason"]) == ("False", "PriorityClassNotFound")
    assert ("Warning", "PriorityClassNotFound", room["message"]) in cluster.events
    assert ("Warning", "AlgorithmNotHonoured", balancer["message"]) in cluster.events
    assert body["status"]["balancer"] == {"provider": "Service", "algorithm": "Random",
                                          "endpoint": "checkout.shop.svc:80"}
    # The Service still carries the traffic.
    assert cluster.get("v1", "Service", "shop", "checkout") is not None
    events = len(cluster.events)
    assert reconcile(cluster, body, NOW + timedelta(seconds=30)).writes == 0
    assert len(cluster.events) == events


HAPROXY_OBJECTS = [("ConfigMap", "checkout-haproxy-<digest>"), ("Deployment", "checkout-haproxy"),
                   ("Service", "checkout"), ("Service", "checkout-backends"), ("PodDisruptionBudget", "checkout-haproxy")]


def _named(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The content-named ConfigMap's digest as `<digest>`."""
    return [(kind, re.sub(r"-[0-9a-f]{10}$", "-<digest>", name) if kind == "ConfigMap" else name)
            for kind, name in pairs]


def _haproxy_configs(cluster: FakeCluster) -> list[dict[str, Any]]:
    return [o for (_, kind, _, name), o in sorted(cluster.objects.items())
            if kind == "ConfigMap" and name.startswith("checkout-haproxy-")]


def test_haproxy_provider_builds_the_balancer_and_reports_its_readiness(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"provider": "HAProxy"}))
    reconcile(cluster, body, NOW)
    applied = [(kind, name) for verb, kind, name in cluster.writes if verb == "apply"]
    assert _named(applied[2:]) == HAPROXY_OBJECTS  # after the app's Deployment and PDB; no PodMonitor without its CRD
    balancer = _condition(body, "BalancerReady")
    assert (balancer["status"], balancer["reason"], balancer["message"]) == (
        "False", "BalancerNotReady", "0 of 2 HAProxy replicas are ready.")
    assert body["status"]["balancer"] == {"provider": "HAProxy", "algorithm": "LeastConnection",
                                          "endpoint": "checkout.shop.svc:80"}
    front = cluster.get("v1", "Service", "shop", "checkout")
    assert front["spec"]["selector"]["app.kubernetes.io/component"] == "balancer"

    cluster.objects[("apps/v1", "Deployment", "shop", "checkout-haproxy")]["status"] = {"readyReplicas": 2}
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    balancer = _condition(body, "BalancerReady")
    assert (balancer["status"], balancer["reason"]) == ("True", "HAProxyBalancing")
    writes = len(cluster.writes)
    assert reconcile(cluster, body, NOW + timedelta(seconds=10)).writes == 0
    assert len(cluster.writes) == writes


def test_pod_monitor_is_rendered_only_where_its_crd_exists(cluster: FakeCluster) -> None:
    cluster.crds["podmonitors.monitoring.coreos.com"] = {
        "metadata": {"name": "podmonitors.monitoring.coreos.com"},
        "spec": {"versions": [{"name": "v1", "served": True}]}}
    body = resource(minimal_spec(balancing={"provider": "HAProxy"}))
    reconcile(cluster, body, NOW)
    assert cluster.get("monitoring.coreos.com/v1", "PodMonitor", "shop", "checkout-haproxy") is not None
    assert "APINotInstalled" not in {c["reason"] for c in body["status"]["conditions"]}


def test_a_provider_api_served_at_other_versions_only_is_left_alone(cluster: FakeCluster) -> None:
    # Istio before 1.22 serves networking.istio.io v1alpha3 and v1beta1, not the v1 Spillway writes.
    cluster.crds["destinationrules.networking.istio.io"] = {
        "metadata": {"name": "destinationrules.networking.istio.io"},
        "spec": {"group": "networking.istio.io", "names": {"kind": "DestinationRule"},
                 "versions": [{"name": "v1alpha3", "served": True}, {"name": "v1beta1", "served": True}]}}
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    assert _condition(body, "Ready")["reason"] != "ApplyFailed", _condition(body, "Ready")
    body["spec"]["balancing"] = {"provider": "Istio"}
    body["metadata"]["generation"] = 2
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    balancer = _condition(body, "BalancerReady")
    assert (balancer["status"], balancer["reason"]) == ("False", "APINotInstalled")
    assert "CRD destinationrules.networking.istio.io does not serve networking.istio.io/v1" in balancer["message"]


def test_cookie_key_is_generated_once_and_never_shown(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie"}}))
    reconcile(cluster, body, NOW)
    secret = cluster.get("v1", "Secret", "shop", "checkout-balancer")
    key = secret["stringData"]["cookie-key"]
    assert len(key) == 64 and int(key, 16) >= 0
    body["spec"]["capacity"] = {"concurrency": 50}
    body["metadata"]["generation"] = 2
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    assert cluster.get("v1", "Secret", "shop", "checkout-balancer")["stringData"]["cookie-key"] == key
    assert [w for w in cluster.writes if w[1] == "Secret"] == [("create", "Secret", "checkout-balancer")]
    assert key not in repr(body["status"]) and key not in repr(cluster.events)
    config = _haproxy_configs(cluster)[-1]["data"]["haproxy.cfg"]
    assert key not in config and "${SPILLWAY_COOKIE_KEY}" in config


def test_moving_off_haproxy_removes_the_balancer(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie"}}))
    reconcile(cluster, body, NOW)
    body["spec"]["balancing"] = {"provider": "Service"}
    body["metadata"]["generation"] = 2
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    deleted = sorted(_named([(kind, name) for verb, kind, name in cluster.writes if verb == "delete"]))
    assert deleted == sorted(o for o in HAPROXY_OBJECTS if o != ("Service", "checkout"))
    # The key stays until the ScalableService goes: the operator never deletes Secrets.
    assert cluster.get("v1", "Secret", "shop", "checkout-balancer") is not None
    front = cluster.get("v1", "Service", "shop", "checkout")
    assert front["spec"]["selector"]["app.kubernetes.io/component"] == "app"
    assert _condition(body, "BalancerReady")["reason"] == "ServiceBalancing"


def _balancer_pod(cluster: FakeCluster, name: str, config_map: str, terminating: bool = False) -> None:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", "labels": {
        "app.kubernetes.io/instance": "checkout", "app.kubernetes.io/component": "balancer",
        "app.kubernetes.io/managed-by": "spillway"}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-11-24T12:00:00Z"
    cluster.objects[("v1", "Pod", "shop", name)] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {
        "volumes": [{"name": "config", "configMap": {"name": config_map}}, {"name": "tmp", "emptyDir": {}}]}}


def test_a_changed_config_is_a_new_config_map_and_the_old_one_stays_while_a_pod_mounts_it(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(balancing={"provider": "HAProxy"}))
    reconcile(cluster, body, NOW)
    (old,) = [c["metadata"]["name"] for c in _haproxy_configs(cluster)]
    _balancer_pod(cluster, "checkout-haproxy-a", old)
    before = len(cluster.writes)
    body["spec"]["capacity"] = {"concurrency": 50}
    body["metadata"]["generation"] = 2
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    names = [c["metadata"]["name"] for c in _haproxy_configs(cluster)]
    (new,) = [n for n in names if n != old]
    assert old in names, "a pod started with the old config may restart: its file stays"
    volumes = cluster.get("apps/v1", "Deployment", "shop", "checkout-haproxy")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": new}} in volumes
    assert not any(w[2] == old for w in cluster.writes[before:]), "never edited in place"
    # The rollout replaces the pod; a terminating one reads nothing again.
    _balancer_pod(cluster, "checkout-haproxy-a", old, terminating=True)
    _balancer_pod(cluster, "checkout-haproxy-b", new)
    reconcile(cluster, body, NOW + timedelta(seconds=10))
    assert [c["metadata"]["name"] for c in _haproxy_configs(cluster)] == [new]
    assert ("delete", "ConfigMap", old) in cluster.writes
    writes = len(cluster.writes)
    reconcile(cluster, body, NOW + timedelta(seconds=15))
    assert len(cluster.writes) == writes, "nothing stale: nothing written"


def test_dropping_the_session_store_removes_its_condition(cluster: FakeCluster) -> None:
    body = resource(minimal_spec(sessionStore={"type": "Redis"}))
    reconcile(cluster, body, NOW)
    body["spec"]["sessionStore"] = {"type": "None"}
    reconcile(cluster, body, NOW + timedelta(seconds=5))
    assert all(c["type"] != "SessionStoreReady" for c in body["status"]["conditions"])
    assert _condition(body, "BalancerReady")["reason"] == "ServiceBalancing"


# --- cluster autoscaling -------------------------------------------------------------------------

def test_a_template_without_requests_is_valid_with_a_warning_even_when_new(cluster: FakeCluster) -> None:
    body = resource(minimal_spec())
    reconcile(cluster, body, NOW)
    spec_valid = _condition(body, "SpecValid")
    assert (spec_valid["status"], spec_valid["reason"]) == ("True", "DefaultRequests")
    assert spec_valid["message"].startswith("The template states no request for app/cpu, app/memory: "
                                            "Spillway requests 100m cpu and 128Mi memory where one is missing.")
    assert ("Warning", "DefaultRequests", spec_valid["message"]) in cluster.events
    requests = cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["template"]["spec"]["containers"][0][
        "resources"]["requests"]
    assert requests == {"cpu": "100m", "memory": "128Mi"}
    events = len(cluster.events)
    reconcile(cluster, body, NOW + timedelta(seconds=30))
    assert len(cluster.events) == events, "said once"


def test_a_template_stating_its_requests_is_simply_valid(cluster: FakeCluster) -> None:
    spec = minimal_spec()
    spec["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}
    body = resource(spec)
    reconcile(cluster, body, NOW)
    assert _condition(body, "SpecValid")["reason"] == "Valid"
    assert not any(reason in ("DefaultRequests", "Valid") for _, reason, _ in cluster.events)


def _priority_class(cluster: FakeCluster, name: str = "spillway-headroom", value: int = -1) -> None:
    cluster.objects[("scheduling.k8s.io/v1", "PriorityClass", "", name)] = {"metadata": {"name": name},
                                                                            "value": value}


def test_headroom_placeholders_follow_the_spec_and_go_with_it(cluster: FakeCluster) -> None:
    _priority_class(cluster, "shop-spare")
    settings = headroom.Settings(image="mirror.example/pause:3.10.1", priority_class="shop-spare")
    body = resource(minimal_spec(replicas={"min": 4, "max": 8}, headroom={"percent": 50}))
    reconcile(cluster, body, NOW, settings=settings)
    placeholders = cluster.get("apps/v1", "Deployment", "shop", "checkout-headroom")
    assert placeholders["spec"]["replicas"] == 2
    pod = placeholders["spec"]["template"]["spec"]
    assert (pod["priorityClassName"], pod["containers"][0]["image"]) == ("shop-spare", "mirror.example/pause:3.10.1")
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": str(128 * 2**20)}
    room = _condition(body, "HeadroomReady")
    assert (room["status"], room["reason"]) == ("False", "PlaceholdersPending")
    assert reconcile(cluster, body, NOW + timedelta(seconds=5), settings=settings).writes == 0

    cluster.make_ready("Deployment", "checkout-headroom")
    reconcile(cluster, body, NOW + timedelta(seconds=10), settings=settings)
    assert _condition(body, "HeadroomReady")["reason"] == "Placeholders"
    assert ("Normal", "Placeholders", _condition(body, "HeadroomReady")["message"]) in cluster.events

    body["spec"]["headroom"] = {}
    body["metadata"]["generation"] = 2
    reconcile(cluster, body, NOW + timedelta(seconds=15), settings=settings)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-headroom") is None
    assert all(c["type"] != "HeadroomReady" for c in body["status"]["conditions"])
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout") is not None, "the app stays"


def test_the_buffer_api_installed_later_replaces_the_placeholders_without_a_spec_change(cluster: FakeCluster) -> None:
    _priority_class(cluster)
    body = resource(minimal_spec(headroom={"replicas": 1}))
    reconcile(cluster, body, NOW)
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-headroom") is not None
    cluster.crds["capacitybuffers.autoscaling.x-k8s.io"] = {
        "metadata": {"name": "capacitybuffers.autoscaling.x-k8s.io"},
        "spec": {"group": "autoscaling.x-k8s.io", "names": {"kind": "CapacityBuffer"},
                 "versions": [{"name": "v1beta1", "served": True}]}}
    reconcile(cluster, body, NOW + timedelta(seconds=30))
    assert cluster.get("apps/v1", "Deployment", "shop", "checkout-headroom") is None
    buffer = cluster.get("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer", "shop", "checkout-headroom")
    assert buffer["spec"]["scalableRef"]["name"] == "checkout"
    assert _condition(body, "HeadroomReady")["reason"] == "CapacityBuffer"
    assert reconcile(cluster, body, NOW + timedelta(seconds=60)).writes == 0


def test_headroom_of_pools_gives_each_pool_its_share(cluster: FakeCluster) -> None:
    _priority_class(cluster)
    body = resource(minimal_spec(pools=[{"name": "large", "weight": 3, "nodeSelector": {"size": "l"}},
                                        {"name": "small", "weight": 1}], headroom={"replicas": 4}))
    reconcile(cluster, body, NOW)
    large = cluster.get("apps/v1", "Deployment", "shop", "checkout-large-headroom")
    small = cluster.get("apps/v1", "Deployment", "shop", "checkout-small-headroom")
    assert (large["spec"]["replicas"], small["spec"]["replicas"]) == (3, 1)
    assert large["spec"]["template"]["spec"]["nodeSelector"] == {"size": "l"}


# --- no takeover ------------------------------------------------------------------------------------

def _named_config(body: dict[str, Any]) -> str:
    scratch = FakeCluster()
    reconcile(scratch, copy.deepcopy(body), NOW)
    return str(_haproxy_configs(scratch)[0]["metadata"]["name"])


def _theirs(cluster: FakeCluster, api_version: str, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    """An object of a child's name that someone else made: no owner reference."""
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "shop"}, **extra}
    cluster.objects[(api_version, kind, "shop", name)] = obj
    return copy.deepcopy(obj)


@pytest.mark.parametrize(("api_version", "kind", "name", "spec", "extra"), [
    ("v1", "Service", "checkout", {}, {"spec": {"selector": {"app": "theirs"}}}),
    ("apps/v1", "Deployment", "checkout", {}, {"spec": {"replicas": 7, "selector": {"matchLabels": {"a": "b"}}}}),
    ("policy/v1", "PodDisruptionBudget", "checkout", {}, {"spec": {"maxUnavailable": 0}}),
    ("v1", "ConfigMap", "<the haproxy.cfg's>", {"balancing": {"provider": "HAProxy"}}, {"data": {"x": "y"}}),
    ("v1", "Secret", "checkout-balancer", {"balancing": {"provider": "HAProxy", "affinity": {"type": "Cookie"}}},
     {"data": {"cookie-key": "dGhlaXJz"}}),
    ("v1", "Secret", "checkout-redis-password", {"sessionStore": {"type": "Redis"}},
     {"data": {"password": "dGhlaXItb3duLXBhc3N3b3JkLTAxMjM0NTY3ODk="}}),
])
def test_a_childs_name_held_by_someone_elses_object_is_a_name_conflict_and_it_is_left_untouched(
        cluster: FakeCluster, api_version: str, kind: str, name: str, spec: dict[str, Any],
        extra: dict[str, Any]) -> None:
    body = resource(minimal_spec(**spec))
    if name == "<the haproxy.cfg's>":  # content-named: the name this spec's config gets
        name = _named_config(body)
    before = _theirs(cluster, api_version, kind, name, **extra)
    reconcile(cluster, body, NOW)
    assert cluster.objects[(api_version, kind, "shop", name)] == before, "their object is untouched"
    assert not any(w[1:] == (kind, name) for w in cluster.writes if w[0] != "status")
    ready = _condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert ready["message"] == (f"{kind} {name} exists and is not this ScalableService's; Spillway leaves it "
                                f"untouched. Rename the ScalableService, or delete or rename that {kind}.")
    assert ("Warning", "NameConflict", ready["message"]) in cluster.events


def test_a_second_service_targeting_a_targeted_deployment_is_refused(cluster: FakeCluster) -> None:
    cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "legacy", "namespace": "shop"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "legacy"}}, "template": {}}})
    first = resource({"targetRef": {"name": "legacy"}, "port": 8080, "replicas": {"min": 3, "max": 6}}, name="first")
    second = resource({"targetRef": {"name": "legacy"}, "port": 8080, "replicas": {"min": 5, "max": 6}},
                      name="second")
    first["metadata"].update(uid="first-uid", creationTimestamp="2026-11-24T11:00:00Z")
    second["metadata"].update(uid="second-uid", creationTimestamp="2026-11-24T11:30:00Z")
    for body in (first, second):
        cluster.objects[("spillway.io/v1alpha1", "ScalableService", "shop", body["metadata"]["name"])] = body
    reconcile(cluster, first, NOW)
    cluster.writes.clear()
    reconcile(cluster, second, NOW)
    assert [w for w in cluster.writes if w[0] != "status"] == []
    assert cluster.get("apps/v1", "Deployment", "shop", "legacy")["spec"]["replicas"] == 3
    ready = _condition(second, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TargetTaken")
    assert ready["message"] == ("Deployment 'legacy' (spec.targetRef) is already scaled by ScalableService "
                                "'first'; Spillway leaves it to that one.")
    assert _condition(first, "Ready")["reason"] != "TargetTaken"
