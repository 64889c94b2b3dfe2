"""The HAProxy preset against a real HAProxy (Debian's, its built-in exporter) under a real
overload, read by a real Prometheus through Spillway's own reader, and fed to the engine.

Two services with one balancer each, as Spillway runs them: `checkout` balanced by least
connections, `cart` by a consistent hash of the client's address (requests then wait in each
server's own queue, and the backend's queue reads 0). Three backends per service answer after
50 ms and HAProxy lets each serve 4 at once (`maxconn 4`), so 60 closed-loop clients keep 12
requests served and 48 waiting. What the test knows from its own clients is compared with what
the preset reads. Then the load stops: the latency must go missing once the rate window holds
no request, not stay frozen at its last value. Then checkout's HAProxy dies: its signals must
go missing within a few scrapes, not a rate window later.

Only loopback processes (backends, HAProxy, Prometheus, clients), each stopped by its PID.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spillway.api import parse_spec
from spillway.api.spec import Queries
from spillway.metrics.presets import latency_kind, render
from spillway.metrics.prometheus import PrometheusSignals
from spillway.ports import Credentials, Reading
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals
from tests.integration.components import (
    Backend,
    Clients,
    DrivenExporter,
    HAProxy,
    Prometheus,
    drive_haproxy,
    free_port,
    haproxy_scrape_labels,
    prometheus_scraping,
    wait_until,
)

pytestmark = pytest.mark.integration

NAMESPACE = "shop"
SERVICE_SECONDS = 0.05
SERVERS = 3
MAXCONN = 4
SERVED = SERVERS * MAXCONN
CLIENTS = 60
LOAD_SECONDS = 10.0
READ_AT_SECONDS = 7.0  # into the load: the queues have long filled
WINDOW_SECONDS = 60.0  # the preset's rate window
SCRAPE_SECONDS = 1.0  # components.Prometheus scrapes every second
BALANCE = {"checkout": "balance leastconn", "cart": "balance source\n    hash-type consistent"}
# The hash needs many client addresses: these 60 spread 26/19/15 over the three servers, so each
# server has more clients than slots and the 12 served are real for both services.
SOURCES = {"checkout": ["127.0.0.1"], "cart": [f"127.0.1.{i}" for i in range(1, CLIENTS + 1)]}


@dataclass
class Service:
    name: str
    port: int
    backends: list[Backend]
    haproxy: HAProxy
    queries: dict[str, str]


@dataclass
class Bed:
    prometheus: Prometheus
    services: dict[str, Service]
    source: PrometheusSignals

    def read(self, service: str) -> Reading:
        return self.source.read(self.prometheus.url, 5.0, Credentials(), self.services[service].queries,
                                max_age_seconds=WINDOW_SECONDS)

    def value(self, query: str) -> float | None:
        """One raw query, for what the issue saw."""
        return self.source.read(self.prometheus.url, 5.0, Credentials(), {"q": query},
                                max_age_seconds=WINDOW_SECONDS).values.get("q")


def _proxies(name: str, port: int, backends: list[Backend]) -> str:
    servers = "".join(f"    server s{i} {b.address} maxconn {MAXCONN}\n" for i, b in enumerate(backends, 1))
    return (f"frontend {name}\n    bind 127.0.0.1:{port}\n    default_backend {name}\n\n"
            f"backend {name}\n    {BALANCE[name]}\n{servers}\n")


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    with ExitStack() as stack:  # every process is stopped by its PID, whatever the test did
        services = {}
        for name in BALANCE:
            backends = [Backend(SERVICE_SECONDS, tmp_path / name) for _ in range(SERVERS)]
            for backend in backends:
                stack.callback(backend.stop)
                backend.start()
            port = free_port()
            haproxy = HAProxy(_proxies(name, port, backends), tmp_path / name)
            stack.callback(haproxy.stop)
            haproxy.start()
            queries = render("HAProxy", Queries(), namespace=NAMESPACE, service=name, deployments=[name],
                             quantile=0.95)
            services[name] = Service(name, port, backends, haproxy, queries)
        # In a cluster, pod discovery labels each balancer's series (components.kubernetes_pods_job):
        # `namespace` from the pod, and the pod's app.kubernetes.io/instance=<service> label as
        # `app_kubernetes_io_instance`. Here static labels on each target stand in for that.
        groups = [([s.haproxy.metrics_url.split("/")[2]], haproxy_scrape_labels(NAMESPACE, n))
                  for n, s in services.items()]
        # Prometheus' default lookback (5m), not the test bed's short one: a dead target's series
        # must end by staleness markers and the queries, not by a lookback no cluster uses.
        prometheus = Prometheus([], {}, tmp_path, groups=groups, lookback_delta=None)
        stack.callback(prometheus.stop)
        prometheus.start()
        yield Bed(prometheus, services, PrometheusSignals())


def _signals(reading: Reading) -> Signals:
    known = {f.name for f in dataclasses.fields(Signals)}
    extra: dict[str, object] = {}
    if "latency_kind" in known:
        extra["latency_kind"] = latency_kind("HAProxy")
    if "rate_window_seconds" in known:
        extra["rate_window_seconds"] = WINDOW_SECONDS
    return Signals(queue_depth=reading.values.get("queue_depth"), in_flight=reading.values.get("in_flight"),
                   arrival_rate=reading.values.get("arrival_rate"), latency_seconds=reading.values.get("latency"),
                   missing=frozenset(reading.missing), **extra)


def _decide(name: str, prometheus_url: str, reading: Reading) -> tuple[int, str]:
    spec = parse_spec({
        "targetRef": {"name": name}, "replicas": {"min": 1, "max": 20},
        "capacity": {"concurrency": MAXCONN, "queueLimit": 10, "timeout": "30s"},
        "scaling": {"prometheus": {"url": prometheus_url}, "metricsSource": "HAProxy",
                    "targets": {"queuePerReplica": 10, "latency": {"quantile": 0.95, "objective": "250ms"}}},
    })
    decision = decide(spec, _signals(reading), SERVERS, EngineState(), datetime.now(UTC))
    return decision.replicas, decision.reason


def _naive(bed: Bed, name: str) -> dict[str, float | None]:
    """The issue, reproduced: what the backend series alone say."""
    series = f'{{namespace="{NAMESPACE}", proxy="{name}"}}'
    return {
        "backend_current_sessions": bed.value(f"sum(haproxy_backend_current_sessions{series})"),
        "backend_current_queue": bed.value(f"sum(haproxy_backend_current_queue{series})"),
        "response_time_average": bed.value(f"max(haproxy_backend_response_time_average_seconds{series})"),
        "total_time_average": bed.value(f"max(haproxy_backend_total_time_average_seconds{series})"),
        "rate_alone": bed.value(f"sum(rate(haproxy_backend_http_requests_total{series}[1m]))"),
    }


def _expected_rate(requests: list[tuple[float, float]], at: float) -> float:
    """Requests sent within the window before `at`, per second of the window: what a rate over
    that window means. (Early in a surge it is far below the current throughput.)"""
    return sum(1 for sent, _ in requests if at - WINDOW_SECONDS < sent <= at) / WINDOW_SECONDS


def _expected_latency(requests: list[tuple[float, float]], at: float) -> float:
    """Mean total time of the last 1024 requests done by the scrape before `at`: what HAProxy's
    `total_time_average` is (the 1024 is HAProxy's TIME_STATS_SAMPLES)."""
    done = sorted((sent + took, took) for sent, took in requests if sent + took <= at - SCRAPE_SECONDS)
    return statistics.fmean(took for _, took in done[-1024:])


def test_haproxy_preset_reads_real_overload_goes_stale_when_idle_and_missing_when_haproxy_dies(bed: Bed) -> None:
    names = list(bed.services)
    ready = wait_until(lambda: all(set(bed.read(n).values) >= {"queue_depth", "in_flight", "arrival_rate"}
                                   for n in names), 30, "Prometheus to scrape both balancers")
    assert ready
    for name in names:
        # HAProxy reports a total_time_average of 0 before any request: no latency, not 0 s.
        assert bed.read(name).missing == {"latency": "the query returned no series"}, name

    # A bounded overload on both services at once.
    loads = {n: Clients(bed.services[n].port, CLIENTS, LOAD_SECONDS, bed.prometheus.workdir / n, SOURCES[n])
             for n in names}
    with ExitStack() as stack:
        for load in loads.values():
            stack.callback(load.stop)
            load.start()
        started = time.monotonic()
        time.sleep(READ_AT_SECONDS)
        at = time.time()
        readings = {n: bed.read(n) for n in names}
        naive = {n: _naive(bed, n) for n in names}
        decisions = {n: _decide(n, bed.prometheus.url, readings[n]) for n in names}
        for load in loads.values():
            load.wait()
        took_seconds = time.monotonic() - started

    results = {n: load.result() for n, load in loads.items()}
    for name in names:
        requests, errors = results[name]
        assert not errors, f"{name}: clients failed: {errors[:5]}"
        stats = [b.stats() for b in bed.services[name].backends]
        # What the test knows: every server had all its MAXCONN slots busy, so SERVED were served.
        # (HAProxy's threads may let one more through for an instant; the gauges read MAXCONN.)
        assert min(s["max_in_flight"] for s in stats) >= MAXCONN, f"{name}: backends saw {stats}"
        values, missing = readings[name].values, readings[name].missing
        assert not missing, f"{name}: missing under load: {missing}"
        rate, latency = _expected_rate(requests, at), _expected_latency(requests, at)
        print(f"{name}: read {values}; clients: {len(requests) / took_seconds:.0f} req/s over the load, "
              f"{rate:.1f} req/s over the window, mean latency {latency:.3f}s; backend series alone: "
              f"{naive[name]}; engine: {decisions[name]}")

        # The served requests are the servers' sessions: the backend's count the queued too. A
        # scrape is an instant: a slot or two may be between a response and the next dequeued
        # request then, so the gauge reads a few under SERVED (seen: 10 of 12) but never the
        # backend's queued-and-served count.
        assert SERVED - 3 <= values["in_flight"] <= SERVED, f"{name}: in flight {values['in_flight']} != {SERVED}"
        assert (naive[name]["backend_current_sessions"] or 0) > CLIENTS - 5  # the issue: queued + served
        assert values["in_flight"] < (naive[name]["backend_current_sessions"] or 0) - (CLIENTS - SERVED) / 2
        # The queue is the backend's and the servers' own queues.
        assert CLIENTS - SERVED - 5 <= values["queue_depth"] <= CLIENTS - SERVED, (
            f"{name}: queue {values['queue_depth']}, {CLIENTS - SERVED} wait")
        assert values["arrival_rate"] == pytest.approx(rate, rel=0.15), f"{name}: arrival rate vs clients"
        # A mean of total times, queue included: the server's own time is the 50 ms alone.
        assert values["latency"] == pytest.approx(latency, rel=0.25), f"{name}: latency vs the clients' mean"
        assert (naive[name]["response_time_average"] or 0) < 2 * SERVICE_SECONDS < latency / 2
        replicas, reason = decisions[name]
        assert replicas > SERVERS, f"{name}: the engine did not scale up from {SERVERS}: {reason}"
    # Consistent hashing queues per server: the backend's own queue read nothing.
    assert naive["cart"]["backend_current_queue"] == 0

    # The load has stopped: the latency is read while the window still holds requests, then it
    # is missing (HAProxy's average itself stays frozen), while the idle zeros are still read.
    stopped = max(sent + took for requests, _ in results.values() for sent, took in requests)
    time.sleep(max(0.0, stopped + 2 * SCRAPE_SECONDS - time.time()))  # the last requests scraped
    frozen = {n: bed.value(f'max(haproxy_backend_total_time_average_seconds{{proxy="{n}"}})') for n in names}
    assert all("latency" in bed.read(n).values for n in names), "latency gone right after the load stopped"

    def stale() -> dict[str, Reading] | None:
        now = {n: bed.read(n) for n in names}
        return now if all("latency" in r.missing for r in now.values()) else None

    idle = wait_until(stale, stopped + WINDOW_SECONDS + 10 - time.time(), "the latency to go missing once idle",
                      every=1.0)
    went_stale = time.time() - stopped
    print(f"latency missing {went_stale:.1f}s after the last request; HAProxy's averages frozen at {frozen}")
    assert went_stale >= WINDOW_SECONDS - 5, f"latency went missing too early ({went_stale:.0f}s)"
    for name in names:
        assert idle[name].missing == {"latency": "the query returned no series"}, name
        assert idle[name].values == {"queue_depth": 0, "in_flight": 0, "arrival_rate": 0}, name
        assert bed.value(f'max(haproxy_backend_total_time_average_seconds{{proxy="{name}"}})') == frozen[name] > 0

    # Checkout's HAProxy dies: its signals go missing within a few scrapes; cart's remain.
    assert set(bed.read("checkout").values) == {"queue_depth", "in_flight", "arrival_rate"}
    bed.services["checkout"].haproxy.process.kill()
    killed = time.monotonic()
    wait_until(lambda: not bed.read("checkout").values, 3 * SCRAPE_SECONDS, "checkout's signals to go missing",
               every=0.1)
    print(f"checkout's signals missing {time.monotonic() - killed:.1f}s after its HAProxy died; the rate alone "
          f"still reads {_naive(bed, 'checkout')['rate_alone']}")
    assert set(bed.read("checkout").missing) == {"queue_depth", "in_flight", "arrival_rate", "latency"}
    assert _naive(bed, "checkout")["rate_alone"] is not None  # the issue: a range outlives its target
    assert {"queue_depth", "in_flight", "arrival_rate"} <= set(bed.read("cart").values)


def test_a_driven_exporter_stands_in_for_haproxy_with_every_series_the_preset_reads() -> None:
    """Tests that drive the operator with chosen values (components.drive_haproxy) read the same
    preset: what they export must be enough for all four signals."""
    queries = render("HAProxy", Queries(), namespace=NAMESPACE, service="web", deployments=["web"], quantile=0.95)
    with DrivenExporter() as exporter:
        drive_haproxy(exporter, "web", queue=45, served=5, arrivals_per_second=50, total_time_seconds=0.2)
        with prometheus_scraping(exporter, haproxy_scrape_labels(NAMESPACE, "web")) as prom:
            source = PrometheusSignals()

            def complete() -> Reading | None:
                reading = source.read(prom.url, 5.0, Credentials(), queries, WINDOW_SECONDS)
                return None if reading.missing else reading

            reading = wait_until(complete, 20, "every signal from the driven exporter")
    assert reading.values["queue_depth"] == 45 and reading.values["in_flight"] == 5
    assert reading.values["latency"] == pytest.approx(0.2) and reading.values["arrival_rate"] > 0
