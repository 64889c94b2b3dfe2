"""The demo's Prometheus and load as pods of the cluster, for a cluster whose pod and Service
addresses the host cannot reach (kind, or any cluster: `make demo CLUSTER=current`).

- **Prometheus** (`localhost/spillway/prometheus:dev`, tests/cluster/images.sh) finds the
  sample's pods by discovery in the demo's namespace only, with a Role that may list and watch
  pods there and nothing else; the operator reads it at its Service's DNS name, and the demo
  queries it through the API server's service proxy.
- **The load** is `demo/load.py` as a lone file in a ConfigMap, run by the operator image's
  Python (which has aiohttp, kopf's HTTP client), allowed to reach only the sample's Service
  address; it writes its JSON lines to stdout, which the demo follows with `kubectl logs`.

Both run as the restricted Pod Security Standard asks. The objects are built by pure functions;
the scenario applies them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.integration.components import kubernetes_pods_job, prometheus_config

PROMETHEUS = "prometheus"
PROMETHEUS_PORT = 9090
LOAD = "demo-load"
LOAD_FILE = Path(__file__).resolve().parent / "load.py"
LABEL = "app.kubernetes.io/part-of"
PART_OF = "spillway-demo"


def prometheus_url(namespace: str) -> str:
    """Where the operator's pod reads the demo's Prometheus."""
    return f"http://{PROMETHEUS}.{namespace}.svc:{PROMETHEUS_PORT}"


def proxy_path(namespace: str, path: str) -> str:
    """`path` of the demo's Prometheus through the API server's service proxy (`kubectl get --raw`)."""
    return f"/api/v1/namespaces/{namespace}/services/{PROMETHEUS}:{PROMETHEUS_PORT}/proxy{path}"


def _security(user: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod's and the container's security context under the restricted standard."""
    pod = {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                 "capabilities": {"drop": ["ALL"]}}
    return pod, container


def _metadata(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {LABEL: PART_OF, "app.kubernetes.io/name": name}}


def prometheus_objects(namespace: str, image: str, placement: dict[str, Any],
                       pull_policy: str = "Never") -> list[dict[str, Any]]:
    """Prometheus scraping the annotated pods of `namespace` every second (as the test bed's own)."""
    config = prometheus_config([kubernetes_pods_job(namespaces=[namespace])])
    pod_security, container_security = _security(65534)
    labels = {LABEL: PART_OF, "app.kubernetes.io/name": PROMETHEUS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(PROMETHEUS, namespace),
         "automountServiceAccountToken": True},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _metadata(PROMETHEUS, namespace),
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _metadata(PROMETHEUS, namespace),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": PROMETHEUS},
         "subjects": [{"kind": "ServiceAccount", "name": PROMETHEUS, "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(PROMETHEUS, namespace),
         "data": {"prometheus.yml": json.dumps(config, indent=1)}},  # JSON is YAML
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(PROMETHEUS, namespace), "spec": {
            "replicas": 1, "selector": {"matchLabels": labels}, "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": labels}, "spec": {
                **placement, "serviceAccountName": PROMETHEUS, "securityContext": pod_security,
                "containers": [{
                    "name": "prometheus", "image": image, "imagePullPolicy": pull_policy,
                    "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                             f"--web.listen-address=:{PROMETHEUS_PORT}", "--query.lookback-delta=10s"],
                    "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}, "periodSeconds": 2},
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                    "securityContext": container_security,
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
                                     {"name": "data", "mountPath": "/prometheus"}]}],
                "volumes": [{"name": "config", "configMap": {"name": PROMETHEUS}},
                            {"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(PROMETHEUS, namespace), "spec": {
            "selector": labels, "ports": [{"name": "http", "port": PROMETHEUS_PORT, "targetPort": "http"}]}},
    ]


def load_objects(namespace: str, image: str, placement: dict[str, Any], arguments: Sequence[str],
                 deadline_seconds: int, pull_policy: str = "Never") -> list[dict[str, Any]]:
    """The load as a pod that runs once (`arguments` as for `python -m demo.load`, with
    `--log /dev/stdout`), killed by the kubelet after `deadline_seconds` whatever happens."""
    pod_security, container_security = _security(65532)
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(LOAD, namespace),
         "data": {"load.py": LOAD_FILE.read_text()}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(LOAD, namespace), "spec": {
            **placement, "restartPolicy": "Never", "activeDeadlineSeconds": deadline_seconds,
            "automountServiceAccountToken": False, "enableServiceLinks": False, "securityContext": pod_security,
            "containers": [{
                "name": "load", "image": image, "imagePullPolicy": pull_policy,
                "command": ["python", "/demo/load.py"], "args": [*arguments, "--log", "/dev/stdout"],
                "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                "securityContext": container_security,
                "volumeMounts": [{"name": "load", "mountPath": "/demo", "readOnly": True}]}],
            "volumes": [{"name": "load", "configMap": {"name": LOAD}}]}},
    ]
