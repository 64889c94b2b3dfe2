"""The test bed itself: a real control plane whose controllers, scheduler, fake nodes and
admission behave as a cluster's do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Kubectl

pytestmark = pytest.mark.integration

RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                      "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                  "securityContext": {"allowPrivilegeEscalation": False,
                                                      "capabilities": {"drop": ["ALL"]}}}]}


@pytest.fixture(scope="module")
def k(kube: Any) -> Kubectl:
    return Kubectl(kube)


def test_server_reports_its_pinned_version(kube: Any) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    if kube.audit_log is None:  # an existing cluster (kind) runs a version of its own
        assert version["gitVersion"].startswith("v1.") and version["major"] == "1"
    else:
        assert version["gitVersion"] == "v1.36.3" and (version["major"], version["minor"]) == ("1", "36")


def test_deployment_pods_run_and_garbage_collection_cascades(k: Kubectl) -> None:
    ns = k.namespace("bed")
    k.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}}, "spec": RESTRICTED_POD}}})
    k.wait_for("deployment", "web", ns, lambda d: d["status"].get("readyReplicas") == 2, what="2 ready pods")
    pods = k.items("pods", ns, "app=web")
    assert {p["status"]["phase"] for p in pods} == {"Running"} and all(p["status"].get("podIP") for p in pods)
    k.run("delete", "deployment", "web", "-n", ns)
    k.run("wait", "--for=delete", "pod", "-l", "app=web", "-n", ns, "--timeout=60s")
    assert k.items("replicasets", ns, "app=web") == []


def test_statefulset_and_disruption_budget_work(k: Kubectl) -> None:
    ns = k.namespace("bed")
    k.apply({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
             "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                      "template": {"metadata": {"labels": {"app": "db"}}, "spec": RESTRICTED_POD}}})
    k.apply({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": ns},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    k.wait_for("pod", "db-0", ns, lambda p: p["status"].get("phase") == "Running", what="db-0 Running")
    k.wait_for("pdb", "db", ns, lambda p: p.get("status", {}).get("expectedPods") == 1, what="the PDB to count db-0")


def test_pod_security_admission_refuses_a_pod_below_the_restricted_profile(k: Kubectl) -> None:
    ns = k.namespace("bed")
    result = k.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loose", "namespace": ns},
                      "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}, check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert k.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tight", "namespace": ns},
                    "spec": RESTRICTED_POD}).returncode == 0
