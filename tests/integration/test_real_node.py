"""The real node carries real requests: pods start from the locally built images, readiness gates
traffic through a ClusterIP Service while a Deployment scales 2 -> 10 -> 2, pods resolve Services
(A and SRV records) through CoreDNS, and Prometheus finds pods by Kubernetes discovery."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.node import BRIDGE, BRIDGE_MAC
from tests.integration.components import prometheus_discovering, wait_until
from tests.integration.harness import Kubectl

pytestmark = pytest.mark.integration
APPS = Path(__file__).with_name("apps")
# The `restricted` Pod Security profile, as every pod of the test bed runs it.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}


def echo_app(namespace: str, node: Any, replicas: int) -> list[dict[str, Any]]:
    labels = {"app": "echo"}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "apps", "namespace": namespace},
         "data": {"echo.py": (APPS / "echo.py").read_text(), "client.py": (APPS / "client.py").read_text()}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo", "namespace": namespace},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                  "template": {"metadata": {"labels": labels, "annotations": {
                      "prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
                      "spec": node.pod_spec(
                          securityContext=RESTRICTED_POD, terminationGracePeriodSeconds=10,
                          volumes=[{"name": "apps", "configMap": {"name": "apps"}}],
                          containers=[{
                              "name": "echo", "image": node.images["base"], "imagePullPolicy": "Never",
                              "command": ["python3", "/apps/echo.py"],
                              "env": [{"name": "READY_AFTER", "value": "2"},
                                      {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                              "ports": [{"name": "http", "containerPort": 8080}],
                              "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                                 "periodSeconds": 1, "failureThreshold": 1},
                              # Stay up while kube-proxy takes the endpoint out, then drain.
                              "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
                              "resources": {"requests": {"cpu": "10m", "memory": "24Mi"},
                                            "limits": {"memory": "64Mi"}},
                              "securityContext": RESTRICTED_CONTAINER,
                              "volumeMounts": [{"name": "apps", "mountPath": "/apps"}]}])}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo-headless", "namespace": namespace},
         "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 8080}]}},
    ]


def client_pod(namespace: str, node: Any, name: str, env: dict[str, str],
               script: str = "/apps/client.py") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": node.pod_spec(
                restartPolicy="Never", securityContext=RESTRICTED_POD,
                volumes=[{"name": "apps", "configMap": {"name": "apps"}}, {"name": "run", "emptyDir": {}}],
                containers=[{"name": "client", "image": node.images["base"], "imagePullPolicy": "Never",
                             "command": ["python3", script] if script.endswith(".py") else ["python3", "-c", script],
                             "env": [{"name": k, "value": v} for k, v in env.items()],
                             "securityContext": RESTRICTED_CONTAINER,
                             "volumeMounts": [{"name": "apps", "mountPath": "/apps"},
                                              {"name": "run", "mountPath": "/run/client"}]}])}


def last_report(k: Kubectl, namespace: str, pod: str) -> dict[str, Any] | None:
    lines = [line for line in k.run("logs", pod, "-n", namespace, check=False).stdout.splitlines()
             if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def ready_pods(k: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return [p for p in k.items("pod", namespace, "app=echo")
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


@pytest.fixture(scope="module")
def echo(kube: Any, real_node: Any) -> tuple[Kubectl, str]:
    k = Kubectl(kube)
    namespace = k.namespace("realnode")  # labelled pod-security enforce=restricted
    for obj in echo_app(namespace, real_node, replicas=2):
        k.apply(obj)
    k.wait_for("deployment", "echo", namespace, lambda d: d["status"].get("readyReplicas") == 2, timeout=120,
               what="2 ready echo pods on the real node")
    return k, namespace


def test_pods_run_on_the_real_node_with_addresses_from_its_bridge(echo: tuple[Kubectl, str], real_node: Any) -> None:
    k, namespace = echo
    pods = ready_pods(k, namespace)
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == real_node.name
        assert pod["status"]["podIP"].startswith("10.245.0."), pod["status"]["podIP"]
        assert pod["status"]["containerStatuses"][0]["imageID"], "the container ran from an imported image"


def test_deployment_scales_2_10_2_serving_through_its_service_the_whole_time(
        echo: tuple[Kubectl, str], real_node: Any) -> None:
    k, namespace = echo
    k.apply(client_pod(namespace, real_node, "load", {"URL": "http://echo/", "INTERVAL": "0.02",
                                                      "MAX_SECONDS": "240"}))
    k.wait_for("pod", "load", namespace, lambda p: (last_report(k, namespace, "load") or {}).get("ok", 0) > 20,
               timeout=60, what="the load client answered through the Service")

    macs = [bridge_mac()]
    k.run("scale", "deployment/echo", "-n", namespace, "--replicas=10")
    wait_until(lambda: len(ready_pods(k, namespace)) == 10, 150, "10 ready echo pods", every=1)
    macs.append(bridge_mac())
    names = {p["metadata"]["name"] for p in ready_pods(k, namespace)}
    # Every new replica takes traffic once ready (kube-proxy picks endpoints at random).
    wait_until(lambda: names <= set((last_report(k, namespace, "load") or {}).get("pods", {})), 60,
               "all 10 replicas answering through the Service", every=1)

    k.run("scale", "deployment/echo", "-n", namespace, "--replicas=2")
    wait_until(lambda: len(k.items("pod", namespace, "app=echo")) == 2, 120, "back to 2 echo pods", every=1)
    macs.append(bridge_mac())
    before = (last_report(k, namespace, "load") or {}).get("ok", 0)
    wait_until(lambda: (last_report(k, namespace, "load") or {}).get("ok", 0) > before + 50, 30,
               "requests still served by the 2 left", every=1)

    k.run("exec", "load", "-n", namespace, "--", "python3", "-c", "open('/run/client/stop', 'w').close()")
    final = k.wait_for("pod", "load", namespace, lambda p: p["status"].get("phase") == "Succeeded", timeout=30)
    report = last_report(k, namespace, "load")
    assert final and report and report["done"]
    # Readiness held back every request from a pod not yet ready (the app refuses those with a
    # 503), and the preStop pause let kube-proxy take leaving pods out before they stopped.
    assert report["failed"] == 0, report["failures"]
    assert report["ok"] > 500 and len(report["pods"]) >= 10, report
    # The pods' gateway keeps its MAC address while veths come and go: a bridge that took its
    # ports' lowest address changed it when that pod went, and the pods lost DNS for seconds.
    # (On kind the node is kind's, and so is its network.)
    assert macs == ([BRIDGE_MAC] * 3 if not os.environ.get("SPILLWAY_KUBECONFIG") else [None] * 3), macs


def bridge_mac() -> str | None:
    """The local bed's bridge's address; None on a cluster given by SPILLWAY_KUBECONFIG."""
    if os.environ.get("SPILLWAY_KUBECONFIG"):
        return None
    return Path(f"/sys/class/net/{BRIDGE}/address").read_text().strip()


def test_a_pod_resolves_services_by_name_and_srv_through_coredns(echo: tuple[Kubectl, str], real_node: Any) -> None:
    k, namespace = echo
    service_ip = k.get("service", "echo", namespace)["spec"]["clusterIP"]  # type: ignore[index]
    fqdn = f"echo.{namespace}.svc.cluster.local"
    srv = f"_http._tcp.echo-headless.{namespace}.svc.cluster.local"
    k.apply(client_pod(namespace, real_node, "dns", {"FQDN": fqdn, "SRV": srv}, script=DNS_PROBE))
    k.wait_for("pod", "dns", namespace, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), timeout=60)
    answer = last_report(k, namespace, "dns")
    assert answer is not None, k.run("logs", "dns", "-n", namespace, check=False).stdout
    assert answer["short"] == [service_ip] and answer["fqdn"] == [service_ip], answer
    # One SRV record per ready pod of the headless Service, on the named port: what HAProxy's
    # server-template reads.
    pod_ips = sorted(p["status"]["podIP"] for p in ready_pods(k, namespace))
    assert answer["srv_count"] == len(pod_ips) and answer["srv_ports"] == [8080] * len(pod_ips), answer


def test_prometheus_discovers_pods_and_labels_series_with_namespace_and_pod(
        kube: Any, echo: tuple[Kubectl, str]) -> None:
    if kube.pki is None:
        pytest.skip("the host's Prometheus reaches pod IPs only on the local test bed; kind's pods are not routable "
                    "from the host")
    k, namespace = echo
    pods = {p["metadata"]["name"] for p in ready_pods(k, namespace)}
    with prometheus_discovering(kube.kubeconfig) as prom:
        query = urllib.parse.quote(f'echo_requests_total{{namespace="{namespace}",outcome="served"}}')

        def series() -> list[dict[str, Any]]:
            with urllib.request.urlopen(f"{prom.url}/api/v1/query?query={query}", timeout=5) as response:
                result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
            return result if {s["metric"].get("pod") for s in result} >= pods else []

        found = wait_until(series, 60, "Prometheus to scrape every echo pod by discovery", every=1)
    for s in found:
        assert s["metric"]["app"] == "echo", s  # the pod's own labels, from discovery
        assert s["metric"]["node"] == "real-node-0"


# Resolves the Service by short name (the pod's search path) and full name, and asks CoreDNS for
# SRV records with a DNS query of its own (the standard library has no SRV lookup).
DNS_PROBE = r"""
import json, os, random, socket, struct
short = sorted({a[4][0] for a in socket.getaddrinfo("echo", 80, proto=socket.IPPROTO_TCP)})
fqdn = sorted({a[4][0] for a in socket.getaddrinfo(os.environ["FQDN"], 80, proto=socket.IPPROTO_TCP)})
server = next(l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver"))
qid = random.randrange(65536)
query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in os.environ["SRV"].split(".")) + b"\0"
query += struct.pack(">HH", 33, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
sock.sendto(query, (server, 53))
data = sock.recv(4096)
rid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", data[:12])
offset = 12
def skip_name(off):
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1
offset = skip_name(offset) + 4
ports = []
for _ in range(an):
    offset = skip_name(offset)
    rtype, _, _, rdlen = struct.unpack(">HHIH", data[offset:offset + 10])
    offset += 10
    if rtype == 33:
        ports.append(struct.unpack(">HHH", data[offset:offset + 6])[2])
    offset += rdlen
print(json.dumps({"short": short, "fqdn": fqdn, "nameserver": server, "rcode": flags & 0xF, "srv_count": len(ports),
                  "srv_ports": ports}))
"""
