"""A real Kubernetes cluster on this machine, no Docker: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok with fake nodes, and one real node (containerd,
kubelet, kube-proxy, CoreDNS: `tests/cluster/node.py`), built by build.sh and images.sh.

Each component is a child process in its own session, tracked by PID and stopped by PID
(SIGTERM, then SIGKILL). Data, logs, certificates and kubeconfigs live in one directory. With the
real node the API server listens on the node's address (on the bridge the test bed creates);
without it, on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster import cpu
from tests.cluster import node as real_node
from tests.cluster.processes import Component, free_port, runs
from tests.cluster.pki import write_pki

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SPILLWAY_CACHE", Path.home() / ".cache" / "spillway"))
NODES = (("kwok-node-0", "large", "zone-a"), ("kwok-node-1", "small", "zone-b"), ("kwok-node-2", "small", "zone-c"))
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Every request of the operator's service accounts, reads too: the RBAC tests look for 403s.
  - level: Metadata
    userGroups: ["system:serviceaccounts:spillway-system"]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


NODE_STATE = CACHE / "real-node.json"  # host-wide: one real node per machine


def build(*parts: str) -> dict[str, Path]:
    """Runs build.sh (idempotent) and returns its bin directories by name: every part, or only
    `parts` (e.g. "pause", "prometheus" for the images; "k8s", "helm" for kubectl and helm)."""
    out = subprocess.run(["bash", str(HERE / "build.sh"), *parts], check=True, capture_output=True,
                         text=True).stdout
    dirs = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    built = {name.removesuffix("_BIN").lower(): Path(path) for name, path in dirs.items()}
    return {**built, "cni": Path("/usr/lib/cni")}


def build_images(bins: dict[str, Path]) -> dict[str, Path]:
    """Runs images.sh (idempotent) and returns the OCI archives by image role."""
    out = subprocess.run(["bash", str(HERE / "images.sh")], check=True, capture_output=True, text=True,
                         env={**os.environ, "PAUSE_BIN": str(bins["pause"]),
                              "PROMETHEUS_BIN": str(bins["prometheus"])}).stdout
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"pause": Path(found["PAUSE"]), "base": Path(found["BASE"]), "operator": Path(found["OPERATOR"]),
            "session-app": Path(found["SESSION_APP"]), "redis": Path(found["REDIS"]), "valkey": Path(found["VALKEY"]),
            "haproxy": Path(found["HAPROXY"]),
            "prometheus": Path(found["PROMETHEUS"])}


def clean_stale_node() -> None:
    """Removes what an interrupted run's real node left (from the host-wide state file), or
    refuses when that node is still running."""
    if not NODE_STATE.exists():
        return
    state = json.loads(NODE_STATE.read_text())
    running = [p for p in state.get("processes", []) if runs(p["pid"], p["binary"])]
    workdir = Path(state.get("workdir", ""))
    if running and workdir.exists():
        raise RuntimeError(f"a real node from {workdir} is still running (pids "
                           f"{', '.join(str(p['pid']) for p in running)}); stop it first with `make cluster-down` "
                           "or by ending the test run that owns it: kube-proxy allows one node per machine")
    real_node.teardown(state)
    NODE_STATE.unlink(missing_ok=True)


@dataclass
class LocalCluster:
    workdir: Path
    bins: dict[str, Path] = field(default_factory=build)
    components: list[Component] = field(default_factory=list)
    apiserver_port: int = 0
    with_real_node: bool = True
    node: real_node.RealNode | None = None

    @property
    def address(self) -> str:
        return real_node.NODE_IP if self.with_real_node else "127.0.0.1"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def kubectl_path(self) -> Path:
        return self.bins["k8s"] / "kubectl"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args], check=check,
                              capture_output=True, text=True, input=input, timeout=timeout)

    def start(self, timeout: float = 120) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.with_real_node:
            clean_stale_node()
            images = build_images(self.bins)
            NODE_STATE.parent.mkdir(parents=True, exist_ok=True)
            self.node = real_node.RealNode(self.workdir, self.bins, images, state_file=NODE_STATE)
            try:
                self.node.create_network()
                self.node.create_cgroups()
            except BaseException:
                self.node.stop()
                raise
        pki = write_pki(self.workdir / "pki", real_node.NODE_NAME if self.with_real_node else "",
                        real_node.NODE_IP if self.with_real_node else "")
        self.pki = pki
        etcd_port, peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        self._write_kubeconfig(pki)
        (self.workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        k8s, w = self.bins["k8s"], self.workdir
        self.components = [
            Component("etcd", [
                str(self.bins["etcd"] / "etcd"), "--name=local", f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=local=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
            ], logs / "etcd.log"),
            Component("kube-apiserver", [
                str(k8s / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--bind-address={self.address}", f"--advertise-address={self.address}",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki['apiserver.crt']}", f"--tls-private-key-file={pki['apiserver.key']}",
                f"--client-ca-file={pki['ca.crt']}",
                f"--service-account-key-file={pki['sa.pub']}",
                f"--service-account-signing-key-file={pki['sa.key']}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction", "--allow-privileged=false",
                f"--audit-policy-file={w / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
                "--audit-log-maxsize=100", "--profiling=false", "--v=1",
                # `kubectl logs/exec` reach the kubelet at the node's InternalIP, as admin.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki['apiserver-kubelet-client.crt']}",
                f"--kubelet-client-key={pki['apiserver-kubelet-client.key']}",
            ], logs / "kube-apiserver.log"),
            Component("kube-controller-manager", [
                str(k8s / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={pki['sa.key']}", f"--root-ca-file={pki['ca.crt']}",
                "--use-service-account-credentials=true", "--leader-elect=false",
                "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
                "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
                "--node-monitor-grace-period=2m", "--v=1",
            ], logs / "kube-controller-manager.log"),
            Component("kube-scheduler", [
                str(k8s / "kube-scheduler"), f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--v=1",
            ], logs / "kube-scheduler.log"),
            Component("kwok", [
                str(self.bins["kwok"] / "kwok"), f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.1/16", "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{free_port()}",
                # Renew node leases as kubelets do, so the node lifecycle controller never marks
                # the fake nodes (and their pods) NotReady between status heartbeats.
                "--node-lease-duration-seconds=40",
            ], logs / "kwok.log"),
        ]
        try:
            self._start_in_order(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _start_in_order(self, timeout: float) -> None:
        etcd, apiserver, *rest = self.components
        for component in (etcd, apiserver):
            component.start()
            cpu.place_in_bed(component.pid)
        self._wait(lambda: self.kubectl("get", "--raw", "/readyz", check=False, timeout=5).stdout == "ok",
                   timeout, "kube-apiserver /readyz", [etcd, apiserver])
        for component in rest:
            component.start()
            cpu.place_in_bed(component.pid)
        self.kubectl("apply", "-f", "-", input=self._nodes_yaml())
        self._wait(lambda: self.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=2s",
                                        check=False, timeout=10).returncode == 0,
                   timeout, "fake nodes to be Ready", self.components)
        self._wait(lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False,
                                        timeout=5).returncode == 0,
                   timeout, "the default ServiceAccount", self.components)
        if self.node is not None:
            kubeconfigs = {role: self._write_kubeconfig(self.pki, role) for role in ("kubelet", "kube-proxy", "coredns")}
            node_started = time.monotonic()
            self.node.start(kubeconfigs, self.pki, self.server, self._wait_node, self.kubectl, timeout)
            self.node_startup_seconds = time.monotonic() - node_started

    def restart_apiserver(self, down_seconds: float = 2.0, timeout: float = 60) -> None:
        """Stops the API server by its PID, waits, starts it with the same flags and waits for
        /readyz: the fault a rolling control-plane upgrade causes."""
        apiserver = next(c for c in self.components if c.name == "kube-apiserver")
        apiserver.stop()
        time.sleep(down_seconds)
        apiserver.start()
        cpu.place_in_bed(apiserver.pid)
        self._wait(lambda: self.kubectl("get", "--raw", "/readyz", check=False, timeout=5).stdout == "ok",
                   timeout, "kube-apiserver /readyz after its restart", self.components)

    def _wait_node(self, check: Any, timeout: float, what: str, watched: list[Any]) -> None:
        self._wait(check, timeout, what, [*self.components, *watched])

    def _wait(self, check: Any, timeout: float, what: str, watched: list[Component]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [c for c in watched if not c.alive()]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited while waiting for {what}:\n{dead[0].tail()}")
            try:
                if check():
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.5)
        tails = "\n".join(f"--- {c.name}\n{c.tail(15)}" for c in watched)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")

    def _nodes_yaml(self) -> str:
        docs = []
        for name, size, zone in NODES:
            docs.append(json.dumps({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                                           "kwok.x-k8s.io/node": "fake"},
                             "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64", "type": "kwok", "node-size": size,
                                        "topology.kubernetes.io/zone": zone}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
            }))
        return "\n---\n".join(docs)

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.apiserver_port}"

    def _write_kubeconfig(self, pki: dict[str, Path], role: str = "admin") -> Path:
        path = self.kubeconfig if role == "admin" else self.workdir / f"{role}.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "spillway-local",
            "clusters": [{"name": "spillway-local", "cluster": {
                "server": self.server, "certificate-authority": str(pki["ca.crt"])}}],
            "users": [{"name": role, "user": {"client-certificate": str(pki[f"{role}.crt"]),
                                              "client-key": str(pki[f"{role}.key"])}}],
            "contexts": [{"name": "spillway-local", "context": {"cluster": "spillway-local", "user": role}}],
        }, indent=2))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        """The real node first (drained while the API server still answers), then the control
        plane. Safe after a partial start."""
        if self.node is not None:
            api_up = any(c.name == "kube-apiserver" and c.alive() for c in self.components)
            self.node.stop(self.kubectl if api_up else None)
        elif self.with_real_node and NODE_STATE.exists():
            state = json.loads(NODE_STATE.read_text())
            if state.get("workdir") == str(self.workdir):  # this cluster's node, from its state file
                real_node.teardown(state, self.kubectl if self.kubeconfig.exists() and "k8s" in self.bins else None)
                NODE_STATE.unlink(missing_ok=True)
        for component in reversed(self.components):
            component.stop()

    def state(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "kubeconfig": str(self.kubeconfig), "k8s_bin": str(self.bins["k8s"]),
                "real_node": self.with_real_node,
                "components": [{"name": c.name, "pid": c.pid, "binary": c.argv[0]} for c in self.components]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LocalCluster:
        cluster = cls(workdir=Path(state["workdir"]), bins={"k8s": Path(state["k8s_bin"])} if "k8s_bin" in state else {},
                      with_real_node=state.get("real_node", False))
        cluster.components = [Component(c["name"], [c["binary"]], Path("/dev/null"), c["pid"])
                              for c in state["components"]]
        return cluster
