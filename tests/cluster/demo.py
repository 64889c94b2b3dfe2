"""`make demo`: the local cluster with its real node, the operator, and a sample ScalableService
whose replicas and HAProxy balancer run as real pods, scaled from a real Prometheus on the
balancer's own metrics while a bounded load on the host drives a surge through it.

`python -m tests.cluster.demo up` starts it all (building what is missing): Prometheus finding
the balancer pods by Kubernetes pod discovery, the operator, the sample (the test bed's HTTP app
on the real node, `/slow?seconds=0.1` standing for work), then the load: steady, a surge ten
times larger, calm. It prints a status line every few seconds until Spillway has scaled out
and back in (or the load ended), and leaves everything running. `down` stops everything by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import __main__ as cluster_cli
from tests.cluster import node as real_node
from tests.cluster.localcluster import LocalCluster, build
from tests.integration.components import Prometheus

ROOT = Path(__file__).resolve().parents[2]
DEMO_STATE = cluster_cli.STATE_DIR / "demo.json"
SAMPLE = ROOT / "manifests" / "examples" / "demo.yaml"
ECHO = ROOT / "tests" / "integration" / "apps" / "echo.py"
NAMESPACE = "demo"
# steady, a surge ten times larger, calm: name:seconds:clients
PROFILE = ("steady:30:4", "surge:90:40", "calm:60:2")


def _cluster() -> LocalCluster:
    state = json.loads(cluster_cli.STATE.read_text())
    cluster = LocalCluster.from_state(state)
    cluster.bins = {"k8s": Path(state["components"][1]["binary"]).parent}
    return cluster


def up() -> int:
    cluster_cli.up()
    cluster = _cluster()
    kubectl = [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}"]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(ROOT / "crds")], check=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd/scalableservices.spillway.io",
                    "--timeout=60s"], check=True)
    _apply(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    _apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "apps", "namespace": NAMESPACE},
                     "data": {"echo.py": ECHO.read_text()}})
    if not DEMO_STATE.exists():
        DEMO_STATE.write_text(json.dumps({"processes": _start_processes(cluster)}))
    state = json.loads(DEMO_STATE.read_text())
    prometheus = next(p for p in state["processes"] if p["name"] == "prometheus")
    sample = _sample(prometheus["url"])
    _apply(kubectl, sample)
    minimum = sample["spec"]["replicas"]["min"]
    if _wait_for_status(kubectl, 180, lambda st: all(_condition(st, t) == "True" for t in ("Ready", "BalancerReady"))
                        ) is None:
        print("the sample and its balancer did not become Ready within 180s; see the operator log", file=sys.stderr)
        return 1
    print()
    subprocess.run([*kubectl, "get", "ssvc,deploy,pods,svc,pdb", "-n", NAMESPACE, "-o", "wide"], check=True)
    service = json.loads(subprocess.run([*kubectl, "get", "svc", "demo", "-n", NAMESPACE, "-o", "json"],
                                        capture_output=True, text=True, check=True).stdout)
    url = f"http://{service['spec']['clusterIP']}/slow?seconds=0.1"
    logs = cluster_cli.STATE_DIR / "logs"
    load_log = logs / "load.jsonl"
    load_log.unlink(missing_ok=True)
    load = _spawn([sys.executable, "-m", "tests.cluster.load", "--url", url, "--log", str(load_log),
                   *[arg for phase in PROFILE for arg in ("--phase", phase)]], logs / "load.log")
    state["processes"].append({"name": "load", "pid": load.pid, "match": "tests.cluster.load"})
    DEMO_STATE.write_text(json.dumps(state))
    print(f"\nload on {url}: {', '.join(PROFILE)} (name:seconds:clients), pid {load.pid}\n")
    scaled_out = _follow(kubectl, load, load_log, minimum)
    subprocess.run([*kubectl, "get", "ssvc,deploy", "-n", NAMESPACE], check=True)
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}\n"
          f"watch: kubectl get ssvc demo -n {NAMESPACE} -w     why: kubectl describe ssvc demo -n {NAMESPACE}\n"
          "stop:  make demo-down")
    if not scaled_out:
        print("Spillway did not scale out during the surge; see the operator log", file=sys.stderr)
        return 1
    return 0


def _sample(prometheus_url: str) -> dict[str, Any]:
    """The sample, made to run here: the test bed's app on the real node, the local HAProxy image."""
    sample: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    sample["metadata"]["namespace"] = NAMESPACE
    spec = sample["spec"]
    spec["scaling"]["prometheus"]["url"] = prometheus_url
    placement = real_node.node_placement()
    spec["balancing"]["haproxy"] = {"image": real_node.IMAGES["base"], **placement}
    spec["template"] = {"spec": {
        **placement,
        "terminationGracePeriodSeconds": 10,
        "volumes": [{"name": "apps", "configMap": {"name": "apps"}}],
        "containers": [{
            "name": "app", "image": real_node.IMAGES["base"], "imagePullPolicy": "Never",
            "command": ["python3", "/apps/echo.py"],
            "env": [{"name": "READY_AFTER", "value": "1"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
            "resources": {"requests": {"cpu": "10m", "memory": "24Mi"}, "limits": {"memory": "64Mi"}},
            "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True},
            "volumeMounts": [{"name": "apps", "mountPath": "/apps"}]}]}}
    return sample


def _follow(kubectl: list[str], load: subprocess.Popen[bytes], load_log: Path, minimum: int) -> bool:
    """A status line every 5 s until the count went above `minimum` and came back, or the load ended."""
    peak = minimum
    while True:
        time.sleep(5)
        got = subprocess.run([*kubectl, "get", "ssvc", "demo", "-n", NAMESPACE, "-o", "json"], capture_output=True,
                             text=True)
        status: dict[str, Any] = json.loads(got.stdout).get("status", {}) if got.returncode == 0 else {}
        signals = status.get("signals") or {}
        lines = load_log.read_text().splitlines()[-5:] if load_log.exists() else []
        recent = [json.loads(line) for line in lines]
        rate = sum(r["ok"] for r in recent) / max(1, len(recent))
        failed = sum(r["failed"] for r in recent)
        p95s = [r["p95"] for r in recent if r["p95"] is not None]
        phase = recent[-1]["phase"] if recent else "-"
        desired = status.get("desiredReplicas") or minimum
        peak = max(peak, desired)
        print(f"{time.strftime('%H:%M:%S')} {phase:>6}  {rate:5.1f} req/s  p95 "
              f"{(max(p95s) * 1000 if p95s else 0):6.0f} ms  failed {failed:3d}  queue "
              f"{signals.get('queueDepth', '-')!s:>5}  replicas {status.get('readyReplicas', 0)}/{desired}", flush=True)
        if (peak > minimum and desired == minimum) or load.poll() is not None:
            return peak > minimum


def _apply(kubectl: list[str], obj: dict[str, Any]) -> None:
    subprocess.run([*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(obj), text=True, check=True,
                   capture_output=True)


def _condition(status: dict[str, Any], type_: str) -> str | None:
    return next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _wait_for_status(kubectl: list[str], seconds: float,
                     check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The sample's status once `check` holds, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = subprocess.run([*kubectl, "get", "ssvc", "demo", "-n", NAMESPACE, "-o", "json"], capture_output=True,
                             text=True)
        status: dict[str, Any] = json.loads(got.stdout).get("status", {}) if got.returncode == 0 else {}
        if check(status):
            return status
        time.sleep(1)
    return None


def _start_processes(cluster: LocalCluster) -> list[dict[str, object]]:
    """Prometheus finding the cluster's annotated pods, and the operator; each recorded by PID."""
    logs = cluster_cli.STATE_DIR / "logs"
    workdir = cluster_cli.STATE_DIR / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    # Pod discovery labels each balancer's series with its namespace and instance: nothing by hand.
    prometheus = Prometheus([], {}, workdir, kubeconfig=str(cluster.kubeconfig),
                            binary=str(build()["prometheus"] / "prometheus"))
    prometheus.start()
    assert prometheus.process.proc is not None
    operator = _spawn([str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(cluster.kubeconfig),
                       "--liveness", "http://127.0.0.1:18081/healthz", "--metrics-address", "127.0.0.1",
                       "--metrics-port", "18080"], logs / "spillway.log")
    print(f"prometheus {prometheus.url} (pid {prometheus.process.proc.pid}); operator pid {operator.pid}, "
          f"log {logs / 'spillway.log'}, metrics http://127.0.0.1:18080/metrics")
    return [{"name": "prometheus", "pid": prometheus.process.proc.pid, "match": "prometheus",
             "url": prometheus.url},
            {"name": "operator", "pid": operator.pid, "match": "spillway"}]


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=ROOT)


def down() -> int:
    if DEMO_STATE.exists():
        for process in json.loads(DEMO_STATE.read_text()).get("processes", []):
            # Only the process the demo started: a PID reused since by another program is left alone.
            cmdline = Path(f"/proc/{process['pid']}/cmdline")
            if cmdline.exists() and process["match"].encode() in cmdline.read_bytes():
                os.killpg(process["pid"], signal.SIGTERM)
        DEMO_STATE.unlink()
    return cluster_cli.down()


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m tests.cluster.demo up|down", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
