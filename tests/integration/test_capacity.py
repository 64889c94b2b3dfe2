"""Working with cluster capacity on the real control plane: the real kube-scheduler places (and
preempts) pods on kwok's fake nodes, here ones this module makes with little allocatable CPU and
a taint of its own, so that nothing else lands on them and the tests control how much room
there is. A node added mid-test stands in for the one a cluster autoscaler would add.

The scaling signal comes from a real Prometheus scraping an exporter whose values the test
drives (as in test_autoscaling.py); the CapacityBuffer API comes from Karpenter's released CRD
(tests/cluster/crds.sh), with no autoscaler behind it: the test checks what Spillway renders and
that the API server accepts it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.crds import install_crds
from tests.integration.components import (
    DrivenExporter,
    drive_haproxy,
    haproxy_scrape_labels,
    prometheus_scraping,
    wait_until,
)
from tests.integration.harness import (
    Kubectl,
    audit_offset,
    condition,
    operator_writes,
    running_operator,
    scalable_service,
)

pytestmark = pytest.mark.integration
INTERVAL = 2.0
LABEL = "spillway.io/capacity-test"
APP_CPU = "500m"  # four app pods fill a node of 2 CPUs


class Nodes:
    """Fake nodes of this test, tainted and labelled for its namespace; removed by name."""

    def __init__(self, k: Kubectl, namespace: str) -> None:
        self.k, self.namespace, self.names = k, namespace, []

    def add(self, cpu: str) -> str:
        name = f"{self.namespace}-{len(self.names)}"
        self.k.apply({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                                       "kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok", LABEL: self.namespace}},
            "spec": {"taints": [{"key": LABEL, "value": self.namespace, "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"}},
        })
        self.names.append(name)
        self.k.wait_for("node", name, "", lambda n: (condition(n, "Ready") or {}).get("status") == "True",
                        timeout=30, what=f"fake node {name} Ready")
        return name

    def remove(self) -> None:
        for name in self.names:
            self.k.run("delete", "node", name, "--wait=false", check=False)


@pytest.fixture
def nodes(k: Kubectl) -> Iterator[tuple[str, Nodes]]:
    ns = k.namespace("capacity")
    made = Nodes(k, ns)
    try:
        yield ns, made
    finally:
        k.run("delete", "namespace", ns, "--wait=false", check=False)
        made.remove()


def _template(ns: str) -> dict[str, Any]:
    return {"spec": {
        "nodeSelector": {LABEL: ns},
        "tolerations": [{"key": LABEL, "operator": "Equal", "value": ns, "effect": "NoSchedule"}],
        "containers": [{"name": "app", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                        "args": ["netexec", "--http-port=8080"], "ports": [{"name": "http", "containerPort": 8080}],
                        "resources": {"requests": {"cpu": APP_CPU, "memory": "64Mi"}},
                        "securityContext": {"runAsUser": 65532}}]}}


def _pods(k: Kubectl, ns: str, component: str) -> list[dict[str, Any]]:
    return k.items("pods", ns, f"app.kubernetes.io/component={component}")


def _running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def _unschedulable(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                                   for c in (p.get("status") or {}).get("conditions") or [])]


def _queue(exporter: DrivenExporter, queue: float) -> None:
    drive_haproxy(exporter, "web", queue=queue, served=20, arrivals_per_second=40, total_time_seconds=0.05)


def test_a_scale_out_beyond_the_nodes_shows_capacity_pending_holds_and_resumes_as_a_node_arrives(
        k: Kubectl, kube: Any, nodes: tuple[str, Nodes]) -> None:
    ns, fake = nodes
    fake.add(cpu="2")
    with DrivenExporter() as exporter:
        _queue(exporter, 0)
        with prometheus_scraping(exporter, haproxy_scrape_labels(ns, "web")) as prom, running_operator(kube.kubeconfig):
            k.apply(scalable_service("web", ns, template=_template(ns), replicas={"min": 2, "max": 30}, scaling={
                "prometheus": {"url": prom.url, "timeout": "2s"}, "interval": f"{INTERVAL:g}s",
                "metricsSource": "HAProxy", "targets": {"queuePerReplica": 10},
                "behavior": {"scaleUp": {"maxStepPods": 30}, "scaleDown": {"stabilizationWindow": "10m"}}}))
            k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "CapacityPending") or {}).get("status") == "False",
                       timeout=60, what="signals read, every replica scheduled")

            # A queue of 80 asks for 8 replicas; the node holds 4.
            _queue(exporter, 80)
            ssvc = k.wait_for("ssvc", "web", ns, lambda s: (s.get("status") or {}).get("unschedulableReplicas") == 4,
                              timeout=40, what="4 replicas Unschedulable")
            pending = condition(ssvc, "CapacityPending")
            assert pending is not None and (pending["status"], pending["reason"]) == ("True", "Unschedulable")
            assert pending["message"].startswith("4 of 8 replicas wait for a node")
            # The scheduler's own words, e.g. "0/5 nodes are available: 1 Insufficient cpu, ...".
            assert "Insufficient cpu" in pending["message"], pending["message"]
            assert len(_unschedulable(_pods(k, ns, "app"))) == 4
            warnings = [e for e in k.items("events.events.k8s.io", ns)
                        if e.get("reason") == "Unschedulable" and e.get("type") == "Warning"]
            assert warnings and warnings[0]["note"].startswith("4 of 8 replicas wait for a node")
            shown = k.run("get", "ssvc", "web", "-n", ns).stdout.splitlines()
            header, row = shown[0].split(), shown[1].split()
            assert row[header.index("UNSCHEDULABLE")] == "4", shown

            # More load while they wait: the engine asks for no more (no scale write in three
            # intervals) and says why.
            since = audit_offset(kube)
            _queue(exporter, 150)
            ssvc = k.wait_for("ssvc", "web", ns, lambda s: (s["status"].get("signals") or {}).get("queueDepth") == 150,
                              timeout=30, what="the queue of 150 read")
            time.sleep(3 * INTERVAL)
            assert k.get("deployment", "web", ns)["spec"]["replicas"] == 8
            limited = condition(k.get("ssvc", "web", ns), "ScalingLimited")
            assert limited is not None and limited["reason"] == "CapacityPending", limited
            assert [w for w in operator_writes(kube, ns, since) if "deployments/scale" in w] == []

            # A node arrives (what a cluster autoscaler does for Pending pods): the four are
            # scheduled, and the engine resumes: 15 asked, 12 fit on the two nodes.
            fake.add(cpu="4")
            k.wait_for("deployment", "web", ns, lambda d: d["spec"]["replicas"] == 15, timeout=40,
                       what="scale-out resumed to 15")
            ssvc = k.wait_for("ssvc", "web", ns, lambda s: s["status"].get("unschedulableReplicas") == 3,
                              timeout=40, what="3 of 15 waiting")
            assert len(_running(_pods(k, ns, "app"))) == 12
            k.run("delete", "ssvc", "web", "-n", ns, "--wait=true", "--timeout=60s")


def test_headroom_placeholders_are_preempted_by_a_scale_out_and_bring_a_node_for_themselves(
        k: Kubectl, kube: Any, nodes: tuple[str, Nodes]) -> None:
    ns, fake = nodes
    first = fake.add(cpu="2")
    priority_class = f"{ns}-headroom"
    k.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": priority_class},
             "value": -1, "preemptionPolicy": "Never", "globalDefault": False})
    try:
        with running_operator(kube.kubeconfig):
            k.apply(scalable_service("web", ns, template=_template(ns), replicas={"min": 2, "max": 10},
                                     headroom={"replicas": 2, "mechanism": "Placeholders",
                                               "priorityClassName": priority_class}))
            ssvc = k.wait_for("ssvc", "web", ns,
                              lambda s: (condition(s, "HeadroomReady") or {}).get("reason") == "Placeholders",
                              timeout=60, what="two placeholders running")
            assert condition(ssvc, "HeadroomReady")["status"] == "True"
            placeholders = _running(_pods(k, ns, "headroom"))
            assert len(placeholders) == 2
            spec = placeholders[0]["spec"]
            assert spec["priorityClassName"] == priority_class and spec["priority"] == -1
            assert spec["containers"][0]["resources"]["requests"]["cpu"] == APP_CPU
            assert {p["spec"]["nodeName"] for p in placeholders} == {first}  # the node is full now

            # Scale out by one: the new app pod takes a placeholder's room, no node added. (One
            # preemptor: with two at once, kube-scheduler 1.36 once left the second nominated but
            # unbound for 30 s after its victim was gone, a scheduler race this test is not about.)
            started = time.monotonic()
            k.run("patch", "ssvc", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":{"min":3}}}')
            k.wait_for("deployment", "web", ns, lambda d: (d.get("status") or {}).get("readyReplicas") == 3,
                       timeout=60, what="three app pods ready")
            took = time.monotonic() - started
            app = _running(_pods(k, ns, "app"))
            assert len(app) == 3 and {p["spec"]["nodeName"] for p in app} == {first}
            assert len(fake.names) == 1
            assert took < 45, f"the app waited {took:.0f}s for room it should have preempted"
            # The evicted placeholder waits for a node; the condition says so.
            k.wait_for("ssvc", "web", ns,
                       lambda s: (condition(s, "HeadroomReady") or {}).get("reason") == "PlaceholdersPending",
                       timeout=30, what="HeadroomReady=False PlaceholdersPending")
            assert len(_unschedulable(_pods(k, ns, "headroom"))) == 1
            assert len(_running(_pods(k, ns, "headroom"))) == 1
            preempted = [e for e in k.items("events", ns) if e.get("reason") == "Preempted"]
            assert preempted, "the scheduler preempted no placeholder"

            # The node a cluster autoscaler would add for it: the placeholder runs there.
            second = fake.add(cpu="2")
            k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "HeadroomReady") or {}).get("reason") == "Placeholders",
                       timeout=40, what="placeholders running again")
            assert second in {p["spec"]["nodeName"] for p in _running(_pods(k, ns, "headroom"))}
            k.run("delete", "ssvc", "web", "-n", ns, "--wait=true", "--timeout=60s")
            # The garbage collector removes the placeholders with their owner.
            wait_until(lambda: k.items("deployments", ns, "app.kubernetes.io/component=headroom") == [], 30,
                       "the placeholders removed with the ScalableService")
    finally:
        k.run("delete", "priorityclass", priority_class, "--wait=false", check=False)


def test_with_the_capacity_buffer_api_headroom_is_a_capacity_buffer_the_api_server_accepts(
        k: Kubectl, kube: Any) -> None:
    names = install_crds(kube.kubectl, ["capacity-buffer"])
    ns = k.namespace("buffer")
    try:
        with running_operator(kube.kubeconfig):
            k.apply(scalable_service("web", ns, replicas={"min": 2, "max": 10},
                                     headroom={"percent": 50, "minReplicas": 1}))
            ssvc = k.wait_for("ssvc", "web", ns,
                              lambda s: (condition(s, "HeadroomReady") or {}).get("reason") == "CapacityBuffer",
                              timeout=60, what="HeadroomReady via a CapacityBuffer")
            assert condition(ssvc, "HeadroomReady")["status"] == "True"
            buffer = k.get("capacitybuffers.autoscaling.x-k8s.io", "web-headroom", ns)
            assert buffer is not None
            assert buffer["spec"]["scalableRef"] == {"apiGroup": "apps", "kind": "Deployment", "name": "web"}
            assert buffer["spec"]["replicas"] == 1
            # The API server's default from the released schema.
            assert buffer["spec"]["provisioningStrategy"] == "buffer.x-k8s.io/active-capacity"
            assert k.items("deployments", ns, "app.kubernetes.io/component=headroom") == []

            # The room follows the app's size: 6 replicas, 50 % of them.
            k.run("patch", "ssvc", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":{"min":6}}}')
            k.wait_for("capacitybuffers.autoscaling.x-k8s.io", "web-headroom", ns,
                       lambda b: b["spec"]["replicas"] == 3, timeout=30, what="the buffer grown to 3")

            # Headroom dropped from the spec: the buffer goes.
            k.run("patch", "ssvc", "web", "-n", ns, "--type=json", "-p", '[{"op":"remove","path":"/spec/headroom"}]')
            k.wait_for("ssvc", "web", ns, lambda s: condition(s, "HeadroomReady") is None, timeout=30,
                       what="HeadroomReady removed")
            assert k.get("capacitybuffers.autoscaling.x-k8s.io", "web-headroom", ns) is None
            k.run("delete", "ssvc", "web", "-n", ns, "--wait=true", "--timeout=60s")
    finally:
        k.run("delete", "namespace", ns, "--wait=false", check=False)
        for name in names:
            k.run("delete", "crd", name, "--wait=false", check=False)
