"""Real components on loopback for the integration tests: Prometheus and HAProxy from Debian's
packages, an exporter whose values the test drives, and for real traffic small backends with a
fixed service time and a bounded load of HTTP clients. Every process is tracked and stopped by
its PID.

The backends and the clients run as processes of their own (`python -m
tests.integration.components backend|clients ...`), so that the test's own threads never slow
what they measure."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.cluster import cpu
from tests.cluster.localcluster import build
from tests.cluster.processes import free_port

INSTALLER = Path(__file__).with_name("install-components.sh")
REPO = Path(__file__).resolve().parents[2]


def ensure_installed(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        subprocess.run(["bash", str(INSTALLER)], check=True)
        found = shutil.which(binary)
    assert found, f"{binary} is still missing after {INSTALLER}"
    return found


def wait_until(check: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as err:  # noqa: BLE001 - keep polling, report the last error
            last = err
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class TrackedProcess:
    """A child process in its own session, stopped by PID: SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None) -> None:
        self.argv, self.log, self.cwd = argv, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.cwd)
        handle.close()
        cpu.place_in_bed(self.proc.pid)  # behind the real node's pods, with the control plane

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)

    def kill(self, timeout: float = 10) -> None:
        """Dies at once, as a crashed process does: SIGKILL, no shutdown."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


class DrivenExporter:
    """Serves /metrics in the Prometheus text format with the values a test sets, and counters
    that grow at the rate a test sets (`grow`)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.growing: dict[str, tuple[float, float, float]] = {}  # series -> (value, per second, since)
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with exporter.lock:
                    now = time.monotonic()
                    grown = {series: value + per_second * (now - since)
                             for series, (value, per_second, since) in exporter.growing.items()}
                    body = "".join(f"{series} {value}\n"
                                   for series, value in {**exporter.values, **grown}.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set(self, **series: float) -> None:
        """`set(**{'haproxy_backend_current_queue{proxy="demo"}': 340})`."""
        with self.lock:
            self.values.update(series)

    def grow(self, **per_second: float) -> None:
        """Counters that grow from their current value at the given rate per second (0 stops one):
        `grow(**{'haproxy_backend_http_requests_total{proxy="demo"}': 50})`."""
        with self.lock:
            now = time.monotonic()
            for series, rate in per_second.items():
                value, old_rate, since = self.growing.get(series, (self.values.pop(series, 0.0), 0.0, now))
                self.growing[series] = (value + old_rate * (now - since), rate, now)

    def __enter__(self) -> DrivenExporter:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def haproxy_scrape_labels(namespace: str, service: str) -> dict[str, str]:
    """The labels pod discovery gives a balancer pod's series (see kubernetes_pods_job), for a
    static target that stands in for one: the HAProxy preset finds its series by them."""
    return {"namespace": namespace, "app_kubernetes_io_instance": service}


def drive_haproxy(exporter: DrivenExporter, proxy: str, *, queue: float, served: float, arrivals_per_second: float,
                  total_time_seconds: float) -> None:
    """Every series the HAProxy preset reads, as a balancer with one server would export them:
    `queue` waiting (in the backend's queue), `served` at the server, the request counter
    growing at `arrivals_per_second` (at 0 the latency is missing once the rate window passes,
    as it is for a real idle HAProxy) and the mean total time."""
    backend, server = f'{{proxy="{proxy}"}}', f'{{proxy="{proxy}",server="s1"}}'
    exporter.set(**{f"haproxy_backend_current_queue{backend}": queue,
                    f"haproxy_server_current_queue{server}": 0,
                    f"haproxy_backend_current_sessions{backend}": queue + served,
                    f"haproxy_server_current_sessions{server}": served,
                    f"haproxy_backend_total_time_average_seconds{backend}": total_time_seconds})
    counter = f"haproxy_backend_http_requests_total{backend}"
    if counter not in exporter.growing:
        # A balancer that has served a while: its time averages span their full 1024 requests.
        exporter.set(**{counter: 5000})
    exporter.grow(**{counter: arrivals_per_second})


# Pods that ask to be scraped, the way a cluster's Prometheus finds them: the
# `prometheus.io/scrape|port|path` annotations, and `namespace`, `pod`, `node` and the pod's
# labels from discovery (as the Prometheus community chart's `kubernetes-pods` job does).
def kubernetes_pods_job(*, kubeconfig: str | None = None, namespaces: Sequence[str] = ()) -> dict[str, Any]:
    """The scrape job: pods of the cluster `kubeconfig` names (None: the one Prometheus runs in,
    by its service account), of `namespaces` only when given (then a Role to list and watch pods
    there is all it needs)."""
    discovery: dict[str, Any] = {"role": "pod"}
    if kubeconfig:
        discovery["kubeconfig_file"] = kubeconfig
    if namespaces:
        discovery["namespaces"] = {"names": list(namespaces)}
    return {"job_name": "kubernetes-pods", "kubernetes_sd_configs": [discovery], "relabel_configs": [
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep",
         "regex": "true"},
        {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "action": "replace",
         "target_label": "__metrics_path__", "regex": "(.+)"},
        {"source_labels": ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
         "action": "replace", "regex": "(.+);(\\d+)", "replacement": "$1:$2", "target_label": "__address__"},
        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
    ]}


def prometheus_config(jobs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The test bed's Prometheus configuration: every second, scrapes and rules."""
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": list(jobs)}


class Prometheus:
    """Debian's Prometheus on a free port of loopback (or `host`: the real node's address, for an
    operator running in a pod), scraping every second: the given static
    targets (with fixed labels) and `groups` of more targets with labels of their own, or with
    `kubeconfig` the pods of that cluster by discovery. `lookback_delta` None keeps Prometheus'
    default (5m), under which only staleness markers end a dead target's series at once."""

    def __init__(self, targets: list[str], labels: dict[str, str], workdir: Path,
                 kubeconfig: str | None = None, binary: str | None = None, *,
                 groups: Sequence[tuple[list[str], dict[str, str]]] = (),
                 lookback_delta: str | None = "10s", host: str = "127.0.0.1") -> None:
        self.binary = binary or ensure_installed("prometheus")
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.workdir = workdir
        config = workdir / "prometheus.yml"
        jobs: list[dict[str, Any]] = []
        static = ([(targets, labels)] if targets else []) + list(groups)
        if static:
            jobs.append({"job_name": "app", "static_configs": [
                {"targets": list(group_targets), "labels": dict(group_labels)} for group_targets, group_labels in static]})
        if kubeconfig:
            jobs.append(kubernetes_pods_job(kubeconfig=kubeconfig))
        config.write_text(json.dumps(prometheus_config(jobs), indent=1))  # JSON is YAML
        lookback = [f"--query.lookback-delta={lookback_delta}"] if lookback_delta else []
        self.process = TrackedProcess([
            self.binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={host}:{self.port}", "--web.enable-lifecycle", *lookback,
        ], workdir / "prometheus.log")

    def start(self) -> None:
        self.process.start()
        try:
            wait_until(lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200, 60,
                       "Prometheus to be ready")
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.process.tail()}") from None

    def stop(self) -> None:
        self.process.stop()


@contextmanager
def prometheus_discovering(kubeconfig: str) -> Iterator[Prometheus]:
    """Prometheus that finds and scrapes the cluster's annotated pods. Built from the Go module
    (tests/cluster/build.sh): Debian's package leaves Kubernetes discovery out."""
    with tempfile.TemporaryDirectory(prefix="spillway-prom-") as tmp:
        prom = Prometheus([], {}, Path(tmp), kubeconfig=kubeconfig, binary=str(build()["prometheus"] / "prometheus"))
        prom.start()
        try:
            yield prom
        finally:
            prom.stop()


@contextmanager
def prometheus_scraping(exporter: DrivenExporter, labels: dict[str, str]) -> Iterator[Prometheus]:
    with tempfile.TemporaryDirectory(prefix="spillway-prom-") as tmp:
        prom = Prometheus([f"127.0.0.1:{exporter.port}"], labels, Path(tmp))
        prom.start()
        try:
            yield prom
        finally:
            prom.stop()


# HAProxy: the global part of every configuration, with the built-in Prometheus exporter
# (https://github.com/haproxy/haproxy/blob/master/addons/promex/README) on its own frontend.
HAPROXY_GLOBAL = """global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue 30s

frontend prometheus
    bind 127.0.0.1:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}

"""


class HAProxy:
    """Debian's HAProxy on loopback: `proxies` (frontends and backends) after the global part,
    checked with `haproxy -c` first, and its exporter at `metrics_url`."""

    def __init__(self, proxies: str, workdir: Path) -> None:
        self.binary = ensure_installed("haproxy")
        self.metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(HAPROXY_GLOBAL.format(metrics_port=self.metrics_port) + proxies)
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True,
                               timeout=30)
        assert check.returncode == 0, f"haproxy -c refused {self.config}:\n{check.stdout}{check.stderr}"
        self.process = TrackedProcess([self.binary, "-db", "-f", str(self.config)], workdir / "haproxy.log")

    def start(self) -> None:
        self.process.start()
        try:
            wait_until(lambda: urllib.request.urlopen(self.metrics_url, timeout=1).status == 200, 20,
                       "HAProxy's exporter to answer")
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.process.tail()}") from None

    def stop(self) -> None:
        self.process.stop()


def _module_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.integration.components", *args]


class Backend:
    """An HTTP server on loopback that answers every request after a fixed service time, each in
    its own thread (the balancer limits how many it gets at once). `stats()` says how many it
    served and the most it served at once."""

    def __init__(self, service_seconds: float, workdir: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = _module_argv("backend", "--port", str(self.port), "--service-seconds", str(service_seconds))
        self.process = TrackedProcess(argv, workdir / f"backend-{self.port}.log", cwd=REPO)

    def start(self) -> None:
        self.process.start()
        wait_until(self.stats, 20, f"the backend on {self.address}")

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://{self.address}/_stats", timeout=2) as answer:
            stats: dict[str, int] = json.loads(answer.read())
            return stats

    def stop(self) -> None:
        self.process.stop()


class Clients:
    """`clients` HTTP clients on loopback, each sending its next request as soon as the last is
    answered, for `seconds`, then ending by themselves. Client i sends from `sources[i %
    len(sources)]` (any 127.x.y.z is loopback), so that a balancer hashing the source sees many.
    `result()` is every request as (sent at, epoch seconds; took, seconds) and the errors."""

    def __init__(self, port: int, clients: int, seconds: float, workdir: Path,
                 sources: Sequence[str] = ("127.0.0.1",)) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.seconds = seconds
        self.out = workdir / f"clients-{port}.json"
        argv = _module_argv("clients", "--port", str(port), "--clients", str(clients), "--seconds", str(seconds),
                            "--sources", ",".join(sources), "--out", str(self.out))
        self.process = TrackedProcess(argv, workdir / f"clients-{port}.log", cwd=REPO)

    def start(self) -> None:
        self.process.start()

    def wait(self) -> None:
        assert self.process.proc is not None
        self.process.proc.wait(self.seconds + REQUEST_TIMEOUT_SECONDS + 10)

    def result(self) -> tuple[list[tuple[float, float]], list[str]]:
        data = json.loads(self.out.read_text())
        return [(sent, took) for sent, took in data["requests"]], data["errors"]

    def stop(self) -> None:
        self.process.stop()


REQUEST_TIMEOUT_SECONDS = 10.0


def _serve_backend(port: int, service_seconds: float) -> None:
    lock = threading.Lock()
    counts = {"served": 0, "in_flight": 0, "max_in_flight": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as HAProxy keeps server connections
        # Headers and body leave in two writes; with Nagle's algorithm the body would wait for
        # the balancer's delayed ACK (~40 ms), which is not service time.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/_stats":
                with lock:
                    body = json.dumps(counts).encode()
            else:
                with lock:
                    counts["in_flight"] += 1
                    counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])
                time.sleep(service_seconds)
                with lock:
                    counts["in_flight"] -= 1
                    counts["served"] += 1
                body = b"served\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, *_: Any) -> None:
            pass  # the balancer closing an idle connection is not news

    Server(("127.0.0.1", port), Handler).serve_forever()


def _drive_clients(port: int, clients: int, seconds: float, sources: list[str], out: Path) -> None:
    lock = threading.Lock()
    requests: list[tuple[float, float]] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client(source: str) -> None:
        mine: list[tuple[float, float]] = []
        connection: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline:
            sent, started = time.time(), time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS,
                                                            source_address=(source, 0))
                connection.request("GET", "/")
                answer = connection.getresponse()
                answer.read()
                if answer.status != 200:
                    raise OSError(f"HTTP {answer.status}")
                mine.append((sent, time.monotonic() - started))
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    errors.append(f"{type(err).__name__}: {err}"[:200])
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.05)
        if connection is not None:
            connection.close()
        with lock:
            requests.extend(mine)

    threads = [threading.Thread(target=client, args=(sources[i % len(sources)],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.write_text(json.dumps({"requests": sorted(requests), "errors": errors}))


def main() -> None:
    parser = argparse.ArgumentParser(description="Loopback traffic for the integration tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    backend = sub.add_parser("backend", help="serve every request after a fixed time")
    backend.add_argument("--port", type=int, required=True)
    backend.add_argument("--service-seconds", type=float, required=True)
    drive = sub.add_parser("clients", help="closed-loop clients for a bounded time")
    drive.add_argument("--port", type=int, required=True)
    drive.add_argument("--clients", type=int, required=True)
    drive.add_argument("--seconds", type=float, required=True)
    drive.add_argument("--sources", default="127.0.0.1")
    drive.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "backend":
        _serve_backend(args.port, args.service_seconds)
    else:
        sources = args.sources.split(",")
        assert all(s.startswith("127.") for s in sources), "loopback only"
        _drive_clients(args.port, args.clients, args.seconds, sources, args.out)


if __name__ == "__main__":
    main()
