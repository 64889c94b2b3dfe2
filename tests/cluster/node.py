"""The test bed's real node: containerd, kubelet, kube-proxy and CoreDNS as host processes, so
pods really run beside kwok's fake nodes and carry requests.

One real node per machine: kube-proxy owns the host's KUBE-* iptables chains, so two would fight.
A host-wide state file (`<cache>/real-node.json`) records what a node created (processes by PID,
the bridge, the cgroups, the sysctls it changed, its work directory); a second node refuses to
start while the first is alive, and cleans up after one that was interrupted.

Everything it creates is removed by what was recorded at creation, never by a broad pattern:
pods are deleted with the node cordoned, containers and shims stopped by the PIDs in containerd's
own state directory, the mounts under the node's work directory unmounted, its cgroup subtree
removed, kube-proxy's rules removed by `kube-proxy --cleanup`, and the bridge deleted by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster import cpu
from tests.cluster.processes import Component, free_port

NODE_NAME = "real-node-0"
BRIDGE = "spillway0"
# The node's address lives on the CNI bridge the test bed creates: this kernel has no dummy
# interfaces, and the kubelet refuses a loopback node IP. Test traffic goes only to loopback,
# this address, and the pod (POD_SUBNET) and Service (10.96.0.0/16) addresses.
NODE_IP = "10.245.0.1"
# The bridge's own MAC address, set once: a bridge left to choose takes the lowest of its ports'
# addresses and changes it as pods come and go. The kernel sends no gratuitous ARP then, so the
# pods' cached gateway address went nowhere once the pod whose veth lent it was deleted: their
# DNS (CoreDNS listens on NODE_IP) and Service traffic failed until the cache expired, 5-40 s.
BRIDGE_MAC = "02:53:70:69:6c:01"  # locally administered
POD_SUBNET = "10.245.0.0/24"
CLUSTER_DNS = "10.96.0.10"
CGROUP_ROOT = "spillway-node"
# Pods land on the real node only when they ask for it: nodeSelector + toleration.
LABEL = "spillway.io/real-node"
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
IMAGES = {"pause": "localhost/spillway/pause:1", "base": "localhost/spillway/base:bookworm",
          "operator": "localhost/spillway/operator:dev", "session-app": "localhost/spillway/session-app:dev",
          "redis": "localhost/spillway/redis:8", "valkey": "localhost/spillway/valkey:8",
          "haproxy": "localhost/spillway/haproxy:3",
          "prometheus": "localhost/spillway/prometheus:dev"}
# Kernel settings a node needs: routing between pods and Services, and bridged traffic through
# iptables (kube-proxy's DNAT for a pod that reaches itself through its own Service).
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
CGROUP_FS = Path("/sys/fs/cgroup")
# Chains the kubelet makes in the host's iptables and never removes (kube-proxy's own are removed
# by `kube-proxy --cleanup`): removed at teardown when they did not exist before the node.
KUBELET_CHAINS = {"mangle": ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"),
                  "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"), "nat": ("KUBE-KUBELET-CANARY",)}
IPTABLES = ("iptables", "ip6tables")
# The runc shim puts its sockets here whatever the configuration says.
SHIM_SOCKETS = Path("/run/containerd")


def node_placement() -> dict[str, Any]:
    """The nodeSelector and toleration that put a pod on the real node."""
    return {"nodeSelector": {LABEL: "true"}, "tolerations": [{**TAINT, "operator": "Equal"}]}


NodeProcess = Component  # the node's processes are supervised as the control plane's are


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=120)


@dataclass
class RealNode:
    """Start with `start(...)` after the API server is ready; `stop()` removes everything."""

    workdir: Path
    bins: dict[str, Path]
    images: dict[str, Path] = field(default_factory=dict)
    processes: list[NodeProcess] = field(default_factory=list)
    sysctls_before: dict[str, str] = field(default_factory=dict)
    state_file: Path | None = None

    # ----------------------------------------------------------------------------------- network
    def create_network(self) -> None:
        """The bridge with the node's address, before the API server binds to it; and a record of
        the host's state that teardown restores."""
        self._record(chains_before={binary: _chains(binary) for binary in IPTABLES},
                     shim_sockets_existed=SHIM_SOCKETS.exists())
        if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            _run("ip", "link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge")
        self._record(bridge=BRIDGE)
        _run("ip", "link", "set", BRIDGE, "address", BRIDGE_MAC)  # a bridge left by an interrupted run too
        if NODE_IP not in _run("ip", "-4", "addr", "show", BRIDGE).stdout:
            _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        for key, value in SYSCTLS.items():
            path = Path("/proc/sys") / key
            self.sysctls_before[key] = path.read_text().strip()
            path.write_text(value)
        self._record(sysctls_before=self.sysctls_before)

    # ------------------------------------------------------------------------------------- start
    def start(self, kubeconfigs: dict[str, Path], pki: dict[str, Path], apiserver_url: str,
              wait: Callable[[Callable[[], bool], float, str, list[NodeProcess]], None],
              kubectl: Callable[..., subprocess.CompletedProcess[str]], timeout: float = 120) -> None:
        node = self.workdir / "node"
        for sub in ("containerd", "kubelet", "logs", "cni/net.d", "cni/ipam", "pod-logs", "coredns"):
            (node / sub).mkdir(parents=True, exist_ok=True)
        self.create_cgroups()  # idempotent: the cluster made them before its control plane started
        socket = node / "containerd" / "containerd.sock"
        containerd = self._containerd(node, socket)
        containerd.start()
        self.processes.append(containerd)
        self._record_processes()
        wait(lambda: self._ctr(socket, "version", check=False).returncode == 0, 30, "containerd", [containerd])
        self._import_images(socket)
        kubectl("apply", "-f", "-", input=_dns_objects())
        kubelet = self._kubelet(node, socket, kubeconfigs["kubelet"], pki)
        proxy = self._kube_proxy(node, kubeconfigs["kube-proxy"])
        coredns = self._coredns(node, kubeconfigs["coredns"])
        for process in (kubelet, proxy, coredns):
            process.start()
            self.processes.append(process)
        self._record_processes()
        wait(lambda: kubectl("wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=2s", check=False,
                             timeout=10).returncode == 0, timeout, f"the real node {NODE_NAME} to be Ready",
             self.processes)

    def _containerd(self, node: Path, socket: Path) -> NodeProcess:
        config = node / "containerd" / "config.toml"
        # The content store and image snapshots persist in the cache (one node per machine), so
        # images are imported and unpacked once; containers, sockets and mounts live in `state`,
        # under the cluster's work directory.
        config.write_text(_containerd_config(node, socket, self.bins["cni"], self.bins["containerd"].parent / "root"))
        (node / "cni/net.d/10-spillway.conflist").write_text(json.dumps(_cni_config(node), indent=2))
        env = {**os.environ, "PATH": f"{self.bins['containerd']}:/usr/sbin:/usr/bin:/sbin:/bin"}
        return NodeProcess("containerd", [str(self.bins["containerd"] / "containerd"), f"--config={config}"],
                           node / "logs" / "containerd.log", env=env)

    def _ctr(self, socket: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(str(self.bins["containerd"] / "ctr"), f"--address={socket}", "--namespace=k8s.io", *args,
                    check=check)

    def _import_images(self, socket: Path) -> None:
        """Imports the archives whose image containerd does not hold yet at that digest: its
        content and snapshots persist in the cache between runs, so a warm start imports nothing."""
        held = {line.split()[0]: line.split()[2] for line in self._ctr(socket, "images", "ls").stdout.splitlines()[1:]
                if line.strip()}
        for name, archive in self.images.items():
            if held.get(IMAGES[name]) == _manifest_digest(archive):
                continue
            self._ctr(socket, "images", "import", "--local", str(archive))
            # Pinned: the kubelet's image garbage collector never removes them (no registry to
            # pull them back from).
            self._ctr(socket, "images", "label", IMAGES[name], "io.cri-containerd.pinned=pinned")

    def _kubelet(self, node: Path, socket: Path, kubeconfig: Path, pki: dict[str, Path]) -> NodeProcess:
        root = node / "kubelet"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # This kind of machine mounts cgroup v1 (hybrid); kubelet 1.35+ refuses it unless told.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
            "containerRuntimeEndpoint": f"unix://{socket}",
            "address": NODE_IP, "port": free_port(), "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki["ca.crt"])}},
            "authorization": {"mode": "Webhook"},
            "clusterDomain": "cluster.local", "clusterDNS": [CLUSTER_DNS],
            "resolvConf": "",  # pods resolve through CoreDNS only; the host's resolver is not theirs
            "registerWithTaints": [TAINT],
            "podLogsDir": str(node / "pod-logs"),
            "failSwapOn": False,
            # A shared test machine's disk may be fuller than a node's defaults allow.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False, "maxPods": 110,
        }
        (root / "config.json").write_text(json.dumps(config, indent=2))
        return NodeProcess("kubelet", [
            str(self.bins["k8s"] / "kubelet"), f"--config={root / 'config.json'}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={root}", f"--cert-dir={root / 'pki'}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}", f"--node-labels={LABEL}=true,node-size=real,topology.kubernetes.io/zone=zone-r",
            "--v=1",
        ], node / "logs" / "kubelet.log")

    def _kube_proxy(self, node: Path, kubeconfig: Path) -> NodeProcess:
        config = _kube_proxy_config(kubeconfig)
        path = node / "kube-proxy.json"
        path.write_text(json.dumps(config, indent=2))
        self._record(kube_proxy_config=str(path), kube_proxy=str(self.bins["k8s"] / "kube-proxy"))
        return NodeProcess("kube-proxy", [str(self.bins["k8s"] / "kube-proxy"), f"--config={path}", "--v=1"],
                           node / "logs" / "kube-proxy.log")

    def _coredns(self, node: Path, kubeconfig: Path) -> NodeProcess:
        corefile = node / "coredns" / "Corefile"
        # Only cluster names: the test bed has no upstream resolver to forward to.
        corefile.write_text(f"""cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} spillway-local
        pods insecure
        ttl 5
    }}
    cache 5
}}
""")
        return NodeProcess("coredns", [str(self.bins["coredns"] / "coredns"), "-conf", str(corefile)],
                           node / "logs" / "coredns.log")

    # --------------------------------------------------------------------------------- cgroups
    def create_cgroups(self) -> None:
        """The node's cgroup root, weighted ahead of the host's other processes, and the group
        for the test bed's own host processes (`tests.cluster.cpu`), before any of them starts.
        Without the weights the whole node weighed as much as one busy host thread: starting
        JVMs waited on the run queue behind the API server, etcd, Prometheus and the load."""
        created = []
        for hierarchy in _cgroup_hierarchies():
            path = hierarchy / CGROUP_ROOT
            path.mkdir(exist_ok=True)
            created.append(str(path))
        found = cpu.cpu_hierarchy()
        if found is not None:
            hierarchy, version = found
            cpu.set_weight(hierarchy / CGROUP_ROOT, version, cpu.NODE_SHARES)
            for group in cpu.bed_groups(hierarchy, version):
                group.mkdir(exist_ok=True)
                created.append(str(group))
            cpu.set_weight(hierarchy / cpu.BED_GROUP, version, cpu.BED_SHARES)
        self._record(cgroups=created)

    # ------------------------------------------------------------------------------------ state
    def _record(self, **values: Any) -> None:
        if self.state_file is None:
            return
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        state.update(values, workdir=str(self.workdir))
        self.state_file.write_text(json.dumps(state, indent=2))

    def _record_processes(self) -> None:
        self._record(processes=[{"name": p.name, "pid": p.pid, "binary": p.argv[0]} for p in self.processes])

    # ------------------------------------------------------------------------------------- stop
    def stop(self, kubectl: Callable[..., subprocess.CompletedProcess[str]] | None = None) -> None:
        """Drains and removes everything the node created; safe to call more than once and on a
        node that only partly started."""
        state = json.loads(self.state_file.read_text()) if self.state_file and self.state_file.exists() else {}
        teardown(state or {"workdir": str(self.workdir), "sysctls_before": self.sysctls_before,
                           "processes": [{"name": p.name, "pid": p.pid, "binary": p.argv[0]}
                                         for p in self.processes]},
                 kubectl, self.processes)
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)


def teardown(state: dict[str, Any], kubectl: Callable[..., subprocess.CompletedProcess[str]] | None = None,
             processes: list[NodeProcess] | None = None) -> None:
    """Removes what a node recorded in `state`: also the way an interrupted run is cleaned up."""
    workdir = Path(state["workdir"])
    node = workdir / "node"
    procs = processes or [NodeProcess(p["name"], [p["binary"]], Path("/dev/null"), pid=p["pid"])
                          for p in state.get("processes", [])]
    by_name = {p.name: p for p in procs}
    kubelet = by_name.get("kubelet")
    if kubectl is not None and kubelet is not None and kubelet.alive():
        _drain(kubectl)
    for name in ("kubelet", "coredns", "kube-proxy"):
        if name in by_name:
            by_name[name].stop()
    _stop_containers(node / "containerd" / "state", node / "containerd" / "containerd.sock")
    if "containerd" in by_name:
        by_name["containerd"].stop()
    if state.get("kube_proxy"):
        # kube-proxy removes the rules and chains it made (KUBE-*), by its own names.
        subprocess.run([state["kube_proxy"], "--cleanup", f"--config={state['kube_proxy_config']}"],
                       capture_output=True, timeout=60, check=False)
    _unmount_under(workdir)
    for binary, before in (state.get("chains_before") or {}).items():
        _remove_kubelet_chains(binary, before)
    if state.get("shim_sockets_existed") is False:
        for directory in (SHIM_SOCKETS / "s", SHIM_SOCKETS):
            try:
                directory.rmdir()  # only when empty: sockets of anyone else's shims stay
            except OSError:
                pass
    for path in reversed(state.get("cgroups", [])):
        _remove_cgroup_tree(Path(path))
    if state.get("bridge"):
        _run("ip", "link", "del", state["bridge"], check=False)
    for key, value in (state.get("sysctls_before") or {}).items():
        try:
            (Path("/proc/sys") / key).write_text(value)
        except OSError:
            pass


def host_chains() -> dict[str, dict[str, list[str]]]:
    return {binary: _chains(binary) for binary in IPTABLES}


def leftovers(workdir: Path, chains_before: dict[str, dict[str, list[str]]]) -> list[str]:
    """What a node in `workdir` left on the host: empty after a clean teardown."""
    found = []
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    found += [f"mount {m}" for m in _mounts_under(workdir)]
    found += [f"cgroup {h / name}" for h in _cgroup_hierarchies() for name in (CGROUP_ROOT, cpu.BED_GROUP)
              if (h / name).exists()]
    for binary, tables in host_chains().items():
        for table, chains in tables.items():
            new = [c for c in chains if c.startswith(("KUBE-", "CNI-")) and c not in chains_before[binary][table]]
            found += [f"{binary} -t {table} chain {c}" for c in new]
    marker = str(workdir).encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and (proc / "exe").exists():
                found.append(f"process {proc.name}: {cmdline.replace(bytes(1), b' ').decode(errors='replace')[:120]}")
    return found


def _chains(binary: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for table in KUBELET_CHAINS:
        listed = subprocess.run([binary, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False)
        found[table] = [line.split()[1] for line in listed.stdout.splitlines() if line.startswith("-N ")]
    return found


def _remove_kubelet_chains(binary: str, before: dict[str, list[str]]) -> None:
    for table, chains in KUBELET_CHAINS.items():
        for chain in chains:
            if chain in before.get(table, []) or chain not in _chains(binary).get(table, []):
                continue
            rules = subprocess.run([binary, "-w", "-t", table, "-S"], capture_output=True, text=True,
                                   check=False).stdout.splitlines()
            for rule in rules:  # the jumps into the chain from the built-in chains
                words = rule.split()
                if words[:1] == ["-A"] and words[-2:] == ["-j", chain]:
                    subprocess.run([binary, "-w", "-t", table, "-D", *words[1:]], capture_output=True, check=False)
            subprocess.run([binary, "-w", "-t", table, "-F", chain], capture_output=True, check=False)
            subprocess.run([binary, "-w", "-t", table, "-X", chain], capture_output=True, check=False)


def _drain(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Cordons the node and deletes its pods, so the kubelet stops them and CNI releases them."""
    kubectl("cordon", NODE_NAME, check=False, timeout=20)
    kubectl("delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={NODE_NAME}",
            "--grace-period=2", "--wait=false", check=False, timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = kubectl("get", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={NODE_NAME}",
                         "-o", "name", check=False, timeout=20)
        if listed.returncode == 0 and not listed.stdout.strip():
            return
        time.sleep(0.5)


def _stop_containers(state_dir: Path, socket: Path) -> None:
    """Kills the containers' init processes, then their shims. The init PIDs are those containerd
    recorded for each task in its state directory (checked to be in the node's cgroup); a shim
    is the runc shim process started for one of those task ids with this containerd's socket
    (containerd 2 keeps no shim.pid), so a recycled PID or anyone else's shim is never hit."""
    tasks = state_dir / "io.containerd.runtime.v2.task"
    if not tasks.exists():
        return
    killed = [_kill_recorded(p, lambda pid: f"/{CGROUP_ROOT}/" in Path(f"/proc/{pid}/cgroup").read_text())
              for p in tasks.glob("*/*/init.pid")]
    ids = {d.name for d in tasks.glob("*/*") if d.is_dir()}
    for pid in _shims(ids, socket):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid and _exists(pid) for pid in killed):
        time.sleep(0.1)


def _shims(task_ids: set[str], socket: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name != "containerd-shim-runc-v2":
            continue
        args = dict(zip(argv[1::2], argv[2::2], strict=False))
        if args.get("-address") == str(socket) and args.get("-id") in task_ids:
            found.append(int(proc.name))
    return found


def _kill_recorded(pid_file: Path, ours: Callable[[int], bool]) -> int | None:
    """SIGKILL to the PID in `pid_file` when it is still the process that was recorded (a
    container in the node's cgroup, or a runc shim), so a recycled PID is never hit."""
    try:
        pid = int(pid_file.read_text().strip())
        if not ours(pid):
            return None
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return None
    return pid


def _exists(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    return points


def _unmount_under(root: Path) -> None:
    """Unmounts the container rootfs, volumes and network namespaces under the node's directory,
    deepest first."""
    for _ in range(3):
        points = _mounts_under(root)
        if not points:
            return
        for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _cgroup_hierarchies() -> list[Path]:
    """The cgroup v1 hierarchies the kubelet uses, plus the unified one on a hybrid host."""
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]  # pure v2
    return [p for p in sorted(CGROUP_FS.iterdir())
            if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()]


def _remove_cgroup_tree(path: Path) -> None:
    if not path.exists():
        return
    if path.name == cpu.BED_GROUP:  # the bed's processes may outlive the node: back to the root group
        for pid in (path / "cgroup.procs").read_text().split():
            cpu.place(int(pid), path.parent)
    for directory in sorted((d for d in path.rglob("*") if d.is_dir()), key=lambda d: d.as_posix().count("/"),
                            reverse=True):
        try:
            directory.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError:
        pass


def _manifest_digest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        index = tar.extractfile("index.json")
        assert index is not None, f"{archive} is not an OCI archive"
        digest: str = json.load(index)["manifests"][0]["digest"]
        return digest


def _containerd_config(node: Path, socket: Path, cni_bin: Path, root: Path) -> str:
    state = node / "containerd" / "state"
    return f"""version = 3
root = "{root}"
state = "{state}"
# Nothing from the host's /etc/containerd: this node's configuration is this file alone.
imports = []
# NRI would listen on a host-wide socket; the node needs none.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{IMAGES['pause']}"

[plugins.'io.containerd.cri.v1.runtime']
  # This kind of machine runs in a VM without CAP_SYS_RESOURCE: runc cannot lower the pause
  # container's oom_score_adj below the shim's, and every sandbox then fails with "can't get
  # final child's PID from pipe". Restricting the value to the shim's own avoids the write.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the node's own state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{state / 'runc'}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{node / 'cni' / 'net.d'}"
    max_conf_num = 1

[plugins.'io.containerd.internal.v1.opt']
  path = "{node / 'containerd' / 'opt'}"
"""


def _cni_config(node: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0", "name": "spillway",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "hairpinMode": True,
             # No masquerade: pods talk only to the node, each other and Services.
             "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": str(node / "cni" / "ipam"),
                      "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME, "mode": "iptables",
        "clusterCIDR": "10.244.0.0/15",  # the real node's pods and kwok's fake ones
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{free_port()}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
        # NodePorts only on the node's own address, never on the machine's interfaces.
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # Zeros leave the host's conntrack settings as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def _dns_objects() -> str:
    """CoreDNS's read access, and the kube-dns Service whose endpoint is CoreDNS on the node's
    address (a host process, so the EndpointSlice is written here rather than by a selector)."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:spillway-coredns"},
         "rules": [{"apiGroups": [""], "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:spillway-coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:spillway-coredns"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:spillway-coredns"}]},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
         "spec": {"clusterIP": CLUSTER_DNS, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "kube-dns-node", "namespace": "kube-system",
                      "labels": {"kubernetes.io/service-name": "kube-dns",
                                 "endpointslice.kubernetes.io/managed-by": "test-bed.spillway.io"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}, "nodeName": NODE_NAME}],
         "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
    ]
    return "\n---\n".join(json.dumps(d) for d in docs)
