"""The `kube` fixture: a real cluster for the whole session.

By default it builds (once) and starts the local control plane of tests/cluster. With
SPILLWAY_KUBECONFIG set it uses that cluster instead (kind, or `make cluster-up`), with the
kubectl and helm on PATH when the local builds are absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.localcluster import LocalCluster, build


@dataclass
class Kube:
    kubeconfig: str
    kubectl_path: str
    helm: str
    audit_log: Path | None  # only the local control plane keeps one

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args], check=check,
                              capture_output=True, text=True, input=input, timeout=timeout)

    def api_client(self) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    existing = os.environ.get("SPILLWAY_KUBECONFIG")
    if existing:
        kubectl = shutil.which("kubectl")
        helm = shutil.which("helm")
        if not (kubectl and helm):
            bins = build()
            kubectl, helm = kubectl or str(bins["k8s"] / "kubectl"), helm or str(bins["helm"] / "helm")
        yield Kube(kubeconfig=existing, kubectl_path=kubectl, helm=helm, audit_log=None)
        return
    workdir = Path(tempfile.mkdtemp(prefix="spillway-cluster-"))
    cluster = LocalCluster(workdir=workdir)
    cluster.start()
    try:
        yield Kube(kubeconfig=str(cluster.kubeconfig), kubectl_path=str(cluster.kubectl_path),
                   helm=str(cluster.bins["helm"] / "helm"), audit_log=cluster.audit_log)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
