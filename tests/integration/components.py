"""Real components on loopback for the integration tests: Prometheus from Debian's package, and
an exporter whose values the test drives. Every process is tracked and stopped by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.cluster.localcluster import build

INSTALLER = Path(__file__).with_name("install-components.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv, self.log = argv, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


class DrivenExporter:
    """Serves /metrics in the Prometheus text format with the values a test sets."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with exporter.lock:
                    body = "".join(f"{series} {value}\n" for series, value in exporter.values.items()).encode()
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

    def __enter__(self) -> DrivenExporter:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


# Pods that ask to be scraped, the way a cluster's Prometheus finds them: the
# `prometheus.io/scrape|port|path` annotations, and `namespace`, `pod`, `node` and the pod's
# labels from discovery (as the Prometheus community chart's `kubernetes-pods` job does).
KUBERNETES_PODS_JOB = """
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: {kubeconfig}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_pod_phase]
        action: keep
        regex: Running
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        action: replace
        target_label: __metrics_path__
        regex: (.+)
      - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
        action: replace
        regex: (.+);(\\d+)
        replacement: $1:$2
        target_label: __address__
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_node_name]
        target_label: node
"""


class Prometheus:
    """Debian's Prometheus on a free loopback port, scraping every second: the given static
    targets (with fixed labels), or with `kubeconfig` the pods of that cluster by discovery."""

    def __init__(self, targets: list[str], labels: dict[str, str], workdir: Path,
                 kubeconfig: str | None = None, binary: str | None = None) -> None:
        self.binary = binary or ensure_installed("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        config = workdir / "prometheus.yml"
        text = "global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"
        if targets:
            quoted = ", ".join(f'"{t}"' for t in targets)
            label_lines = "".join(f"\n          {k}: \"{v}\"" for k, v in labels.items())
            text += ("  - job_name: app\n"
                     "    static_configs:\n"
                     f"      - targets: [{quoted}]\n"
                     f"        labels:{label_lines}\n")
        if kubeconfig:
            text += KUBERNETES_PODS_JOB.format(kubeconfig=kubeconfig)
        config.write_text(text)
        self.process = TrackedProcess([
            self.binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
            "--query.lookback-delta=10s",
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
