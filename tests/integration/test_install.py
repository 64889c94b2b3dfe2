"""Installing Spillway the two ways users do, and running it with exactly the chart's RBAC."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.components import (
    DrivenExporter, drive_haproxy, haproxy_scrape_labels, prometheus_scraping, wait_until,
)
from tests.cluster.crds import install_crds
from tests.integration.harness import ROOT, Kubectl, OperatorProcess, condition, scalable_service
from tests.integration.test_cluster import RESTRICTED_POD
from tests.integration.test_real_node import client_pod, echo_app, last_report

pytestmark = pytest.mark.integration
CHART = ROOT / "charts" / "spillway"
INSTALL = ROOT / "manifests" / "install.yaml"
OPERATOR_USER = "system:serviceaccount:spillway-system:spillway"


def _in_cluster_values(node: Any) -> list[str]:
    """The operator's own image, built from the Dockerfile by the test bed, on the real node."""
    repository, _, tag = node.images["operator"].rpartition(":")
    values = ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never"]
    for key, value in node.placement["nodeSelector"].items():
        values += ["--set-string", f"nodeSelector.{key.replace('.', chr(92) + '.')}={value}"]
    for i, toleration in enumerate(node.placement["tolerations"]):
        values += ["--set-string", ",".join(f"tolerations[{i}].{k}={v}" for k, v in toleration.items())]
    return values


def helm(kube: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([kube.helm, f"--kubeconfig={kube.kubeconfig}", *args], capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
    return result


def _in_cluster_operator_serves_a_scalable_service(k: Kubectl, node: Any) -> None:
    ns = k.namespace("incluster")  # enforces the restricted profile
    k.apply(next(o for o in echo_app(ns, node, 1) if o["kind"] == "ConfigMap"))
    echo = next(o for o in echo_app(ns, node, 1) if o["kind"] == "Deployment")["spec"]["template"]
    k.apply({"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService", "metadata": {"name": "web", "namespace": ns},
             "spec": {"template": echo, "port": "http", "replicas": {"min": 2, "max": 4}}})
    k.wait_for("ssvc", "web", ns, lambda s: (condition(s, "Ready") or {}).get("status") == "True"
               and (s.get("status") or {}).get("readyReplicas") == 2, timeout=150,
               what="the in-cluster operator's ScalableService Ready with 2 replicas")
    pods = k.items("pod", ns, "app.kubernetes.io/instance=web")
    assert {p["spec"]["nodeName"] for p in pods} == {node.name}, "Spillway's replicas run on the real node"
    k.apply(client_pod(ns, node, "probe", {"URL": "http://web/", "MAX_SECONDS": "3", "INTERVAL": "0.05"}))
    k.wait_for("pod", "probe", ns, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), timeout=60)
    report = last_report(k, ns, "probe")
    assert report and report["failed"] == 0 and report["ok"] > 10, report
    assert set(report["pods"]) == {p["metadata"]["name"] for p in pods}, report
    k.run("delete", "namespace", ns, "--wait=false")


def restricted_namespace(k: Kubectl, name: str) -> None:
    k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})


def leftovers(k: Kubectl, namespace: str) -> list[str]:
    found = []
    for kind in ("deployment", "service", "serviceaccount", "pdb"):
        found += [f"{kind}/{o['metadata']['name']}" for o in k.items(kind, namespace)
                  if o["metadata"]["name"].startswith("spillway")]
    for kind in ("clusterrole", "clusterrolebinding"):
        items = json.loads(k.run("get", kind, "-o", "json").stdout)["items"]
        found += [f"{kind}/{o['metadata']['name']}" for o in items if o["metadata"]["name"].startswith("spillway")]
    return found


def test_helm_install_upgrade_test_and_uninstall(kube: Any, real_node: Any) -> None:
    """The operator runs inside the cluster from its locally built image, on the real node, in a
    namespace that enforces the restricted profile; it reconciles a ScalableService whose
    replicas serve real requests, and `helm test` passes for real."""
    k = Kubectl(kube)
    restricted_namespace(k, "spillway-system")
    helm(kube, "install", "spillway", str(CHART), "-n", "spillway-system", *_in_cluster_values(real_node), "--wait",
         "--timeout", "3m")
    deployment = k.wait_for("deployment", "spillway", "spillway-system",
                            lambda d: d["status"].get("availableReplicas") == 2, what="2 available operator pods")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "spillway"
    assert {p["spec"]["nodeName"] for p in k.items("pod", "spillway-system", "app.kubernetes.io/name=spillway")} \
        == {real_node.name}
    assert k.get("crd", "scalableservices.spillway.io", "default") is not None
    assert "Phase:          Succeeded" in helm(kube, "test", "spillway", "-n", "spillway-system").stdout

    _in_cluster_operator_serves_a_scalable_service(k, real_node)

    helm(kube, "upgrade", "spillway", str(CHART), "-n", "spillway-system", *_in_cluster_values(real_node),
         "--set", "replicaCount=3", "--set", "resources.requests.cpu=100m", "--wait", "--timeout", "3m")
    deployment = k.wait_for("deployment", "spillway", "spillway-system",
                            lambda d: d["status"].get("availableReplicas") == 3, what="3 available operator pods")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"

    helm(kube, "uninstall", "spillway", "-n", "spillway-system", "--wait", "--timeout", "3m")
    wait_until(lambda: leftovers(k, "spillway-system") == [], 60, "nothing left after helm uninstall")
    assert k.get("crd", "scalableservices.spillway.io", "default") is not None, "Helm keeps the CRDs"


def test_kubectl_apply_of_the_install_manifest(kube: Any) -> None:
    k = Kubectl(kube)
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(INSTALL))
    k.wait_for("deployment", "spillway", "spillway-system", lambda d: d["status"].get("availableReplicas") == 2,
               what="the operator from install.yaml")
    namespace = k.get("namespace", "spillway-system", "default")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    _the_operator_may_move_only_the_role_label(k)
    # Everything but the CRDs, which other tests' resources still use (deleting a CRD deletes
    # every ScalableService with it).
    kept = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d and d["kind"] != "CustomResourceDefinition"]
    k.run("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=120s",
          stdin=yaml.safe_dump_all(kept))
    wait_until(lambda: leftovers(k, "spillway-system") == [] and k.get("namespace", "spillway-system", "default")
               is None, 120, "install.yaml removed")


def _the_operator_may_move_only_the_role_label(k: Kubectl) -> None:
    """The install's ValidatingAdmissionPolicy: the operator's ServiceAccount, whose ClusterRole may
    patch any pod, can move the Redis role label of a pod Spillway manages and change nothing else."""
    ns = k.namespace("podpatch")
    operator = f"--as={OPERATOR_USER}"
    for name, managed_by in (("checkout-redis-0", "spillway"), ("theirs", "someone-else")):
        k.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": managed_by}},
            "spec": RESTRICTED_POD})

    def refused(*args: str) -> str:
        result = k.run(operator, *args, "-n", ns, check=False)
        return result.stderr if result.returncode != 0 else ""

    # The policy is in force once the API server has compiled it (a moment after it is created).
    wait_until(lambda: "may not change a pod's spec" in refused("set", "image", "pod/checkout-redis-0",
                                                                 "c=registry.example/evil:1"),
               60, "the pod patch policy refusing an image change")
    k.run(operator, "label", "pod", "checkout-redis-0", "spillway.io/redis-role=primary", "-n", ns)
    assert k.get("pod", "checkout-redis-0", ns)["metadata"]["labels"]["spillway.io/redis-role"] == "primary"
    k.run(operator, "label", "pod", "checkout-redis-0", "spillway.io/redis-role-", "-n", ns)
    assert "may change only the label spillway.io/redis-role" in refused(
        "label", "pod", "checkout-redis-0", "app.kubernetes.io/managed-by=someone-else", "--overwrite")
    assert "may not change a pod's annotations" in refused("annotate", "pod", "checkout-redis-0", "a=b")
    assert "only the pods Spillway manages" in refused("label", "pod", "theirs", "spillway.io/redis-role=primary")
    k.run("delete", "namespace", ns, "--wait=false")


def _token_kubeconfig(k: Kubectl, kube: Any, path: Path) -> None:
    token = k.run("create", "token", "spillway", "-n", "spillway-system", "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(kube.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "c", "user": "operator"}}],
    }))


def _forbidden(kube: Any, since: int) -> list[str]:
    refused = []
    for line in kube.audit_log.read_bytes()[since:].decode().splitlines():
        event = json.loads(line)
        if event["user"]["username"] == OPERATOR_USER and event.get("responseStatus", {}).get("code") == 403:
            ref = event.get("objectRef") or {}
            refused.append(f"{event['verb']} {ref.get('resource')}/{ref.get('subresource', '')} in "
                           f"{ref.get('namespace')}")
    return refused


def test_operator_runs_full_scenarios_with_only_the_charts_rbac(kube: Any, tmp_path: Path) -> None:
    k = Kubectl(kube)
    restricted_namespace(k, "spillway-system")
    helm(kube, "install", "spillway", str(CHART), "-n", "spillway-system", "--set", "replicaCount=1")
    config = tmp_path / "operator.kubeconfig"
    _token_kubeconfig(k, kube, config)
    since = kube.audit_log.stat().st_size if kube.audit_log else 0
    ns = k.namespace("rbac")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "prom", "namespace": ns, "labels": {"spillway.io/prometheus-credentials": "true"}},
              "data": {"token": base64.b64encode(b"not-checked").decode()}}
    k.apply(secret)
    log = tmp_path / "operator.log"
    with DrivenExporter() as exporter:
        drive_haproxy(exporter, "shop", queue=45, served=5, arrivals_per_second=10, total_time_seconds=0.02)
        with prometheus_scraping(exporter, haproxy_scrape_labels(ns, "shop")) as prom:
            operator = OperatorProcess(["--kubeconfig", str(config), "--peering", "spillway", "--priority", "100",
                                        "--liveness", "", "--metrics-port", "0"], log).start()
            try:
                k.apply(scalable_service("shop", ns, replicas={"min": 1, "max": 6}, pools=[
                    {"name": "big", "weight": 2}, {"name": "small", "weight": 1}], scaling={
                    "prometheus": {"url": prom.url, "bearerTokenSecretRef": {"name": "prom", "key": "token"}},
                    "interval": "2s", "behavior": {"scaleUp": {"maxStepPods": 10}}}))
                k.wait_for("ssvc", "shop", ns, lambda s: (s.get("status") or {}).get("desiredReplicas") == 5
                           and (condition(s, "Ready") or {}).get("status") == "True", timeout=90,
                           what="scaled to 5 over two pools and ready")
                k.run("patch", "ssvc", "shop", "-n", ns, "--type=merge", "-p",
                      '{"spec": {"pools": [{"name": "big", "weight": 2}], "disruptionBudget": {"enabled": false}}}')
                k.wait_for("deployment", "shop-big", ns, lambda d: d["spec"]["replicas"] == 5, timeout=60)
                wait_until(lambda: k.get("deployment", "shop-small", ns) is None and k.get("pdb", "shop", ns) is None,
                           60, "the removed pool and budget pruned")
                k.run("delete", "ssvc", "shop", "-n", ns, "--wait=true", "--timeout=60s")
                # The HAProxy provider: its ConfigMap, Services, PDB and Deployment, the cookie
                # key Secret created once, the CRD lookups; then a switch that lists and removes them.
                def edge_configs() -> list[str]:  # content-named: found by their labels
                    return k.run("get", "configmap", "-n", ns, "-o", "name", "-l",
                                 "app.kubernetes.io/instance=edge,app.kubernetes.io/component=balancer"
                                 ).stdout.split()

                k.apply(scalable_service("edge", ns, balancing={"provider": "HAProxy",
                                                                "affinity": {"type": "Cookie"}}))
                try:
                    wait_until(lambda: edge_configs() != []
                               and k.get("secret", "edge-balancer", ns) is not None
                               and k.get("deployment", "edge-haproxy", ns) is not None, 60, "the HAProxy balancer")
                except TimeoutError as err:
                    raise AssertionError((k.get("ssvc", "edge", ns) or {}).get("status")) from err
                k.run("patch", "ssvc", "edge", "-n", ns, "--type=merge", "-p",
                      '{"spec": {"balancing": {"provider": "Service", "affinity": {"type": "None"}}}}')
                wait_until(lambda: k.get("deployment", "edge-haproxy", ns) is None
                           and edge_configs() == [], 60, "the balancer removed")
                k.run("delete", "ssvc", "edge", "-n", ns, "--wait=true", "--timeout=60s")
                # The session store: its password Secret created, the derived ones applied, the
                # StatefulSets and NetworkPolicies, the pods listed (and the sentinels asked);
                # then a mode switch and its removal, which list and delete them.
                k.apply(scalable_service("store", ns, sessionStore={"type": "Redis", "redis": {
                    "mode": "Sentinel", "persistence": {"size": "0"}}}))
                wait_until(lambda: all(k.get(kind, name, ns) is not None for kind, name in (
                    ("secret", "store-redis-password"), ("secret", "store-redis-connection"),
                    ("statefulset", "store-redis"), ("statefulset", "store-sentinel"),
                    ("networkpolicy", "store-sentinel"))), 60, "the session store's objects")
                k.run("patch", "ssvc", "store", "-n", ns, "--type=merge", "-p",
                      '{"spec": {"sessionStore": {"redis": {"mode": "Standalone"}}}}')
                wait_until(lambda: k.get("statefulset", "store-sentinel", ns) is None, 60, "the sentinels removed")
                k.run("patch", "ssvc", "store", "-n", ns, "--type=merge", "-p",
                      '{"spec": {"sessionStore": {"type": "None"}}}')
                wait_until(lambda: k.get("statefulset", "store-redis", ns) is None, 60, "the store removed")
                k.run("delete", "ssvc", "store", "-n", ns, "--wait=true", "--timeout=60s")
                # Headroom: the chart's PriorityClass read, placeholders applied; with the
                # CapacityBuffer API, a buffer instead (the CRD looked up, the placeholders listed
                # and removed); then dropped, which removes the buffer.
                k.apply(scalable_service("room", ns, headroom={"replicas": 1}))
                k.wait_for("ssvc", "room", ns, lambda s: (condition(s, "HeadroomReady") or {}).get("reason")
                           in ("Placeholders", "PlaceholdersPending"), timeout=60, what="placeholders")
                assert k.get("deployment", "room-headroom", ns) is not None
                buffer_crds = install_crds(kube.kubectl, ["capacity-buffer"])
                try:
                    k.run("patch", "ssvc", "room", "-n", ns, "--type=merge", "-p",
                          '{"spec": {"headroom": {"mechanism": "CapacityBuffer"}}}')
                    wait_until(lambda: k.get("capacitybuffers.autoscaling.x-k8s.io", "room-headroom", ns) is not None
                               and k.get("deployment", "room-headroom", ns) is None, 150,
                               "placeholders -> buffer (the operator looks a CRD up again within a minute)")
                    k.run("patch", "ssvc", "room", "-n", ns, "--type=json", "-p",
                          '[{"op": "remove", "path": "/spec/headroom"}]')
                    wait_until(lambda: k.get("capacitybuffers.autoscaling.x-k8s.io", "room-headroom", ns) is None,
                               60, "the buffer removed")
                    k.run("delete", "ssvc", "room", "-n", ns, "--wait=true", "--timeout=60s")
                finally:
                    for name in buffer_crds:
                        k.run("delete", "crd", name, "--wait=false", check=False)
                assert k.get("clusterkopfpeering.kopf.dev", "spillway", "default") is not None
            finally:
                operator.stop()
    if kube.audit_log:  # the local control plane logs every request of the operator's account
        assert _forbidden(kube, since) == []
    output = log.read_text()
    assert '"code":403' not in output and "Forbidden" not in output, output[-3000:]
    helm(kube, "uninstall", "spillway", "-n", "spillway-system", "--wait")


def test_namespaced_install_cannot_read_secrets_elsewhere(kube: Any) -> None:
    k = Kubectl(kube)
    for name in ("team-a", "team-b", "spillway-ns-system"):
        restricted_namespace(k, name)
    helm(kube, "install", "spillway-ns", str(CHART), "-n", "spillway-ns-system", "--set", "watchNamespaces={team-a}",
         "--set", "replicaCount=1")
    user = "system:serviceaccount:spillway-ns-system:spillway-ns"

    def can(*args: str) -> str:
        return k.run("auth", "can-i", *args, f"--as={user}", check=False).stdout.strip()

    try:
        assert can("get", "secrets", "-n", "team-a") == "yes"
        assert can("list", "secrets", "-n", "team-a") == "no"
        assert can("watch", "secrets", "-n", "team-a") == "no"
        assert can("create", "secrets", "-n", "team-a") == "yes"  # the balancer's cookie key, once
        assert can("delete", "secrets", "-n", "team-a") == "no"
        assert can("update", "secrets", "-n", "team-a") == "no"
        assert can("create", "configmaps", "-n", "team-a") == "yes"  # the HAProxy balancer's config
        assert can("create", "configmaps", "-n", "team-b") == "no"
        assert can("get", "secrets", "-n", "team-b") == "no"
        assert can("get", "secrets", "-n", "kube-system") == "no"
        assert can("patch", "deployments", "-n", "team-b") == "no"
        assert can("patch", "deployments", "-n", "team-a") == "yes"
        assert can("create", "clusterroles") == "no"
    finally:
        helm(kube, "uninstall", "spillway-ns", "-n", "spillway-ns-system", "--wait")

