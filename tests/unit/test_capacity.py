"""Headroom and the cluster's capacity through a fake API server: which mechanism is chosen, what
HeadroomReady says, what is removed when the mechanism or the spec changes, and how pods the
scheduler could not place are counted."""

from __future__ import annotations

from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.capacity import HeadroomOutcome, reconcile_headroom, unschedulable
from spillway.resources import headroom
from spillway.resources.meta import Owner
from spillway.resources.workload import build_app
from tests.unit.conftest import CONTAINER, minimal_spec
from tests.unit.fakes import FakeCluster

OWNER = Owner(name="checkout", namespace="shop", uid="ssvc-uid")
SETTINGS = headroom.Settings(image="mirror.example/pause:3.10.1", priority_class="spillway-headroom")
BUFFER = ("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer", "shop", "checkout-headroom")
PLACEHOLDERS = ("apps/v1", "Deployment", "shop", "checkout-headroom")


def _priority_class(cluster: FakeCluster, name: str, value: int) -> None:
    cluster.objects[("scheduling.k8s.io/v1", "PriorityClass", "", name)] = {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}


def _serve_buffers(cluster: FakeCluster, *versions: str) -> None:
    cluster.crds[headroom.BUFFER_CRD] = {
        "metadata": {"name": headroom.BUFFER_CRD},
        "spec": {"group": "autoscaling.x-k8s.io", "names": {"kind": "CapacityBuffer"},
                 "versions": [{"name": v, "served": True} for v in versions or ("v1beta1",)]}}


@pytest.fixture
def cluster() -> FakeCluster:
    found = FakeCluster()
    _priority_class(found, "spillway-headroom", -1)
    return found


def _headroom(cluster: FakeCluster, room: dict[str, Any] | None, *, cleanup: bool = False,
              previous: str | None = None, template: dict[str, Any] | None = None,
              replicas: int = 4) -> HeadroomOutcome:
    overrides: dict[str, Any] = {} if room is None else {"headroom": room}
    if template is not None:
        overrides["template"] = template
    spec = parse_spec(minimal_spec(**overrides))
    deployments = {o["metadata"]["name"]: o for o in build_app(OWNER, spec, replicas) if o["kind"] == "Deployment"}
    return reconcile_headroom(cluster, OWNER, spec, replicas, deployments, SETTINGS, cleanup, previous)


def test_without_the_buffer_api_placeholders_run_and_are_ready_once_they_run(cluster: FakeCluster) -> None:
    outcome = _headroom(cluster, {"replicas": 2})
    assert outcome.writes == 1
    placeholders = cluster.get(*PLACEHOLDERS)
    assert placeholders is not None and placeholders["spec"]["replicas"] == 2
    assert placeholders["spec"]["template"]["spec"]["priorityClassName"] == "spillway-headroom"
    assert placeholders["spec"]["template"]["spec"]["containers"][0]["image"] == SETTINGS.image
    assert outcome.condition is not None
    ready, reason, message = outcome.condition
    assert (ready, reason) == (False, "PlaceholdersPending") and message.startswith("0 of 2 placeholder pods run")

    cluster.objects[PLACEHOLDERS]["status"] = {"readyReplicas": 2}
    outcome = _headroom(cluster, {"replicas": 2}, previous=reason)
    assert outcome.condition is not None and outcome.condition[:2] == (True, "Placeholders")
    assert outcome.writes == 0


def test_where_the_buffer_api_is_served_a_capacity_buffer_and_no_placeholders(cluster: FakeCluster) -> None:
    _serve_buffers(cluster)
    outcome = _headroom(cluster, {"replicas": 3})
    buffer = cluster.get(*BUFFER)
    assert buffer is not None and buffer["spec"] == {
        "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "checkout"}, "replicas": 3}
    assert cluster.get(*PLACEHOLDERS) is None
    assert outcome.condition is not None and outcome.condition[:2] == (True, "CapacityBuffer")


def test_a_buffer_api_served_at_another_version_only_means_placeholders(cluster: FakeCluster) -> None:
    _serve_buffers(cluster, "v1alpha1")
    outcome = _headroom(cluster, {"replicas": 1})
    assert cluster.get(*PLACEHOLDERS) is not None and cluster.get(*BUFFER) is None
    assert outcome.condition is not None and outcome.condition[1] == "PlaceholdersPending"


def test_the_buffer_api_appearing_replaces_the_placeholders(cluster: FakeCluster) -> None:
    first = _headroom(cluster, {"replicas": 2})
    assert first.condition is not None and cluster.get(*PLACEHOLDERS) is not None
    _serve_buffers(cluster)  # a cluster autoscaler upgrade installs the CRD; the spec is the same
    outcome = _headroom(cluster, {"replicas": 2}, previous=first.condition[1])
    assert cluster.get(*PLACEHOLDERS) is None, "the mechanism changed: the placeholders are removed"
    assert cluster.get(*BUFFER) is not None
    assert ("delete", "Deployment", "checkout-headroom") in cluster.writes
    assert outcome.condition is not None and outcome.condition[1] == "CapacityBuffer"
    assert outcome.writes == 2


def test_the_buffer_api_going_away_brings_the_placeholders_back(cluster: FakeCluster) -> None:
    _serve_buffers(cluster)
    first = _headroom(cluster, {"replicas": 2})
    assert first.condition is not None
    del cluster.crds[headroom.BUFFER_CRD]
    outcome = _headroom(cluster, {"replicas": 2}, previous=first.condition[1])
    assert cluster.get(*PLACEHOLDERS) is not None
    assert outcome.condition is not None and outcome.condition[1] == "PlaceholdersPending"


def test_mechanism_placeholders_is_kept_where_buffers_are_served(cluster: FakeCluster) -> None:
    _serve_buffers(cluster)
    _headroom(cluster, {"replicas": 1, "mechanism": "Placeholders"})
    assert cluster.get(*PLACEHOLDERS) is not None and cluster.get(*BUFFER) is None


@pytest.mark.parametrize("served", [False, True])
def test_headroom_removed_from_the_spec_removes_its_objects(cluster: FakeCluster, served: bool) -> None:
    if served:
        _serve_buffers(cluster)
    _headroom(cluster, {"replicas": 2})
    key = BUFFER if served else PLACEHOLDERS
    assert cluster.get(*key) is not None
    outcome = _headroom(cluster, None, cleanup=True)
    assert outcome == HeadroomOutcome(None, 1)
    assert cluster.get(*key) is None


def test_headroom_never_asked_for_writes_nothing(cluster: FakeCluster) -> None:
    assert _headroom(cluster, None) == HeadroomOutcome(None, 0)
    assert cluster.writes == []


def test_a_missing_priority_class_runs_no_placeholders(cluster: FakeCluster) -> None:
    del cluster.objects[("scheduling.k8s.io/v1", "PriorityClass", "", "spillway-headroom")]
    outcome = _headroom(cluster, {"replicas": 2})
    assert outcome.condition is not None
    ready, reason, message = outcome.condition
    assert (ready, reason) == (False, "PriorityClassNotFound")
    assert "'spillway-headroom' does not exist" in message
    assert cluster.writes == []


def test_the_spec_may_name_its_own_priority_class(cluster: FakeCluster) -> None:
    _priority_class(cluster, "shop-spare", -5)
    _headroom(cluster, {"replicas": 1, "priorityClassName": "shop-spare"})
    placeholders = cluster.get(*PLACEHOLDERS)
    assert placeholders is not None
    assert placeholders["spec"]["template"]["spec"]["priorityClassName"] == "shop-spare"


@pytest.mark.parametrize(("placeholder_value", "app_class", "app_value"), [
    (0, None, None),  # an app without a class has priority 0: equal is not lower
    (5, None, None),
    (-1, "shop-low", -1),
    (-1, "shop-lower", -100),
])
def test_a_priority_class_not_below_the_apps_runs_no_placeholders(
        cluster: FakeCluster, placeholder_value: int, app_class: str | None, app_value: int | None) -> None:
    _priority_class(cluster, "spillway-headroom", placeholder_value)
    template: dict[str, Any] = {"spec": {"containers": [CONTAINER]}}
    if app_class is not None:
        assert app_value is not None
        _priority_class(cluster, app_class, app_value)
        template["spec"]["priorityClassName"] = app_class
    outcome = _headroom(cluster, {"replicas": 2}, template=template)
    assert outcome.condition is not None
    ready, reason, message = outcome.condition
    assert (ready, reason) == (False, "PriorityNotLower")
    assert f"has value {placeholder_value}, not below the app pods' {app_value or 0}" in message
    assert cluster.get(*PLACEHOLDERS) is None


def test_an_app_of_higher_priority_may_keep_placeholders_at_zero(cluster: FakeCluster) -> None:
    _priority_class(cluster, "spillway-headroom", 0)
    _priority_class(cluster, "shop-high", 1000)
    template = {"spec": {"priorityClassName": "shop-high", "containers": [CONTAINER]}}
    outcome = _headroom(cluster, {"replicas": 2}, template=template)
    assert outcome.condition is not None and outcome.condition[1] == "PlaceholdersPending"


def test_mechanism_capacity_buffer_without_the_api_says_so_and_keeps_no_room(cluster: FakeCluster) -> None:
    outcome = _headroom(cluster, {"replicas": 2, "mechanism": "CapacityBuffer"})
    assert outcome.condition is not None
    ready, reason, message = outcome.condition
    assert (ready, reason) == (False, "APINotInstalled")
    assert "capacitybuffers.autoscaling.x-k8s.io does not serve autoscaling.x-k8s.io/v1beta1" in message
    assert cluster.get(*PLACEHOLDERS) is None and cluster.writes == []


def test_requests_that_cannot_be_read_are_a_condition_not_a_crash(cluster: FakeCluster) -> None:
    template = {"spec": {"containers": [{**CONTAINER, "resources": {"requests": {"cpu": "lots", "memory": "1Gi"}}}]}}
    outcome = _headroom(cluster, {"replicas": 1}, template=template)
    assert outcome.condition is not None
    ready, reason, message = outcome.condition
    assert (ready, reason) == (False, "InvalidRequests") and "'lots' is not a Kubernetes quantity" in message
    assert cluster.writes == []


@pytest.mark.parametrize("served", [False, True])
def test_a_second_call_with_nothing_changed_writes_nothing(cluster: FakeCluster, served: bool) -> None:
    if served:
        _serve_buffers(cluster)
    first = _headroom(cluster, {"percent": 50}, cleanup=True)
    assert first.writes == 1 and first.condition is not None
    writes = len(cluster.writes)
    again = _headroom(cluster, {"percent": 50}, cleanup=True, previous=first.condition[1])
    assert again.writes == 0 and len(cluster.writes) == writes
    assert again.condition == first.condition


def test_a_percent_follows_the_app_as_it_scales(cluster: FakeCluster) -> None:
    _headroom(cluster, {"percent": 50}, replicas=4)
    placeholders = cluster.get(*PLACEHOLDERS)
    assert placeholders is not None and placeholders["spec"]["replicas"] == 2
    _headroom(cluster, {"percent": 50}, replicas=9)
    placeholders = cluster.get(*PLACEHOLDERS)
    assert placeholders is not None and placeholders["spec"]["replicas"] == 5


# --- unschedulable -------------------------------------------------------------------------------

APP_LABELS = {"app.kubernetes.io/instance": "checkout", "app.kubernetes.io/component": "app",
              "app.kubernetes.io/managed-by": "spillway"}


def _pod(cluster: FakeCluster, name: str, *, phase: str = "Pending", condition: dict[str, str] | None = None,
         node: str | None = None, deleting: bool = False, labels: dict[str, str] | None = None) -> None:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", "labels": labels or APP_LABELS}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-24T12:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if condition is not None:
        status["conditions"] = [{"type": "PodScheduled", **condition}]
    cluster.objects[("v1", "Pod", "shop", name)] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"nodeName": node} if node else {}, "status": status}


UNSCHEDULABLE = {"status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient cpu."}


def test_only_pods_the_scheduler_found_no_node_for_are_counted(cluster: FakeCluster) -> None:
    _pod(cluster, "a", condition=UNSCHEDULABLE)
    _pod(cluster, "b", condition={**UNSCHEDULABLE, "message": "0/3 nodes are available: 3 Insufficient memory."})
    _pod(cluster, "running", phase="Running", node="node-1", condition={"status": "True"})
    _pod(cluster, "bound", node="node-2", condition={"status": "True"})  # pulling its image
    _pod(cluster, "gated", condition={"status": "False", "reason": "SchedulingGated"})
    _pod(cluster, "new")  # not looked at by the scheduler yet
    _pod(cluster, "leaving", condition=UNSCHEDULABLE, deleting=True)
    _pod(cluster, "placeholder", condition=UNSCHEDULABLE, labels={**APP_LABELS, "app.kubernetes.io/component":
                                                                  "headroom"})
    found = unschedulable(cluster, "shop", APP_LABELS)
    assert found.count == 2
    assert found.message == "0/3 nodes are available: 3 Insufficient cpu."


def test_no_unschedulable_pods_is_zero_and_no_message(cluster: FakeCluster) -> None:
    _pod(cluster, "running", phase="Running", node="node-1", condition={"status": "True"})
    assert (unschedulable(cluster, "shop", APP_LABELS).count, unschedulable(cluster, "shop", APP_LABELS).message) == (
        0, "")
