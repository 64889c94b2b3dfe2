"""Several operator replicas, one active: kopf peering as `spillway run --peering` sets it up.
Without --priority each replica draws a random one, since kopf pauses replicas that tie."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.components import wait_until
from tests.integration.harness import CRD, Kubectl, OperatorProcess, scalable_service

pytestmark = pytest.mark.integration


def _operator(kube: Any, priority: int, log: Path) -> OperatorProcess:
    return OperatorProcess(["--kubeconfig", kube.kubeconfig, "--peering", "spillway-peers", "--priority", str(priority),
                            "--liveness", "", "--metrics-port", "0"], log).start()


def _peers(k: Kubectl) -> dict[str, Any]:
    """The replicas listed in the peering object (read raw: kubectl's discovery cache may not
    know the kind yet)."""
    got = k.run("get", "--raw", "/apis/kopf.dev/v1/clusterkopfpeerings/spillway-peers", check=False)
    peers: dict[str, Any] = json.loads(got.stdout).get("status") or {} if got.returncode == 0 else {}
    return peers


def test_only_the_highest_priority_replica_acts(kube: Any, tmp_path: Path) -> None:
    k = Kubectl(kube)
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    k.run("apply", "--server-side", "-f", str(CRD.parents[1] / "charts" / "spillway" / "crds" / "kopf-peering.yaml"))
    k.run("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    ns = k.namespace("peers")
    active_log, standby_log = tmp_path / "active.log", tmp_path / "standby.log"
    active = _operator(kube, 100, active_log)
    standby = None
    try:
        # The second replica starts once the first has joined the peering, as in a rollout.
        wait_until(lambda: _peers(k), 60, "the first replica in the peering")
        standby = _operator(kube, 10, standby_log)
        # A replica that joins below a live higher-priority peer stays paused (kopf starts paused).
        wait_until(lambda: len(_peers(k)) == 2, 60, "the second replica in the peering")
        assert "Resuming operations" not in standby_log.read_text()
        k.apply(scalable_service("peered", ns, replicas={"min": 2, "max": 4}))
        k.wait_for("deployment", "peered", ns, lambda d: d["spec"]["replicas"] == 2, what="the Deployment")
        # The Deployment is visible as soon as its apply returns; the line follows it in the log.
        wait_until(lambda: "applied Deployment" in active_log.read_text(), 30, "the active replica's apply in its log")
        assert "applied Deployment" not in standby_log.read_text(), standby_log.read_text()[-3000:]
        assert len(_peers(k)) == 2
        k.run("delete", "ssvc", "peered", "-n", ns, "--wait=true", "--timeout=60s")
    finally:
        for proc in (active, standby):
            if proc is not None:
                proc.stop()
