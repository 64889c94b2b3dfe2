"""One operator, many ScalableServices, a steady load: what the operator costs while nothing
changes; writes bench/operator-scale.md.

Real parts: a control plane with kwok's fake nodes only (`LocalCluster(with_real_node=False)`,
loopback; it never touches the host's real node), Debian's Prometheus scraping one driven
exporter every second, and `spillway run` as a process of its own, authenticated as the chart's
service account with the chart's RBAC, so that the API server's audit log (whose policy records
every request of `system:serviceaccounts:spillway-system`) counts exactly the operator's requests.

The exporter serves the HAProxy preset's series for every service, as pod discovery would label
a balancer's (`app_kubernetes_io_instance` on each series, `namespace` from the target), under a
load that decides nothing new: every service holds `replicas.min`. A first operator creates every
service's children and decides once for each, then stops, so that each measured mode starts
from the same cluster state: it applies its services, starts a fresh operator, waits until that
has run one interval per service, `--settle` more seconds and until Prometheus holds a full rate
window, then measures `--duration` seconds: the operator's RSS and CPU (from /proc), its API
requests and writes (audit log), Prometheus' queries (its own counters) and the lateness of the
scaling intervals (the operator's histogram). Modes: `grouped` (the presets, read together) and
`per-service` (the same queries written into `scaling.queries`, so each service reads its own).

Every process is started by this script and stopped by its PID, whatever happens; `--timeout`
bounds the whole run. Run small first:
    .venv/bin/python bench/operator_scale.py --services 50 --interval 15 --duration 60
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

import yaml  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from spillway.api.spec import Queries  # noqa: E402
from spillway.metrics.presets import PRESETS, grouped, render  # noqa: E402
from spillway.metrics.prometheus import Grouped, interpret  # noqa: E402
from tests.cluster.localcluster import LocalCluster, free_port  # noqa: E402
from tests.integration.components import DrivenExporter, Prometheus, TrackedProcess  # noqa: E402

NAMESPACE = "bench"
OPERATOR_USER = "system:serviceaccount:spillway-system:spillway"
RBAC_KINDS = {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
              "Role", "RoleBinding"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# The steady load: nothing queued, 5 requests served, 10 arriving per second, 50 ms each;
# Little's law and the defaults (200 workers at 70%) ask for 1 replica, which is `replicas.min`.
SERVED, ARRIVALS_PER_SECOND, TOTAL_TIME_SECONDS = 5.0, 10.0, 0.05
# The preset's rate window plus a margin: until Prometheus has scraped that long, rate() still
# climbs towards the arrival rate and every interval reads a new value.
WARM_SECONDS = 60 + 15


@dataclass
class Run:
    mode: str
    services: int
    interval: float
    window: float = 0.0
    startup_seconds: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    prometheus_cpu_seconds: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)  # "verb resource" -> count, in the window
    watches: int = 0
    prometheus_queries: float = 0.0
    operator_queries: dict[str, float] = field(default_factory=dict)
    shared_reads: float = 0.0
    lateness: list[tuple[float, float]] = field(default_factory=list)  # (upper bound, count), cumulative
    period_overrun: list[float] = field(default_factory=list)
    decisions_moved: float = 0.0
    exact: tuple[int, int] = (0, 0)

    @property
    def intervals(self) -> float:
        return self.window / self.interval

    @property
    def writes(self) -> int:
        return sum(n for key, n in self.requests.items() if key.split()[0] in WRITE_VERBS)


# --- the bed ----------------------------------------------------------------------------------

def operator_kubeconfig(cluster: LocalCluster) -> Path:
    """The chart's service account and RBAC (the Deployment left out: the operator runs here)."""
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text())
            if d and d["kind"] in RBAC_KINDS]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
    cluster.kubectl("wait", "--for=condition=Established", "crd/scalableservices.spillway.io")
    token = cluster.kubectl("create", "token", "spillway", "-n", "spillway-system", "--duration=48h").stdout.strip()
    path = cluster.workdir / "operator.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "local", "cluster": {"server": cluster.server,
                                                   "certificate-authority": str(cluster.pki["ca.crt"])}}],
        "users": [{"name": "spillway", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "spillway"}}],
    }))
    path.chmod(0o600)
    return path


def add_nodes(cluster: LocalCluster, services: int) -> None:
    """Room for one pod per service on kwok's fake nodes (the cluster's three hold 330)."""
    extra = max(0, math.ceil((services + 20 - 330) / 100))
    nodes = [{"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": f"bench-node-{i}", "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        "labels": {"kubernetes.io/hostname": f"bench-node-{i}", "kubernetes.io/os": "linux", "type": "kwok"}},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}} for i in range(extra)]
    if nodes:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(nodes))


def service_names(count: int) -> list[str]:
    return [f"svc-{i:04d}" for i in range(count)]


def drive(exporter: DrivenExporter, names: list[str]) -> None:
    """The series `components.drive_haproxy` writes, each also labelled with its service's
    `app_kubernetes_io_instance` as pod discovery labels a balancer pod's."""
    for name in names:
        backend = f'{{proxy="{name}",app_kubernetes_io_instance="{name}"}}'
        server = f'{{proxy="{name}",server="s1",app_kubernetes_io_instance="{name}"}}'
        exporter.set(**{f"haproxy_backend_current_queue{backend}": 0,
                        f"haproxy_server_current_queue{server}": 0,
                        f"haproxy_backend_current_sessions{backend}": SERVED,
                        f"haproxy_server_current_sessions{server}": SERVED,
                        f"haproxy_backend_total_time_average_seconds{backend}": TOTAL_TIME_SECONDS})
        exporter.grow(**{f"haproxy_backend_http_requests_total{backend}": ARRIVALS_PER_SECOND})


def manifests(names: list[str], prometheus_url: str, interval: float, mode: str) -> str:
    scaling: dict[str, Any] = {"prometheus": {"url": prometheus_url}, "interval": f"{interval:g}s"}
    if mode == "per-service":  # the preset's own queries, as overrides: never grouped
        scaling["queries"] = {"queueDepth": PRESETS["HAProxy"]["queue_depth"],
                              "inFlight": PRESETS["HAProxy"]["in_flight"],
                              "arrivalRate": PRESETS["HAProxy"]["arrival_rate"],
                              "latency": PRESETS["HAProxy"]["latency"]}
    return yaml.safe_dump_all([{
        "apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "localhost/spillway/pause:1",
                                                       "ports": [{"name": "http", "containerPort": 8080}]}]}},
                 "replicas": {"min": 1, "max": 10}, "scaling": scaling},
    } for name in names])


def exactness(prometheus_url: str, names: list[str]) -> tuple[int, int]:
    """Each sampled service's row of every grouped query against its own query, both evaluated
    at the same instant: (equal, compared)."""
    def query(text: str, at: float) -> Any:
        url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": text, "time": f"{at:.3f}"})
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())["data"]["result"]

    at = time.time() - 1
    equal = compared = 0
    answers: dict[str, Any] = {}
    for name in names:
        arguments: dict[str, Any] = {"namespace": NAMESPACE, "service": name, "deployments": [name], "quantile": 0.95}
        alone = render("HAProxy", Queries(), **arguments)
        for signal_name, shared in grouped("HAProxy", Queries(), **arguments).items():
            if shared.query not in answers:
                answers[shared.query] = query(shared.query, at)
            labels = tuple(label for label, _ in shared.row)
            row = Grouped.of(answers[shared.query], None, labels).answer(tuple(v for _, v in shared.row), at, 60)
            compared += 1
            equal += row == interpret(query(alone[signal_name], at), at, 60)
    return equal, compared


# --- what is measured -------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def status_mb(pid: int, key: str) -> float:
    return proc_field(f"/proc/{pid}/status", key) / 1024


def proc_field(path: str, key: str) -> float:
    """A `Key:   value kB` line of a /proc file, in kB."""
    for line in Path(path).read_text().splitlines():
        if line.startswith(f"{key}:"):
            return float(line.split()[1])
    return 0.0


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def audit_events(cluster: LocalCluster, since: float, until: float) -> Iterator[dict[str, Any]]:
    """The operator's requests received in [since, until), each once, from every audit file
    (the API server rotates them)."""
    seen: set[str] = set()
    for path in sorted(cluster.workdir.glob("audit*.log")):
        with path.open() as handle:
            for line in handle:
                if OPERATOR_USER not in line:
                    continue
                event = json.loads(line)
                if event.get("user", {}).get("username") != OPERATOR_USER or event["auditID"] in seen:
                    continue
                received = datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
                if since <= received < until:
                    seen.add(event["auditID"])
                    yield event


def measure(run: Run, cluster: LocalCluster, operator_pid: int, prometheus: Prometheus, metrics_url: str) -> None:
    prometheus_pid = prometheus.process.proc.pid if prometheus.process.proc else 0
    before = (time.time(), cpu_seconds(operator_pid), cpu_seconds(prometheus_pid), scrape(metrics_url),
              scrape(f"{prometheus.url}/metrics"))
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(1.0):
            run.rss_mb.append(status_mb(operator_pid, "VmRSS"))

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    time.sleep(run.window)
    stop.set()
    sampler.join(5)
    after = (time.time(), cpu_seconds(operator_pid), cpu_seconds(prometheus_pid), scrape(metrics_url),
             scrape(f"{prometheus.url}/metrics"))
    run.window = after[0] - before[0]
    run.cpu_seconds, run.prometheus_cpu_seconds = after[1] - before[1], after[2] - before[2]
    run.peak_rss_mb = status_mb(operator_pid, "VmHWM")
    ops_before, ops_after, prom_before, prom_after = before[3], after[3], before[4], after[4]
    run.prometheus_queries = (total(prom_after, "prometheus_http_requests_total", handler="/api/v1/query")
                              - total(prom_before, "prometheus_http_requests_total", handler="/api/v1/query"))
    for scope in ("service", "grouped"):
        run.operator_queries[scope] = (total(ops_after, "spillway_prometheus_queries_total", scope=scope)
                                       - total(ops_before, "spillway_prometheus_queries_total", scope=scope))
    run.shared_reads = (total(ops_after, "spillway_prometheus_shared_reads_total")
                        - total(ops_before, "spillway_prometheus_shared_reads_total"))
    run.decisions_moved = (total(ops_after, "spillway_scaling_decisions_total")
                           - total(ops_before, "spillway_scaling_decisions_total"))
    bucket = "spillway_scaling_interval_lateness_seconds_bucket"
    bounds = sorted({dict(ls)["le"] for (n, ls) in ops_after if n == bucket}, key=float)
    run.lateness = [(float(le), total(ops_after, bucket, le=le) - total(ops_before, bucket, le=le)) for le in bounds]
    starts: dict[str, list[float]] = {}
    for event in audit_events(cluster, before[0], after[0]):
        ref = event.get("objectRef", {})
        resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        if event["verb"] == "watch":
            run.watches += 1
            continue
        run.requests[f"{event['verb']} {resource}"] += 1
        if event["verb"] == "get" and resource == "scalableservices":
            starts.setdefault(ref.get("name", ""), []).append(
                datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp())
    run.period_overrun = period_overruns(starts, run.interval)


def period_overruns(starts: dict[str, list[float]], interval: float) -> list[float]:
    """From each service's reads of itself: the time between the starts of its consecutive
    intervals (reads closer than half an interval belong to one), beyond the interval."""
    overruns = []
    for times in starts.values():
        ordered = sorted(times)
        firsts = [t for i, t in enumerate(ordered) if i == 0 or t - ordered[i - 1] > interval / 2]
        overruns += [b - a - interval for a, b in zip(firsts, firsts[1:], strict=False)]
    return overruns


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """As Prometheus' histogram_quantile: linear within the bucket that holds the rank."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


# --- one mode ---------------------------------------------------------------------------------

def apply_services(label: str, cluster: LocalCluster, names: list[str], prometheus: Prometheus, interval: float,
                   mode: str) -> None:
    manifest = cluster.workdir / f"services-{mode}.yaml"
    manifest.write_text(manifests(names, prometheus.url, interval, mode))
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest), timeout=1800)
    print(f"[{label}] applied {len(names)} ScalableServices ({mode}) in {time.monotonic() - started:.0f}s", flush=True)


def start_operator(label: str, cluster: LocalCluster, kubeconfig: Path, stack: ExitStack) -> tuple[TrackedProcess, str]:
    metrics_port = free_port()
    operator = TrackedProcess([str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(kubeconfig),
                               "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
                               "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
                              cluster.workdir / f"operator-{label}.log")
    stack.callback(operator.stop)
    operator.start()
    return operator, f"http://127.0.0.1:{metrics_port}/metrics"


def wait_for(label: str, operator: TrackedProcess, what: str, count: Any, wanted: int, timeout: float) -> float:
    """Polls `count()` until it reaches `wanted` (or `timeout`: then says so and goes on); fails at
    once when the operator exited. Returns the seconds it took."""
    started, deadline, reached = time.monotonic(), time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        if operator.proc is None or operator.proc.poll() is not None:
            raise RuntimeError(f"the operator exited:\n{operator.tail()}")
        try:
            reached = int(count())
        except OSError:  # its metrics endpoint is not up yet
            reached = 0
        if reached >= wanted:
            break
        time.sleep(2)
    took = time.monotonic() - started
    print(f"[{label}] {what}: {reached}/{wanted} after {took:.0f}s"
          + ("" if reached >= wanted else "; going on anyway"), flush=True)
    return took


def prepare(args: argparse.Namespace, cluster: LocalCluster, kubeconfig: Path, prometheus: Prometheus,
            names: list[str], stack: ExitStack) -> None:
    """A first operator creates every service's children and decides once for each, then stops:
    every measured mode then starts a fresh operator on the same cluster state."""
    apply_services("prepare", cluster, names, prometheus, args.interval, "grouped")
    operator, _ = start_operator("prepare", cluster, kubeconfig, stack)

    def decided() -> int:
        return sum(1 for line in cluster.kubectl(
            "get", "ssvc", "-n", NAMESPACE, "-o", "jsonpath={range .items[*]}{.status.lastDecision.time}{'\\n'}{end}",
            timeout=300).stdout.splitlines() if line.strip())

    wait_for("prepare", operator, "services decided once", decided, len(names), args.ready_timeout)
    operator.stop()


def run_mode(mode: str, args: argparse.Namespace, cluster: LocalCluster, kubeconfig: Path, prometheus: Prometheus,
             prometheus_started: float, names: list[str], stack: ExitStack) -> Run:
    run = Run(mode, len(names), args.interval, window=args.duration)
    apply_services(mode, cluster, names, prometheus, args.interval, mode)
    operator, metrics_url = start_operator(mode, cluster, kubeconfig, stack)
    run.startup_seconds = wait_for(mode, operator, "scaling intervals run", lambda: total(
        scrape(metrics_url), "spillway_scaling_intervals_total"), len(names), args.ready_timeout)
    time.sleep(max(args.settle, prometheus_started + WARM_SECONDS - time.monotonic()))
    run.exact = exactness(prometheus.url, names[:: max(1, len(names) // 50)])
    print(f"[{mode}] measuring {args.duration:.0f}s", flush=True)
    assert operator.proc is not None
    measure(run, cluster, operator.proc.pid, prometheus, metrics_url)
    operator.stop()
    return run


# --- the report -------------------------------------------------------------------------------

def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = proc_field("/proc/meminfo", "MemTotal")
    prometheus = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{cpu}, {os.cpu_count()} cores, {memory / 1024 / 1024:.0f} GiB; Linux {platform.release()}; "
            f"Python {platform.python_version()}; {prometheus.replace('prometheus, version', 'Prometheus')}")


def report(runs: list[Run], command: str) -> str:
    first = runs[0]
    revision = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip()
    lines = [
        f"## {first.services} services, scaling.interval {first.interval:g}s "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {revision})",
        "",
        f"Machine: {machine()}.",
        f"Command: `{command}`",
        "",
        "Targets: operator RSS < 300 MB, zero writes per idle interval, p99 interval lateness <= interval + 1 s.",
        "",
    ]
    by_mode = {r.mode: r for r in runs}
    compared = len(by_mode) == 2
    lines += ["| | " + " | ".join(r.mode for r in runs) + (" | per-service / grouped |" if compared else " |"),
              "|---|" + "---|" * len(runs) + ("---|" if compared else "")]

    def row(label: str, cell: Any, number: Any = None) -> None:
        ratio = ""
        if compared:
            a, b = (number(by_mode["per-service"]), number(by_mode["grouped"])) if number else (0, 0)
            ratio = f" {a / b:.1f}x |" if number and b else " |"
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in runs) + " |" + ratio)

    def per_second(r: Run, n: float) -> float:
        return n / r.window if r.window else math.nan

    row("measured window", lambda r: f"{r.window:.0f} s ({r.intervals:.1f} intervals)")
    row("fresh operator: until one interval per service ran", lambda r: f"{r.startup_seconds:.0f} s")
    row("operator RSS, mean / max in window", lambda r: f"{_mean(r.rss_mb):.0f} / {max(r.rss_mb or [0]):.0f} MB",
        lambda r: max(r.rss_mb or [0]))
    row("operator RSS peak (VmHWM, startup included)", lambda r: f"{r.peak_rss_mb:.0f} MB")
    row("operator CPU", lambda r: f"{per_second(r, r.cpu_seconds):.2f} s/s", lambda r: r.cpu_seconds / r.window)
    row("operator CPU per interval per service",
        lambda r: f"{r.cpu_seconds / r.intervals / r.services * 1000:.2f} ms",
        lambda r: r.cpu_seconds / r.intervals / r.services)
    row("API requests by the operator (watches apart)",
        lambda r: f"{per_second(r, sum(r.requests.values())):.1f}/s", lambda r: sum(r.requests.values()) / r.window)
    row("API requests per interval per service",
        lambda r: f"{sum(r.requests.values()) / r.intervals / r.services:.2f}")
    row("watch requests in window", lambda r: f"{r.watches}")
    row("writes per idle interval", lambda r: f"{r.writes / r.intervals:.1f} ({r.writes} in window)")
    row("Prometheus queries (its /api/v1/query)", lambda r: f"{per_second(r, r.prometheus_queries):.1f}/s",
        lambda r: r.prometheus_queries / r.window)
    row("operator's queries: one-service / grouped",
        lambda r: f"{r.operator_queries.get('service', 0):.0f} / {r.operator_queries.get('grouped', 0):.0f}")
    row("signal reads answered by a shared query", lambda r: f"{r.shared_reads:.0f}")
    row("Prometheus CPU", lambda r: f"{per_second(r, r.prometheus_cpu_seconds):.2f} s/s",
        lambda r: r.prometheus_cpu_seconds / r.window)
    row("interval lateness p50 / p99 (operator histogram)", _lateness)
    row("loop period beyond the interval, p50 / p99 / max (audit: the loop's reads of its resource)",
        lambda r: (f"{quantile(r.period_overrun, 0.5):.2f} / {quantile(r.period_overrun, 0.99):.2f} / "
                   f"{max(r.period_overrun):.2f} s" if r.period_overrun else "n/a"))
    row("decisions that moved a count", lambda r: f"{r.decisions_moved:.0f}")
    row("grouped row = own query (same instant)", lambda r: f"{r.exact[0]}/{r.exact[1]}")
    for r in runs:
        lines += ["", f"Requests in the window, `{r.mode}`: "
                  + ", ".join(f"{key} {n}" for key, n in r.requests.most_common()) + "."]
    return "\n".join(lines) + "\n"


def _lateness(r: Run) -> str:
    count = r.lateness[-1][1] if r.lateness else 0
    if not count:
        return "not observed (nothing fills the histogram yet)"
    verdict = "met" if histogram_quantile(0.99, r.lateness) <= r.interval + 1 else "MISSED"
    return (f"{histogram_quantile(0.5, r.lateness):.2f} / {histogram_quantile(0.99, r.lateness):.2f} s "
            f"({count:.0f} intervals; {verdict})")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


# --- main -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=15.0, help="scaling.interval, seconds")
    parser.add_argument("--duration", type=float, default=300.0, help="measured window per mode, seconds")
    parser.add_argument("--settle", type=float, default=None, help="after every service decided (default 2 intervals)")
    parser.add_argument("--ready-timeout", type=float, default=900.0,
                        help="for every service to decide once (preparation), for N intervals to run (each mode)")
    parser.add_argument("--modes", default="grouped,per-service", help="grouped, per-service or both")
    parser.add_argument("--timeout", type=float, default=None, help="bound on the whole run (default: generous)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "operator-scale.md")
    parser.add_argument("--append", action="store_true", help="add this run's section to --out")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    args.settle = args.settle if args.settle is not None else 2 * args.interval
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    assert set(modes) <= {"grouped", "per-service"} and modes, args.modes
    budget = args.timeout or (len(modes) + 1) * (args.ready_timeout + args.settle + args.duration + 600) + 600
    command = "python bench/operator_scale.py " + shlex.join(sys.argv[1:])

    def interrupted(signum: int, _: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # unwinds the ExitStack: every process stopped

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, lambda *_: interrupted(signal.SIGALRM, None))
    signal.alarm(int(budget))
    workdir = Path(tempfile.mkdtemp(prefix="spillway-bench-scale-"))
    runs: list[Run] = []
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        cluster = LocalCluster(workdir=workdir / "cluster", with_real_node=False)
        stack.callback(cluster.stop)
        cluster.start()
        kubeconfig = operator_kubeconfig(cluster)
        add_nodes(cluster, args.services)
        cluster.kubectl("create", "namespace", NAMESPACE)
        names = service_names(args.services)
        exporter = stack.enter_context(DrivenExporter())
        drive(exporter, names)
        (workdir / "prometheus").mkdir()
        prometheus = Prometheus([f"127.0.0.1:{exporter.port}"], {"namespace": NAMESPACE}, workdir / "prometheus",
                                lookback_delta=None)
        stack.callback(prometheus.stop)
        prometheus.start()
        prometheus_started = time.monotonic()
        prepare(args, cluster, kubeconfig, prometheus, names, stack)
        for mode in modes:
            runs.append(run_mode(mode, args, cluster, kubeconfig, prometheus, prometheus_started, names, stack))
    signal.alarm(0)
    text = report(runs, command)
    print(text)
    if not args.no_write:
        header = ("# Operator at scale: one operator, many ScalableServices, a steady load\n\n"
                  "`bench/operator_scale.py` (method in its docstring). Each section is one run, as measured.\n\n")
        previous = args.out.read_text() if args.append and args.out.exists() else header
        args.out.write_text(previous.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
