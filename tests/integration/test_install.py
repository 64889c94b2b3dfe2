"""Installing Spillway the two ways users do, and running it with exactly the chart's RBAC."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.components import DrivenExporter, prometheus_scraping, wait_until
from tests.integration.harness import ROOT, Kubectl, condition, scalable_service

pytestmark = pytest.mark.integration
CHART = ROOT / "charts" / "spillway"
INSTALL = ROOT / "manifests" / "install.yaml"
IMAGE = os.environ.get("SPILLWAY_IMAGE", "")
OPERATOR_USER = "system:serviceaccount:spillway-system:spillway"


def _image_values() -> list[str]:
    if not IMAGE:
        return []  # fake nodes run no containers: the default image never needs to exist
    repository, _, tag = IMAGE.rpartition(":")
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", f"image.pullPolicy={os.environ.get('SPILLWAY_IMAGE_PULL_POLICY', 'IfNotPresent')}"]


def helm(kube: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([kube.helm, f"--kubeconfig={kube.kubeconfig}", *args], capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
    return result


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


def test_helm_install_upgrade_test_and_uninstall(kube: Any) -> None:
    k = Kubectl(kube)
    restricted_namespace(k, "spillway-system")
    helm(kube, "install", "spillway", str(CHART), "-n", "spillway-system", *_image_values(), "--wait",
         "--timeout", "3m")
    deployment = k.wait_for("deployment", "spillway", "spillway-system",
                            lambda d: d["status"].get("availableReplicas") == 2, what="2 available operator pods")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "spillway"
    assert k.get("crd", "scalableservices.spillway.io", "default") is not None
    if IMAGE:  # a real image runs only where a real kubelet does (kind); fake nodes run no containers
        assert "Phase:          Succeeded" in helm(kube, "test", "spillway", "-n", "spillway-system").stdout

    helm(kube, "upgrade", "spillway", str(CHART), "-n", "spillway-system", *_image_values(), "--set", "replicaCount=3",
         "--set", "resources.requests.cpu=100m", "--wait", "--timeout", "3m")
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
    # Everything but the CRDs, which other tests' resources still use (deleting a CRD deletes
    # every ScalableService with it).
    kept = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d and d["kind"] != "CustomResourceDefinition"]
    k.run("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=120s",
          stdin=yaml.safe_dump_all(kept))
    wait_until(lambda: leftovers(k, "spillway-system") == [] and k.get("namespace", "spillway-system", "default")
               is None, 120, "install.yaml removed")


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
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom", "namespace": ns},
              "data": {"token": base64.b64encode(b"not-checked").decode()}}
    k.apply(secret)
    log = tmp_path / "operator.log"
    with DrivenExporter() as exporter:
        exporter.set(**{'haproxy_backend_current_queue{proxy="shop"}': 45,
                        'haproxy_backend_current_sessions{proxy="shop"}': 5,
                        'haproxy_backend_http_requests_total{proxy="shop"}': 10,
                        'haproxy_backend_response_time_average_seconds{proxy="shop"}': 0.02})
        with prometheus_scraping(exporter, {"namespace": ns}) as prom, log.open("wb") as out:
            operator = subprocess.Popen(
                [str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(config),
                 "--peering", "spillway", "--priority", "100", "--liveness", "", "--metrics-port", "0"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
                assert k.get("clusterkopfpeering.kopf.dev", "spillway", "default") is not None
            finally:
                os.killpg(operator.pid, 15)
                operator.wait(30)
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
        assert can("get", "secrets", "-n", "team-b") == "no"
        assert can("get", "secrets", "-n", "kube-system") == "no"
        assert can("patch", "deployments", "-n", "team-b") == "no"
        assert can("patch", "deployments", "-n", "team-a") == "yes"
        assert can("create", "clusterroles") == "no"
    finally:
        helm(kube, "uninstall", "spillway-ns", "-n", "spillway-ns-system", "--wait")

