"""From a signal crossing its target to the Deployment's replicas patched; writes
bench/scale-latency.md.

Real parts: the local control plane, Debian's Prometheus scraping a driven exporter every
second, and the operator under KopfRunner with scaling.interval 2s. Each trial moves the
queue across its target (up, then down again) at a random moment in the interval and times
until the Deployment's spec.replicas changes. Target: p99 at most one interval plus 1 s over
50 trials. Run: .venv/bin/python bench/scale_latency.py
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from tests.cluster.localcluster import LocalCluster  # noqa: E402
from tests.integration.components import (  # noqa: E402
    DrivenExporter, drive_haproxy, haproxy_scrape_labels, prometheus_scraping, wait_until,
)
from tests.integration.harness import CRD, running_operator, scalable_service  # noqa: E402

INTERVAL = 2.0
TRIALS = 50
LOW, HIGH = 2, 6  # replicas for queue 0 and queue 60


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="spillway-bench-"))
    cluster = LocalCluster(workdir=workdir)
    cluster.start()
    try:
        run(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(cluster: LocalCluster) -> None:
    from kubernetes import client, config

    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/scalableservices.spillway.io")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    apps = client.AppsV1Api(client.ApiClient(configuration))

    def replicas() -> int:
        return int(apps.read_namespaced_deployment("bench", "default").spec.replicas)

    rng = random.Random(7)
    samples: list[float] = []
    with DrivenExporter() as exporter:
        def queue(value: float) -> None:
            drive_haproxy(exporter, "bench", queue=value, served=1, arrivals_per_second=1, total_time_seconds=0.01)
        queue(0)
        with prometheus_scraping(exporter, haproxy_scrape_labels("default", "bench")) as prom, \
                running_operator(str(cluster.kubeconfig)):
            import yaml
            ssvc = scalable_service("bench", "default", replicas={"min": LOW, "max": 20}, scaling={
                "prometheus": {"url": prom.url}, "interval": f"{INTERVAL:g}s", "targets": {"queuePerReplica": 10},
                "behavior": {"tolerance": 0, "panic": False,
                             "scaleUp": {"maxStepPods": 20, "maxStepPercent": None},
                             "scaleDown": {"stabilizationWindow": "0s", "maxStepPercent": None}}})
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(ssvc))
            wait_until(lambda: replicas() == LOW, 60, "the first Deployment")
            time.sleep(3)
            for trial in range(TRIALS):
                target = HIGH if trial % 2 == 0 else LOW
                time.sleep(rng.uniform(0, INTERVAL))
                crossed = time.monotonic()
                queue(60 if target == HIGH else 0)
                wait_until(lambda t=target: replicas() == t, 30, f"trial {trial}", every=0.02)
                samples.append(time.monotonic() - crossed)
    write(samples)


def write(samples: list[float]) -> None:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    target = INTERVAL + 1
    lines = [
        "# Scale latency: signal crossing its target -> Deployment replicas patched",
        "",
        f"`bench/scale_latency.py`: local control plane, Prometheus scraping every 1 s, "
        f"scaling.interval {INTERVAL:g}s, {len(samples)} trials (alternating up and down, started at a random "
        "point of the interval), on a 2-core machine.",
        f"Target: p99 at most one interval plus 1 s = {target:g} s.",
        "",
        "| p50 | p90 | p99 | max | mean | target |",
        "|---|---|---|---|---|---|",
        f"| {p(0.5):.2f} s | {p(0.9):.2f} s | {p(0.99):.2f} s | {ordered[-1]:.2f} s | "
        f"{statistics.mean(samples):.2f} s | {'met' if p(0.99) <= target else 'MISSED'} |",
        "",
        "The path: one scrape (up to 1 s) puts the new value into Prometheus; the next interval "
        "(up to 2 s) reads it and patches the Deployment's scale subresource.",
    ]
    (ROOT / "bench" / "scale-latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
