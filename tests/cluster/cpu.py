"""CPU on the machine that hosts the real node: what each of the node's pods used and waited for,
read from the kernel (the pods' cgroups and their threads' scheduler statistics), and the weights
that put the node's pods ahead of the test bed's own host processes.

The evidence a slow start leaves: a pod's CPU time (cgroup `cpuacct.usage`, or `cpu.stat`'s
`usage_usec` on cgroup v2), its CFS throttling (`cpu.stat`), and the time its threads spent
runnable but waiting for a CPU (`/proc/<tid>/schedstat`'s second field, summed over the threads
alive at the sample: a thread that exited takes its wait with it, so the sum is a lower bound).

`Watch` (or `python -m tests.cluster.cpu OUT.jsonl [--kubeconfig K] [--seconds N]`) writes one
sample a second, bounded (1800 s at most), and with a kubeconfig a row per pod of the real node
whenever the API server's account of it changes (created, started, Ready); `demo.summary` turns
them into each new replica's start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

CGROUP_FS = Path("/sys/fs/cgroup")
NODE_GROUP = "spillway-node"  # the kubelet's cgroupRoot (tests/cluster/node.py)
BED_GROUP = "spillway-bed"  # the test bed's own host processes: control plane, kwok, Prometheus
# cgroup v1 cpu.shares. The kubelet gives its kubepods cgroup the node's allocatable CPU in
# shares (2 cores: 2048) and a systemd host gives its system and user slices 1024 each; here the
# node's group would otherwise get the default 1024 beside every runnable thread of the host's
# root cgroup, each weighing 1024 too. The test bed stands in for machines a real node does not
# share its CPU with (the control plane, the clients), so the node weighs four such threads and
# the bed's processes together one: under contention the pods get at least 4/6 of the machine
# against the bed and one busy host thread, and the bed and the host keep the rest.
NODE_SHARES = 4096
BED_SHARES = 1024
MAX_WATCH_SECONDS = 1800.0


def cpu_hierarchy() -> tuple[Path, int] | None:
    """The cgroup hierarchy with the cpu controller and its version (1 or 2); None without one."""
    if (CGROUP_FS / "cpu" / "cpu.shares").exists():
        return CGROUP_FS / "cpu", 1
    controllers = CGROUP_FS / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP_FS, 2
    return None


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares as v2's cpu.weight, by the conversion the kubelet and runc use."""
    return 1 + ((max(2, min(shares, 262144)) - 2) * 9999) // 262142


def set_weight(group: Path, version: int, shares: int) -> None:
    if version == 1:
        (group / "cpu.shares").write_text(str(shares))
    else:
        (group / "cpu.weight").write_text(str(shares_to_weight(shares)))


def place(pid: int, group: Path) -> bool:
    """Moves a process (all its threads) into `group`; False when it is gone or the move fails."""
    try:
        (group / "cgroup.procs").write_text(str(pid))
        return True
    except OSError:
        return False


def bed_groups(hierarchy: Path, version: int) -> list[Path]:
    """Where the bed's group lives: the cpu hierarchy (its weight), and on cgroup v1 also the
    cpuacct one when that is mounted apart (its CPU time, which `sample` reads)."""
    accounting = CGROUP_FS / "cpuacct"
    apart = version == 1 and accounting.is_dir() and not accounting.samefile(hierarchy)
    return [hierarchy / BED_GROUP] + ([accounting / BED_GROUP] if apart else [])


def bed_group() -> Path | None:
    """The test bed's group of host processes when the real node made it (None otherwise)."""
    found = cpu_hierarchy()
    if found is None:
        return None
    path = found[0] / BED_GROUP
    return path if path.is_dir() else None


def place_in_bed(pid: int | None) -> None:
    """Puts a host process of the test bed in the bed's group, when there is one."""
    found = cpu_hierarchy()
    if found is None or pid is None or not (found[0] / BED_GROUP).is_dir():
        return
    for group in bed_groups(*found):
        place(pid, group)


# ------------------------------------------------------------------------------------ sampling
def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _stat(path: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines() if line.strip())}
    except (OSError, ValueError):
        return {}


def _usage_seconds(group: str, version: int) -> float:
    if version == 1:
        return _read_int(CGROUP_FS / "cpuacct" / group / "cpuacct.usage") / 1e9
    return _stat(CGROUP_FS / group / "cpu.stat").get("usage_usec", 0) / 1e6


def _threads(group: Path, version: int) -> Iterable[int]:
    for directory in [group, *(p for p in group.rglob("*") if p.is_dir())]:
        try:
            text = (directory / ("tasks" if version == 1 else "cgroup.threads")).read_text()
        except OSError:
            continue
        yield from (int(t) for t in text.split())


def _waited_seconds(group: Path, version: int) -> float:
    total = 0
    for tid in _threads(group, version):
        try:
            total += int(Path(f"/proc/{tid}/schedstat").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def _host_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pod_groups(hierarchy: Path) -> dict[str, Path]:
    """Pod uid -> its cgroup, for every pod the kubelet runs under the node's cgroup root."""
    found = {}
    for directory in (hierarchy / NODE_GROUP).glob("kubepods*/**/pod*"):
        name = directory.name.removeprefix("kubepods-").removesuffix(".slice")
        if directory.is_dir() and name.startswith("pod") and len(name) > 30:
            found[name[3:].replace("_", "-")] = directory
    return found


def sample() -> dict[str, Any] | None:
    """One row: `t` (unix time), the busy CPU-seconds of the machine (`host`), of the node's pods
    (`node`) and of the bed's group (`bed`), and per pod uid [CPU-seconds, run-queue wait in
    seconds, throttled seconds, throttled periods]. None where no cgroup has the cpu controller."""
    found = cpu_hierarchy()
    if found is None:
        return None
    hierarchy, version = found
    pods = {}
    for uid, group in sorted(pod_groups(hierarchy).items()):
        stat = _stat(group / "cpu.stat")
        throttled = stat.get("throttled_time", 0) / 1e9 if version == 1 else stat.get("throttled_usec", 0) / 1e6
        pods[uid] = [round(_usage_seconds(str(group.relative_to(hierarchy)), version), 3),
                     round(_waited_seconds(group, version), 3), round(throttled, 3), stat.get("nr_throttled", 0)]
    return {"t": round(time.time(), 3), "host": round(_host_busy_seconds(), 2),
            "node": round(_usage_seconds(NODE_GROUP, version), 3),
            "bed": round(_usage_seconds(BED_GROUP, version), 3) if (hierarchy / BED_GROUP).is_dir() else 0.0,
            "pods": pods}


def _when(status: Mapping[str, Any], condition: str) -> float | None:
    for c in status.get("conditions") or []:
        if c.get("type") == condition and c.get("status") == "True" and c.get("lastTransitionTime"):
            return _unix(c["lastTransitionTime"])
    return None


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def pod_rows(kubectl: list[str]) -> list[dict[str, Any]]:
    """A row per pod of the real node: uid, namespace/name, created, its first container's start,
    Ready (unix times, None until they happen), as the API server has them."""
    try:
        out = subprocess.run([*kubectl, "get", "pods", "-A", "--field-selector", "spec.nodeName=real-node-0",
                              "-o", "json"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    rows = []
    for pod in json.loads(out).get("items", []):
        meta, status = pod["metadata"], pod.get("status") or {}
        running = [(c.get("state") or {}).get("running", {}).get("startedAt") for c in status.get("containerStatuses") or []]
        owner = next((f"{o['kind']}/{o['name']}" for o in meta.get("ownerReferences") or []), None)
        rows.append({"pod": meta["uid"], "name": f"{meta['namespace']}/{meta['name']}", "owner": owner,
                     "created": _unix(meta["creationTimestamp"]),
                     "started": min((_unix(s) for s in running if s), default=None),
                     "ready": _when(status, "Ready")})
    return rows


class Watch:
    """Samples the node's CPU a second (and its pods every `pods_every` seconds, through kubectl)
    into a JSON-lines file, in a thread, until `stop()` or `seconds` (at most MAX_WATCH_SECONDS)."""

    def __init__(self, out: Path, kubectl: list[str] | None, seconds: float = MAX_WATCH_SECONDS,
                 every: float = 1.0, pods_every: float = 2.0) -> None:
        self.out, self.kubectl, self.every, self.pods_every = out, kubectl, every, pods_every
        self.seconds = min(seconds, MAX_WATCH_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-watch", daemon=True)

    def start(self) -> Watch:
        self._thread.start()
        return self

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait(self) -> None:
        """Until the watch ends by itself (its bound) or is stopped."""
        self._thread.join()

    def _run(self) -> None:
        deadline, next_pods = time.monotonic() + self.seconds, 0.0
        seen: dict[str, dict[str, Any]] = {}
        with self.out.open("a") as handle:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.kubectl and time.monotonic() >= next_pods:
                    next_pods = time.monotonic() + self.pods_every
                    for row in pod_rows(self.kubectl):
                        if seen.get(row["pod"]) != row:
                            seen[row["pod"]] = row
                            handle.write(json.dumps(row) + "\n")
                sampled = sample()
                if sampled is not None:
                    handle.write(json.dumps(sampled) + "\n")
                handle.flush()
                self._stop.wait(self.every)


def available() -> bool:
    """The real node's cgroups are readable here (the local test bed, not another cluster)."""
    found = cpu_hierarchy()
    return found is not None and (found[0] / NODE_GROUP).is_dir()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.cpu")
    parser.add_argument("out", type=Path, help="JSON-lines file to append the samples to")
    parser.add_argument("--kubeconfig", type=Path)
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    kubectl = [args.kubectl, f"--kubeconfig={args.kubeconfig}"] if args.kubeconfig else None
    with Watch(args.out, kubectl, args.seconds) as watch:
        try:
            watch.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
