"""Several operator replicas, one active: kopf peering as `spillway run --peering` sets it up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.components import wait_until
from tests.integration.harness import CRD, Kubectl, scalable_service

pytestmark = pytest.mark.integration


def _operator(kube: Any, priority: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", kube.kubeconfig,
             "--peering", "spillway-peers", "--priority", str(priority), "--liveness", "", "--metrics-port", "0"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_only_the_highest_priority_replica_acts(kube: Any, tmp_path: Path) -> None:
    k = Kubectl(kube)
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    k.run("apply", "--server-side", "-f", str(CRD.parents[1] / "charts" / "spillway" / "crds" / "kopf-peering.yaml"))
    k.run("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    ns = k.namespace("peers")
    active_log, standby_log = tmp_path / "active.log", tmp_path / "standby.log"
    active = _operator(kube, 100, active_log)
    standby = _operator(kube, 10, standby_log)
    try:
        wait_until(lambda: "Pausing operations" in standby_log.read_text(), 60, "the standby replica to pause")
        k.apply(scalable_service("peered", ns, replicas={"min": 2, "max": 4}))
        k.wait_for("deployment", "peered", ns, lambda d: d["spec"]["replicas"] == 2, what="the Deployment")
        assert "applied Deployment" in active_log.read_text()
        assert "applied Deployment" not in standby_log.read_text()
        assert k.get("clusterkopfpeering.kopf.dev", "spillway-peers", "default") is not None
        k.run("delete", "ssvc", "peered", "-n", ns, "--wait=true", "--timeout=60s")
    finally:
        for proc in (active, standby):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
