"""The local cluster as people drive it (`make cluster-up` / `make cluster-down`), and what its
teardown leaves on the machine: nothing, even after a run killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import node
from tests.cluster.localcluster import NODE_STATE
from tests.integration.components import wait_until
from tests.integration.harness import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.node_lifecycle]


def cluster_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.cluster", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_an_interrupted_cluster_is_cleaned_up_by_the_next_cluster_down() -> None:
    if os.environ.get("SPILLWAY_KUBECONFIG"):
        pytest.skip("runs the local cluster, not the given one")
    chains_before = node.host_chains()
    up = cluster_cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads(NODE_STATE.read_text())
    workdir = Path(state["workdir"])
    kubectl = [str(Path(json.loads((workdir / "state.json").read_text())["k8s_bin"]) / "kubectl"),
               f"--kubeconfig={workdir / 'kubeconfig'}"]
    try:
        # A pod on the real node: a sandbox, a container, its network namespace, mounts, cgroups.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "namespace": "default"},
               "spec": {**node.node_placement(), "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                        "containers": [{"name": "sleep", "image": node.IMAGES["base"], "imagePullPolicy": "Never",
                                        "command": ["sleep", "600"]}]}}
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True,
                       capture_output=True)
        wait_until(lambda: subprocess.run([*kubectl, "get", "pod", "sleeper", "-o", "jsonpath={.status.phase}"],
                                          capture_output=True, text=True).stdout == "Running", 90, "the pod running")
        assert node.leftovers(workdir, chains_before), "a running node shows up in the leftovers check"

        # Interrupted: every process the cluster started is killed at once, nothing is drained.
        cluster_state = json.loads((workdir / "state.json").read_text())
        for process in state["processes"] + cluster_state["components"]:
            try:
                os.killpg(process["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        down = cluster_cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert node.leftovers(workdir, chains_before) == []
    assert not NODE_STATE.exists() and not workdir.exists()
