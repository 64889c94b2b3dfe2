"""`make demo`: the local control plane, the CRD, the operator and a sample ScalableService
that Spillway scales from a real Prometheus.

`python -m tests.cluster.demo up` starts it all (building what is missing): Debian's Prometheus
on loopback scraping a traffic wave (`tests/cluster/wave.py`), the operator, and the sample
pointed at that Prometheus. It waits until the sample is Ready, prints what Spillway made, then
waits for the first scale-out and prints its reason. `down` stops everything by PID.
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
from tests.cluster.localcluster import LocalCluster, free_port
from tests.integration.components import Prometheus, haproxy_scrape_labels

ROOT = Path(__file__).resolve().parents[2]
DEMO_STATE = cluster_cli.STATE_DIR / "demo.json"
SAMPLE = ROOT / "manifests" / "examples" / "demo.yaml"


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
    if not DEMO_STATE.exists():
        DEMO_STATE.write_text(json.dumps({"processes": _start_processes(cluster)}))
    state = json.loads(DEMO_STATE.read_text())
    sample = yaml.safe_load(SAMPLE.read_text())
    prometheus = next(p for p in state["processes"] if p["name"] == "prometheus")
    sample["spec"]["scaling"]["prometheus"]["url"] = prometheus["url"]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(sample), text=True, check=True)
    minimum = sample["spec"]["replicas"]["min"]
    if _wait_for_status(kubectl, 120, lambda st: any(
            c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))) is None:
        print("the sample did not become Ready within 120s; see the operator log", file=sys.stderr)
        return 1
    print()
    subprocess.run([*kubectl, "get", "ssvc,deploy,pods,svc,pdb", "-o", "wide"], check=True)
    print("\nwaiting for the traffic wave's surge and Spillway's scale-out ...")
    scaled = _wait_for_status(kubectl, 90, lambda st: (st.get("desiredReplicas") or 0) > minimum)
    if scaled is None:
        print("no scale-out within 90s; see the operator log", file=sys.stderr)
        return 1
    print(f"scaled: {scaled['lastDecision']['reason']}\n")
    subprocess.run([*kubectl, "get", "ssvc,deploy"], check=True)
    wave = next(p for p in state["processes"] if p["name"] == "wave")
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}\n"
          "watch: kubectl get ssvc demo -w   (the surge lasts a minute; the count returns to 2 after the\n"
          "       30s scale-down window)   why: kubectl describe ssvc demo\n"
          f"drive: curl -d 90 http://127.0.0.1:{wave['port']}/queue   (curl -d wave ... resumes the wave)\n"
          "stop:  make demo-down")
    return 0


def _wait_for_status(kubectl: list[str], seconds: float,
                     check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The sample's status once `check` holds, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = subprocess.run([*kubectl, "get", "ssvc", "demo", "-o", "json"], capture_output=True, text=True)
        status: dict[str, Any] = json.loads(got.stdout).get("status", {}) if got.returncode == 0 else {}
        if check(status):
            return status
        time.sleep(1)
    return None


def _start_processes(cluster: LocalCluster) -> list[dict[str, object]]:
    """The wave, Prometheus scraping it, and the operator; each recorded by PID for `down`."""
    logs = cluster_cli.STATE_DIR / "logs"
    wave_port = free_port()
    wave = _spawn([sys.executable, "-m", "tests.cluster.wave", "--port", str(wave_port), "--proxy", "demo"],
                  logs / "wave.log")
    workdir = cluster_cli.STATE_DIR / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    # The labels pod discovery gives a balancer pod of the sample: the wave stands in for it.
    prometheus = Prometheus([f"127.0.0.1:{wave_port}"], haproxy_scrape_labels("default", "demo"), workdir)
    prometheus.start()
    assert prometheus.process.proc is not None
    operator = _spawn([str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(cluster.kubeconfig),
                       "--liveness", "http://127.0.0.1:18081/healthz", "--metrics-address", "127.0.0.1",
                       "--metrics-port", "18080"], logs / "spillway.log")
    print(f"prometheus {prometheus.url} (pid {prometheus.process.proc.pid}); traffic wave on port {wave_port} "
          f"(pid {wave.pid}); operator pid {operator.pid}, log {logs / 'spillway.log'}, "
          "metrics http://127.0.0.1:18080/metrics")
    return [{"name": "wave", "pid": wave.pid, "match": "tests.cluster.wave", "port": wave_port},
            {"name": "prometheus", "pid": prometheus.process.proc.pid, "match": "prometheus",
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
