"""The demo's scenario on a cluster whose nodes run real pods: the operator installed by its
chart, the sample ScalableService (manifests/examples/demo.yaml), a bounded load of logged-in
users (`demo.load`), one app pod and the Redis primary deleted midway, a status line every few
seconds, and the report (`demo.report`) at the end.

On the local cluster the load runs on the host and Prometheus is the host's; on a cluster whose
pod and Service addresses the host cannot reach (`Bed.in_cluster`: kind, any cluster) both run
as pods in the demo's namespace (`demo.incluster`).

Used by `make demo` (`python -m demo up`, on the persistent local cluster) and by
tests/integration/test_demo.py (on the test session's cluster), which asserts on the `Summary`.
Every process it starts is stopped by the PID it recorded; every loop is bounded in time.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from demo import incluster, midway
from demo.load import MAX_SECONDS
from demo.report import write_report
from demo.summary import Summary, read_lines, summarize
from tests.cluster import cpu

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "manifests" / "examples" / "demo.yaml"
CHART = ROOT / "charts" / "spillway"
NAME = "shop"
OPERATOR_NAMESPACE = "spillway-system"
WORK_MS = 200  # each request holds one of a replica's four Tomcat threads this long: 20 req/s a replica
USERS = 200


@dataclass(frozen=True)
class Bed:
    """What the scenario needs of a cluster: its tools, the images (and whether the nodes already
    hold them: `Never`, or pull them: `IfNotPresent`), where the pods go, and whether Prometheus
    and the load must run in pods (the host cannot reach the cluster's pod and Service addresses)."""

    kubeconfig: str
    kubectl: str
    helm: str
    images: dict[str, str]
    placement: dict[str, Any]
    in_cluster: bool = False
    pull_policy: str = "Never"

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.kubectl, f"--kubeconfig={self.kubeconfig}", *args], input=stdin, text=True,
                                capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def json(self, *args: str) -> dict[str, Any] | None:
        result = self.run(*args, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def apply(self, obj: dict[str, Any]) -> None:
        self.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump(obj))

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.helm, f"--kubeconfig={self.kubeconfig}", *args], capture_output=True,
                                text=True, timeout=360)
        if check and result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)}: {result.stderr.strip()}")
        return result


@dataclass(frozen=True)
class Plan:
    """The load profile and the windows, scaled to the run's length."""

    duration: float
    phases: tuple[tuple[str, float, float], ...]  # (name, seconds, requests per second)
    window_seconds: int
    users: int = USERS
    work_ms: int = WORK_MS
    objective_seconds: float = 0.5
    # Errors expected at the surge's onset: a scrape and an interval to see it, then new replicas
    # start (a JVM each, several at once on this machine's two cores) while the queue's oldest
    # requests reach capacity.timeout.
    grace_seconds: float = 45.0

    @property
    def surge(self) -> tuple[float, float]:
        """Start and end of the surge, in seconds from the load's start."""
        start = self.phases[0][1]
        return start, start + self.phases[1][1]


def plan(duration: float) -> Plan:
    """Steady at a third of what the two minimum replicas serve (4 threads x 200 ms: 20 req/s
    each), a surge twice what they serve (80 req/s: four replicas fully busy, the sample's maximum
    of six at 67 %, room for a 2-core machine whose six JVMs serve only about 110 req/s), then
    calm; the scale-down window fits in the calm phase so that the scale-in shows."""
    if not 60 <= duration <= MAX_SECONDS:
        raise ValueError(f"the demo needs at least 60 s and at most {MAX_SECONDS:g} s, not {duration!r}")
    steady, surge = round(duration * 0.2), round(duration * 0.4)
    calm = round(duration) - steady - surge
    return Plan(duration=duration, phases=(("steady", steady, 12.0), ("surge", surge, 80.0), ("calm", calm, 6.0)),
                window_seconds=max(15, round(calm * 0.3)))


def sample(bed: Bed, the_plan: Plan, prometheus_url: str, namespace: str) -> dict[str, Any]:
    """The sample, made to run on the test bed: its images, the node's placement, the Prometheus
    the bed started, and the run's scale-down window."""
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"]["namespace"] = namespace
    spec = body["spec"]
    pod = spec["template"]["spec"]
    pod.update(bed.placement)
    pod["containers"][0]["image"] = bed.images["session-app"]
    pod["containers"][0]["imagePullPolicy"] = bed.pull_policy
    spec["balancing"]["haproxy"] = {"image": bed.images["haproxy"], **bed.placement}
    spec["sessionStore"]["redis"].update({"image": bed.images["redis"], **bed.placement})
    spec["scaling"]["prometheus"]["url"] = prometheus_url
    spec["scaling"]["behavior"]["scaleDown"]["stabilizationWindow"] = f"{the_plan.window_seconds}s"
    return body


def install_operator(bed: Bed) -> None:
    """The chart, with the operator's locally built image, on the real node."""
    repository, _, tag = bed.images["operator"].rpartition(":")
    values = ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
              "--set", f"image.pullPolicy={bed.pull_policy}", "--set", "replicaCount=1", "--set", "logFormat=plain"]
    for key, value in bed.placement.get("nodeSelector", {}).items():
        values += ["--set-string", f"nodeSelector.{key.replace('.', chr(92) + '.')}={value}"]
    for i, toleration in enumerate(bed.placement.get("tolerations", [])):
        values += ["--set-string", ",".join(f"tolerations[{i}].{k}={v}" for k, v in toleration.items())]
    bed.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    bed.helm_run("upgrade", "--install", "spillway", str(CHART), "-n", OPERATOR_NAMESPACE, *values, "--wait",
                 "--timeout", "5m")


def uninstall_operator(bed: Bed) -> None:
    bed.helm_run("uninstall", "spillway", "-n", OPERATOR_NAMESPACE, "--wait", "--timeout", "3m", check=False)


@dataclass
class Result:
    summary: Summary
    report: Path
    out_dir: Path
    events: list[dict[str, Any]] = field(default_factory=list)


def run(bed: Bed, the_plan: Plan, prometheus_url: str | None, out_dir: Path, namespace: str = "demo",
        say: Callable[[str], None] = print) -> Result:
    """The whole scenario; leaves the sample running (the caller removes the namespace). With
    `bed.in_cluster` the demo's Prometheus is started in the namespace and `prometheus_url` is
    ignored (None); otherwise it is the host's Prometheus, which the cluster's pods reach."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bed.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    if bed.in_cluster:
        prometheus_url = start_prometheus(bed, namespace)
        say(f"prometheus {prometheus_url} in the cluster (pod discovery in {namespace})")
    if prometheus_url is None:
        raise ValueError("the host's Prometheus URL is needed unless the bed runs it in the cluster")
    bed.apply(sample(bed, the_plan, prometheus_url, namespace))
    say(f"applied ScalableService {namespace}/{NAME}: HAProxy LeastConnection, Cookie affinity, Redis Sentinel, "
        f"scaling on the HAProxy preset with p95 < {the_plan.objective_seconds * 1000:.0f} ms")
    _wait(bed, namespace, 420, "the app, its balancer and its session store Ready", say, lambda s: all(
        _condition(s, t) == "True" for t in ("Ready", "BalancerReady", "SessionStoreReady")))
    service = bed.json("get", "service", NAME, "-n", namespace)
    assert service is not None, f"Service {namespace}/{NAME} is missing"
    address, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
    url = f"http://{address}:{port}"
    _wait_answering(bed, namespace, url, port, 120)

    load_log, status_log = out_dir / "load.jsonl", out_dir / "status.jsonl"
    for log in (load_log, status_log):
        log.unlink(missing_ok=True)
    arguments = ["--url", url, "--users", str(the_plan.users), "--work-ms", str(the_plan.work_ms),
                 *[a for name, seconds, rate in the_plan.phases for a in ("--phase", f"{name}:{seconds:g}:{rate:g}")]]
    say(f"load on {url}{' from a pod' if bed.in_cluster else ''}: "
        + ", ".join(f"{n} {s:g}s at {r:g} req/s" for n, s, r in the_plan.phases)
        + f"; {the_plan.users} users logged in, each request {the_plan.work_ms} ms of work")
    events: list[dict[str, Any]] = []
    # On the local test bed the node's pods are this machine's processes: their CPU is watched.
    cpu_log = out_dir / "cpu.jsonl"
    cpu_log.unlink(missing_ok=True)
    watch = cpu.Watch(cpu_log, [str(bed.kubectl), f"--kubeconfig={bed.kubeconfig}"]).start() \
        if cpu.available() else None
    if bed.in_cluster:
        load = _load_in_cluster(bed, namespace, the_plan, [*arguments, "--allow", address], load_log)
    else:
        with (out_dir / "load.log").open("wb") as output:
            load = subprocess.Popen([sys.executable, "-m", "demo.load", *arguments, "--log", str(load_log)],
                                    stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                                    start_new_session=True)
    def load_done() -> bool:
        if bed.in_cluster:  # the pod, not the log's follower (which a dropped connection ends too)
            return _pod_phase(bed, namespace, incluster.LOAD) in ("Succeeded", "Failed", None)
        return load.poll() is not None

    ended: str | None = None  # the load pod's last phase
    try:
        spec = yaml.safe_load(SAMPLE.read_text())["spec"]
        midway.follow(bed, namespace, NAME, the_plan, int(spec["replicas"]["min"]),
                      float(spec["scaling"]["targets"]["queuePerReplica"]), load_done, load_log, status_log, events,
                      say)
    finally:
        if load.poll() is None:
            load.terminate()
            load.wait(timeout=30)
        if watch is not None:
            watch.stop()
        if bed.in_cluster:
            # The whole log once the pod has ended: the follower only fed the status lines.
            ended = _pod_phase(bed, namespace, incluster.LOAD)
            logs = bed.run("logs", incluster.LOAD, "-n", namespace, check=False)
            if logs.returncode == 0:
                load_log.write_text(logs.stdout)
            bed.run("delete", "pod", incluster.LOAD, "-n", namespace, "--wait=false", "--ignore-not-found", check=False)
    if (ended == "Failed") if bed.in_cluster else load.returncode not in (0, -15):  # -15: stopped at the bound
        tail = (load_log if bed.in_cluster else out_dir / "load.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError("the load failed:\n" + "\n".join(tail))
    events += midway.scale_events(bed, namespace)
    events.sort(key=lambda e: e["t"])
    load_rows, status_rows = read_lines(load_log), read_lines(status_log)
    summary = summarize(load_rows, status_rows, events, the_plan.objective_seconds,
                        grace_seconds=the_plan.grace_seconds, cpu_rows=read_lines(cpu_log), deployment=NAME)
    report = write_report(load_log, status_log, events, out_dir, the_plan.objective_seconds,
                          f"Spillway demo: {the_plan.duration:g} s, a surge of {the_plan.phases[1][2]:g} req/s",
                          grace_seconds=the_plan.grace_seconds, cpu_log=cpu_log, deployment=NAME)
    return Result(summary=summary, report=report, out_dir=out_dir, events=events)


def start_prometheus(bed: Bed, namespace: str) -> str:
    """The demo's Prometheus as a Deployment in `namespace`, once it is ready; its URL for the operator."""
    for obj in incluster.prometheus_objects(namespace, bed.images["prometheus"], bed.placement, bed.pull_policy):
        bed.apply(obj)
    bed.run("rollout", "status", f"deployment/{incluster.PROMETHEUS}", "-n", namespace, "--timeout=180s",
            timeout=200)
    return incluster.prometheus_url(namespace)


def query_prometheus(bed: Bed, prometheus_url: str, namespace: str, path: str) -> dict[str, Any]:
    """A Prometheus API answer: from the host, or through the API server's service proxy for the
    demo's in-cluster Prometheus (whose address the host may not reach)."""
    if bed.in_cluster:
        answer: dict[str, Any] = json.loads(bed.run("get", "--raw", incluster.proxy_path(namespace, path)).stdout)
        return answer
    with urllib.request.urlopen(f"{prometheus_url}{path}", timeout=10) as response:
        found: dict[str, Any] = json.loads(response.read())
        return found


def _load_in_cluster(bed: Bed, namespace: str, the_plan: Plan, arguments: list[str],
                     load_log: Path) -> subprocess.Popen[bytes]:
    """Starts the load's pod and follows its log into `load_log`; the returned process (kubectl
    logs) ends when the load does."""
    bed.run("delete", "pod", incluster.LOAD, "-n", namespace, "--wait=true", "--ignore-not-found", timeout=90)
    for obj in incluster.load_objects(namespace, bed.images["operator"], bed.placement, arguments,
                                      round(the_plan.duration) + 120, bed.pull_policy):
        bed.apply(obj)
    deadline = time.monotonic() + 120
    while (phase := _pod_phase(bed, namespace, incluster.LOAD)) in (None, "Pending"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {namespace}/{incluster.LOAD} not started within 120 s (phase {phase})")
        time.sleep(1)
    with load_log.open("wb") as output:
        return subprocess.Popen([bed.kubectl, f"--kubeconfig={bed.kubeconfig}", "logs", "-f", incluster.LOAD,
                                 "-n", namespace], stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _pod_phase(bed: Bed, namespace: str, name: str) -> str | None:
    found = bed.json("get", "pod", name, "-n", namespace) or {}
    phase: str | None = (found.get("status") or {}).get("phase")
    return phase


def _wait(bed: Bed, namespace: str, seconds: float, what: str, say: Callable[[str], None],
          check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline, said = time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        status = (bed.json("get", "ssvc", NAME, "-n", namespace) or {}).get("status") or {}
        if check(status):
            return status
        if time.monotonic() - said >= 15:
            said = time.monotonic()
            waiting = [f"{c['type']}={c['status']} ({c['reason']})" for c in status.get("conditions") or []
                       if c.get("status") != "True" and c["type"] in ("Ready", "BalancerReady", "SessionStoreReady")]
            say(f"waiting for {what}: {', '.join(waiting) or 'no status yet'}")
        time.sleep(2)
    raise TimeoutError(f"{what}: not within {seconds:.0f}s")


def _wait_answering(bed: Bed, namespace: str, url: str, port: int, seconds: float) -> None:
    """Until the balancer answers (its pods found the replicas): a login from the host, or, where
    the host cannot reach the Service, `GET /whoami` through the API server's service proxy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if bed.in_cluster:
            path = f"/api/v1/namespaces/{namespace}/services/{NAME}:{port}/proxy/whoami"
            if bed.run("get", "--raw", path, check=False, timeout=15).returncode == 0:
                return
        else:
            try:
                request = urllib.request.Request(f"{url}/login", data=b"user=probe", method="POST")
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
        time.sleep(1)
    raise TimeoutError(f"{url} answered nothing within {seconds:.0f}s")


def _condition(status: dict[str, Any], type_: str) -> str | None:
    return next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == type_), None)
