"""The `kube` fixture: a real cluster for the whole session, and `real_node`: where real pods run.

By default it builds (once) and starts the local cluster of tests/cluster: the control plane,
kwok's fake nodes and one real node. With SPILLWAY_KUBECONFIG set it uses that cluster instead
(kind, or `make cluster-up`), with the kubectl and helm on PATH when the local builds are absent;
there the real node is the node labelled `spillway.io/real-node=true` (tests/e2e/run-kind.sh
labels one and loads the test bed's images into it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import node as real_node_parts
from tests.cluster.localcluster import LocalCluster, build
from tests.integration.harness import CRD, Kubectl, stop_stale_operators


@dataclass
class Kube:
    kubeconfig: str
    kubectl_path: str
    helm: str
    audit_log: Path | None  # only the local control plane keeps one
    pki: dict[str, Path] | None = None  # only the local control plane's
    restart_apiserver: Callable[[], None] | None = None  # only on the local control plane

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
    stop_stale_operators()  # an interrupted run's `spillway run` processes, by their PID files
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
    chains_before = real_node_parts.host_chains()
    cluster = LocalCluster(workdir=workdir)
    cluster.start()
    try:
        yield Kube(kubeconfig=str(cluster.kubeconfig), kubectl_path=str(cluster.kubectl_path),
                   helm=str(cluster.bins["helm"] / "helm"), audit_log=cluster.audit_log, pki=cluster.pki,
                   restart_apiserver=cluster.restart_apiserver)
    finally:
        cluster.stop()
        left = real_node_parts.leftovers(workdir, chains_before)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"the test bed's teardown left: {left}"


@pytest.fixture(scope="module")
def k(kube: Kube) -> Kubectl:
    """kubectl on the session's cluster with Spillway's CRD installed and established."""
    kubectl = Kubectl(kube)
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/scalableservices.spillway.io", "--timeout=60s")
    return kubectl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The node lifecycle tests start and kill a cluster of their own, and a machine holds one
    real node at a time: they run before anything starts the session's cluster. Then the tests on
    a control plane of their own (module-scoped, no real node), so that it is stopped before the
    session's cluster starts and a run never holds two clusters at once."""
    first = [item for item in items if item.get_closest_marker("node_lifecycle")]
    first += [item for item in items if item.get_closest_marker("own_control_plane") and item not in first]
    items[:] = first + [item for item in items if item not in first]


@dataclass(frozen=True)
class RealNode:
    """Where a test's pods really run, and the local images they run (imagePullPolicy Never)."""

    name: str
    placement: dict[str, Any]  # nodeSelector + tolerations for a pod spec
    images: dict[str, str]  # pause, base, operator, session-app

    def pod_spec(self, **spec: Any) -> dict[str, Any]:
        return {**spec, **self.placement}


@pytest.fixture(scope="session")
def real_node(kube: Kube) -> RealNode:
    found = kube.kubectl("get", "nodes", "-l", f"{real_node_parts.LABEL}=true", "-o", "name", check=False).stdout.split()
    assert found, (f"no node labelled {real_node_parts.LABEL}=true in this cluster: the local cluster starts one; "
                   "on kind, tests/e2e/run-kind.sh labels a worker and loads the images")
    return RealNode(name=found[0].split("/", 1)[1], placement=real_node_parts.node_placement(),
                    images=dict(real_node_parts.IMAGES))
