"""The HAProxy provider carrying real requests: Spillway's rendered balancer (Debian's HAProxy
2.6 from the local base image) in front of a ScalableService whose replicas are real HTTP app
pods on the real node, driven by a bounded client on the host that sends only to the test bed's
pod and Service addresses.

Each test reads behaviour, not configuration: which replica answered (the app answers with its
pod name), status codes and timings, the balancer's own exporter, and the preset through the
test bed's Prometheus.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spillway.api.spec import Queries
from spillway.kube.cluster import KubeCluster
from spillway.metrics.presets import render
from spillway.metrics.prometheus import PrometheusSignals
from spillway.ports import Credentials
from spillway.reconcile import reconcile
from spillway.resources.balancing import haproxy
from tests.cluster.localcluster import NODE_STATE
from tests.integration.components import prometheus_discovering, wait_until
from tests.integration.haproxy_cases import CASES, rendered
from tests.integration.harness import Kubectl, audit_offset, condition, operator_writes, running_operator

pytestmark = pytest.mark.integration

APPS = Path(__file__).resolve().parent / "apps"
# HAProxy's httplog: "... http <backend>/<server> Tq/Tw/Tc/Tr/Ta <status> ..."
_HTTPLOG_STATUS = re.compile(r" http \S+ -?\d+/-?\d+/-?\d+/-?\d+/\+?\d+ (\d{3}) ")


@dataclass
class Answer:
    status: int
    pod: str | None
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def request(host: str, port: int, path: str = "/", cookie: str | None = None, timeout: float = 10) -> Answer:
    """One GET on a fresh connection; a refused or reset connection is status 0."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        pod = None
        if response.status == 200:
            pod = json.loads(body).get("pod")
        return Answer(response.status, pod, time.monotonic() - started,
                      {k.lower(): v for k, v in response.getheaders()}, body)
    except (OSError, http.client.HTTPException) as err:
        return Answer(0, None, time.monotonic() - started, body=repr(err))
    finally:
        connection.close()


class Load:
    """`clients` threads sending requests back to back until stopped, or `limit_seconds` at most."""

    def __init__(self, host: str, port: int, clients: int = 4, limit_seconds: float = 120) -> None:
        self.host, self.port, self.limit = host, port, limit_seconds
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self._lock = threading.Lock()

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            answer = request(self.host, self.port, timeout=10)
            with self._lock:
                self.answers.append(answer)
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]

    def pods(self) -> Counter[str]:
        with self._lock:
            return Counter(a.pod for a in self.answers if a.pod)


@dataclass
class Bed:
    k: Kubectl
    namespace: str
    node: Any
    kube: Any
    created: list[str] = field(default_factory=list)

    def app_template(self) -> dict[str, Any]:
        return {"metadata": {"annotations": {}}, "spec": self.node.pod_spec(
            terminationGracePeriodSeconds=10,
            volumes=[{"name": "apps", "configMap": {"name": "apps"}}],
            containers=[{
                "name": "echo", "image": self.node.images["base"], "imagePullPolicy": "Never",
                "command": ["python3", "/apps/echo.py"],
                "env": [{"name": "READY_AFTER", "value": "1"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                   "failureThreshold": 1},
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
                "resources": {"requests": {"cpu": "10m", "memory": "24Mi"}, "limits": {"memory": "64Mi"}},
                "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "apps", "mountPath": "/apps"}]}])}

    def service(self, name: str, replicas: int, balancing: dict[str, Any], **spec: Any) -> dict[str, Any]:
        placement = self.node.placement
        body = {
            "template": self.app_template(),
            "replicas": {"min": replicas, "max": max(replicas, 6)},
            "balancing": {"provider": "HAProxy", **balancing, "haproxy": {
                "image": self.node.images["haproxy"], "nodeSelector": placement["nodeSelector"],
                "tolerations": placement["tolerations"]}},
            **spec,
        }
        obj = {"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
               "metadata": {"name": name, "namespace": self.namespace}, "spec": body}
        self.k.apply(obj)
        self.created.append(name)
        self.k.wait_for("ssvc", name, self.namespace, lambda s: _true(s, "BalancerReady") and _true(s, "Ready"),
                        timeout=120, what=f"{name}: balancer and {replicas} replicas ready")
        self.wait_servers(name, replicas)
        # Ready balancer pods are not yet a Service that kube-proxy forwards: until it has synced
        # their endpoints a connection to the front is refused. A bare connect, no request.
        wait_until(lambda: _accepts(self.front(name), 80), 30, f"{name}: the front Service forwarding", every=0.2)
        return obj

    def balancers(self, name: str) -> list[dict[str, Any]]:
        pods = self.k.items("pod", self.namespace,
                            f"app.kubernetes.io/instance={name},app.kubernetes.io/component=balancer")
        return [p for p in pods if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]

    def front(self, name: str) -> str:
        service = self.k.get("service", name, self.namespace)
        assert service is not None
        return str(service["spec"]["clusterIP"])

    def metric(self, pod_ip: str, name: str, proxy: str) -> float | None:
        """A backend series from one balancer's own exporter."""
        connection = http.client.HTTPConnection(pod_ip, 8405, timeout=5)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
        except OSError:
            return None
        finally:
            connection.close()
        for line in text.splitlines():
            if line.startswith(f'{name}{{proxy="{proxy}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_servers(self, name: str, count: int, timeout: float = 60) -> None:
        """Until every balancer pod counts `count` servers up (found through DNS SRV, checked)."""
        def settled() -> bool:
            pods = self.balancers(name)
            return len(pods) >= 2 and all(
                self.metric(p["status"]["podIP"], "haproxy_backend_active_servers", name) == count for p in pods)
        wait_until(settled, timeout, f"{name}: every balancer with {count} servers up", every=1)

    def failed_requests(self, name: str) -> list[str]:
        """The balancer pods' log lines (HAProxy's httplog) of requests not answered 200, where
        the server tried, the timers, the termination state and the retries say why, with
        HAProxy's own lines on servers changing address or state around them."""
        lines = []
        for pod in self.balancers(name):
            log = self.k.run("logs", pod["metadata"]["name"], "-n", self.namespace, check=False).stdout
            lines += [f"{pod['metadata']['name']}: {line}" for line in log.splitlines()
                      if ((status := _HTTPLOG_STATUS.search(line)) and status.group(1) != "200")
                      or (not status and f"{name}/" in line and not line.startswith("["))]
        return lines

    def app_pods(self, name: str) -> list[dict[str, Any]]:
        pods = self.k.items("pod", self.namespace, f"app.kubernetes.io/instance={name},app.kubernetes.io/component=app")
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _true(obj: dict[str, Any], type_: str) -> bool:
    found = condition(obj, type_)
    return found is not None and found["status"] == "True"


@pytest.fixture(scope="module")
def bed(kube: Any, k: Kubectl, real_node: Any) -> Iterator[Bed]:
    namespace = k.namespace("balancer")
    k.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "apps", "namespace": namespace},
             "data": {"echo.py": (APPS / "echo.py").read_text()}})
    with running_operator(kube.kubeconfig):
        yield Bed(k, namespace, real_node, kube)
        k.run("delete", "namespace", namespace, "--wait=true", "--timeout=120s", check=False)


@pytest.fixture(autouse=True)
def removed_after(bed: Bed) -> Iterator[None]:
    """Each test's ScalableServices go with it: the real node has two cores, and the balancer
    pods of earlier tests would hold the CPU requests later ones need."""
    yield
    for name in bed.created:
        bed.k.run("delete", "ssvc", name, "-n", bed.namespace, "--wait=true", "--timeout=60s", check=False)
    bed.created.clear()
    wait_until(lambda: not bed.k.items("pod", bed.namespace), 90, "the test's pods gone", every=1)


def test_round_robin_spreads_evenly_and_the_front_service_reaches_the_balancer(bed: Bed) -> None:
    bed.service("rr", 4, {"algorithm": "RoundRobin"})
    host = bed.front("rr")
    answers = [request(host, 80) for _ in range(2000)]
    assert [a for a in answers if a.status != 200] == []
    counts = Counter(a.pod for a in answers)
    assert len(counts) == 4, counts
    # Each balancer pod cycles through the four servers in turn: every replica gets a quarter,
    # off by at most one per balancer pod and per server-list refresh.
    assert max(counts.values()) - min(counts.values()) <= 8, counts
    status = bed.k.get("ssvc", "rr", bed.namespace)
    assert status is not None and status["status"]["balancer"]["algorithm"] == "RoundRobin"


def test_a_reconcile_of_an_unchanged_balancer_writes_nothing(bed: Bed) -> None:
    """The balancer's objects as the API server returns them (defaults filled, false booleans
    omitted) still cover what Spillway renders: reconciling them again writes none of them."""
    bed.service("quiet", 2, {"algorithm": "RoundRobin", "affinity": {"type": "Cookie"}})
    since = audit_offset(bed.kube) if bed.kube.audit_log else 0
    body = bed.k.get("ssvc", "quiet", bed.namespace)
    assert body is not None
    cluster = KubeCluster(bed.kube.api_client())
    for _ in range(3):
        assert reconcile(cluster, body, datetime.now(UTC)).writes == 0
    if bed.kube.audit_log:  # and the running operator wrote nothing meanwhile either
        assert operator_writes(bed.kube, bed.namespace, since) == []


def test_weighted_pools_share_traffic_three_to_one_per_replica(bed: Bed) -> None:
    bed.service("weighted", 4, {"algorithm": "Weighted"}, pools=[{"name": "large", "weight": 3},
                                                                  {"name": "small", "weight": 1}])
    pools = {p["metadata"]["name"]: p["metadata"]["labels"]["spillway.io/pool"] for p in bed.app_pods("weighted")}
    assert sorted(Counter(pools.values()).items()) == [("large", 3), ("small", 1)]
    host = bed.front("weighted")
    answers = [request(host, 80) for _ in range(2000)]
    assert [a for a in answers if a.status != 200] == []
    counts = Counter(a.pod for a in answers)
    large = [n for pod, n in counts.items() if pools[pod] == "large"]
    small = [n for pod, n in counts.items() if pools[pod] == "small"]
    assert len(large) == 3 and len(small) == 1, counts
    ratio = (sum(large) / 3) / small[0]
    assert 2.7 <= ratio <= 3.3, counts


def test_least_connection_sends_new_requests_away_from_a_busy_replica(bed: Bed) -> None:
    bed.service("leastconn", 1, {"algorithm": "LeastConnection"})
    balancer = bed.balancers("leastconn")[0]["status"]["podIP"]
    # Six slow requests hold the only replica busy for 20 s (through one balancer pod, whose
    # connection counts decide).
    with ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(request, balancer, 8080, "/slow?seconds=20", None, 40) for _ in range(6)]
        busy = wait_until(lambda: bed.metric(balancer, "haproxy_backend_current_sessions", "leastconn") == 6,
                          15, "six slow requests in flight")
        assert busy
        bed.k.run("patch", "ssvc", "leastconn", "-n", bed.namespace, "--type=merge", "-p",
                  '{"spec": {"replicas": {"min": 2}}}')
        wait_until(lambda: bed.metric(balancer, "haproxy_backend_active_servers", "leastconn") == 2, 60,
                   "the second replica up at the balancer", every=0.5)
        busy_pod = {f.result().pod for f in slow if f.done()} or None
        fast = [request(balancer, 8080) for _ in range(30)]
        assert all(a.status == 200 for a in fast), fast
        new = [p["metadata"]["name"] for p in bed.app_pods("leastconn")]
        served = Counter(a.pod for a in fast)
        assert len(served) == 1, served  # every new request went to the idle replica
        answers = [f.result() for f in slow]
    busy_pod = {a.pod for a in answers}
    assert len(busy_pod) == 1 and [a.status for a in answers] == [200] * 6
    assert set(served) <= set(new) and not set(served) & busy_pod, (served, busy_pod)


def test_cookie_affinity_keeps_a_client_on_its_replica_and_moves_it_when_that_one_goes(bed: Bed) -> None:
    bed.service("sticky", 3, {"algorithm": "RoundRobin", "affinity": {"type": "Cookie", "cookieName": "SID"}})
    host = bed.front("sticky")
    first = request(host, 80)
    assert first.status == 200 and "set-cookie" in first.headers, first
    cookie = first.headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith("SID=")
    # Scripts in the page cannot read it (HttpOnly).
    assert "httponly" in [part.strip().lower() for part in first.headers["set-cookie"].split(";")], first.headers
    again = [request(host, 80, cookie=cookie) for _ in range(60)]
    # Both balancer pods know the replica from the cookie (the same generated key), and round
    # robin would have spread these over three replicas.
    assert {a.pod for a in again} == {first.pod}, Counter(a.pod for a in again)
    bed.k.run("delete", "pod", str(first.pod), "-n", bed.namespace, "--wait=false")

    def moved() -> Answer | None:
        answer = request(host, 80, cookie=cookie)
        return answer if answer.status == 200 and answer.pod != first.pod else None
    answer = wait_until(moved, 60, "the client served by another replica", every=0.2)
    assert "set-cookie" in answer.headers  # the balancer gives it its new replica's cookie
    new_cookie = answer.headers["set-cookie"].split(";", 1)[0]
    after = [request(host, 80, cookie=new_cookie) for _ in range(30)]
    assert {a.pod for a in after} == {answer.pod}, Counter(a.pod for a in after)


def test_overflow_is_refused_at_once_with_503_and_a_queue_wait_is_bounded(bed: Bed) -> None:
    bed.service("bounded", 1, {"algorithm": "LeastConnection"},
                capacity={"concurrency": 2, "queueLimit": 2, "timeout": "2s"})
    balancer = bed.balancers("bounded")[0]["status"]["podIP"]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: request(balancer, 8080, "/slow?seconds=1.2", None, 20), range(10)))
    served = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 503]
    assert len(served) + len(refused) == 10, answers
    # Two served at once, two waiting: four held; HAProxy's threads may let one more in.
    assert 4 <= len(served) <= 5, answers
    assert all(a.body == "queue full" and a.headers.get("retry-after") == "1" for a in refused), refused
    assert max(a.seconds for a in refused) < 0.8, refused  # refused at once, not after a wait
    assert max(a.seconds for a in served) < 4.0

    # A request still waiting after capacity.timeout leaves the queue with a 503: one replica
    # taking one request at a time for 1.5 s serves the first and the next in line (it waited
    # 1.5 s), and the three behind them give up at 2 s. As above, HAProxy's threads may let one
    # more request past maxconn (seen once in a full run: three served, two given up).
    bed.service("waiting", 1, {"algorithm": "LeastConnection"},
                capacity={"concurrency": 1, "queueLimit": 4, "timeout": "2s"})
    balancer = bed.balancers("waiting")[0]["status"]["podIP"]
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: request(balancer, 8080, "/slow?seconds=1.5", None, 20), range(5)))
    assert sorted(a.status for a in answers) in ([200, 200, 503, 503, 503], [200, 200, 200, 503, 503]), answers
    assert all(1.8 <= a.seconds <= 3.0 for a in answers if a.status == 503), answers


def test_scaling_2_6_2_changes_the_servers_without_a_reload_or_a_failed_request(bed: Bed) -> None:
    bed.service("elastic", 2, {"algorithm": "RoundRobin"})  # replicas.max 6: the slots stay, no rollout
    host = bed.front("elastic")
    before = {p["metadata"]["name"]: (p["status"]["podIP"], _restarts(p)) for p in bed.balancers("elastic")}
    started = {ip: bed.metric(ip, "haproxy_process_start_time_seconds", "") for ip, _ in before.values()}
    with Load(host, 80, clients=4) as load:
        time.sleep(2)
        bed.k.run("patch", "ssvc", "elastic", "-n", bed.namespace, "--type=merge", "-p",
                  '{"spec": {"replicas": {"min": 6}}}')
        bed.wait_servers("elastic", 6, timeout=90)
        wait_until(lambda: len(load.pods()) >= 6, 30, "all six replicas serving", every=0.5)
        bed.k.run("patch", "ssvc", "elastic", "-n", bed.namespace, "--type=merge", "-p",
                  '{"spec": {"replicas": {"min": 2}}}')
        bed.wait_servers("elastic", 2, timeout=90)
        time.sleep(3)
    assert len(load.answers) > 200
    assert load.failures() == [], (load.failures()[:5], bed.failed_requests("elastic"))
    after = {p["metadata"]["name"]: (p["status"]["podIP"], _restarts(p)) for p in bed.balancers("elastic")}
    assert after == before  # the same balancer pods, never restarted: no rollout for a scale
    assert {ip: bed.metric(ip, "haproxy_process_start_time_seconds", "") for ip, _ in after.values()} == started


def test_losing_a_balancer_pod_loses_no_request(bed: Bed) -> None:
    bed.service("spof", 2, {"algorithm": "LeastConnection"})
    host = bed.front("spof")
    victim = bed.balancers("spof")[0]["metadata"]["name"]
    with Load(host, 80, clients=4) as load:
        time.sleep(2)
        bed.k.run("delete", "pod", victim, "-n", bed.namespace, "--wait=false")
        wait_until(lambda: len(bed.balancers("spof")) == 2
                   and victim not in {p["metadata"]["name"] for p in bed.balancers("spof")},
                   90, "a new balancer pod ready")
        time.sleep(2)
    assert len(load.answers) > 100
    # Requests in flight on the deleted pod could be lost; its preStop keeps it serving until
    # the Service has dropped it, so none is.
    assert load.failures() == [], load.failures()[:5]


def test_a_dns_outage_keeps_every_server_the_checks_find_healthy(bed: Bed) -> None:
    """The servers come from DNS SRV records; a resolver that stops answering says nothing about
    the replicas, which the health checks still see. The balancer must keep them through an
    outage of CoreDNS (stopped here for 15 s), not empty its backend and answer 503."""
    if os.environ.get("SPILLWAY_KUBECONFIG"):
        pytest.skip("CoreDNS is the given cluster's own pods: only the local bed's CoreDNS, a host process "
                    "with a recorded PID, can be stopped here")
    coredns = next(p["pid"] for p in json.loads(NODE_STATE.read_text())["processes"] if p["name"] == "coredns")
    bed.service("dnsless", 2, {"algorithm": "RoundRobin"})
    host = bed.front("dnsless")
    ips = [p["status"]["podIP"] for p in bed.balancers("dnsless")]
    servers: list[float | None] = []
    with Load(host, 80, clients=2) as load:
        time.sleep(2)
        os.kill(coredns, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                servers += [bed.metric(ip, "haproxy_backend_active_servers", "dnsless") for ip in ips]
                time.sleep(1)
        finally:
            os.kill(coredns, signal.SIGCONT)
        time.sleep(2)
    assert len(load.answers) > 100
    assert load.failures() == [], load.failures()[:5]
    assert set(servers) == {2.0}, servers


def test_prometheus_finds_the_balancer_and_the_preset_reads_all_four_signals(bed: Bed) -> None:
    """Twenty clients on one replica that takes two requests at a time per balancer pod for
    50 ms: requests queue at the balancer, and the preset, through pod discovery alone, reads
    the queue, the requests in service, the arrival rate and the total time clients wait."""
    bed.service("observed", 1, {"algorithm": "LeastConnection"},
                capacity={"concurrency": 2, "queueLimit": 100, "timeout": "10s"})
    host = bed.front("observed")
    queries = render("HAProxy", Queries(), namespace=bed.namespace, service="observed", deployments=["observed"],
                     quantile=0.95)
    source = PrometheusSignals()
    seen: list[float] = []
    with prometheus_discovering(bed.kube.kubeconfig) as prom, ThreadPoolExecutor(20) as pool:
        stop = time.monotonic() + 120

        def overload() -> int:
            sent = 0
            while time.monotonic() < stop:
                answer = request(host, 80, "/slow?seconds=0.05", None, 15)
                assert answer.status == 200, answer
                seen.append(answer.seconds)
                sent += 1
            return sent
        clients = [pool.submit(overload) for _ in range(20)]

        def served(pod: dict[str, Any]) -> float:
            return bed.metric(pod["status"]["podIP"], "haproxy_backend_http_requests_total", "observed") or 0.0

        def all_four() -> Any:
            # The latency appears once a balancer has served the 1024 requests its mean spans;
            # until both have, it is the busier one's alone, which the clients' mean is not.
            if not all(served(p) > 1024 for p in bed.balancers("observed")):
                return None
            reading = source.read(prom.url, 5.0, Credentials(), queries, max_age_seconds=60.0)
            return reading if set(reading.values) == {"queue_depth", "in_flight", "arrival_rate", "latency"} \
                and reading.values["queue_depth"] > 0 else None
        reading = wait_until(all_four, 110, "the preset reading all four signals under overload", every=2)
        # The same requests on both sides: each balancer's mean spans its last 1024, and the
        # clients' requests split between the two balancer pods at random.
        recent = seen[-2 * 1024:]
        raw = {p["metadata"]["name"]: bed.metric(p["status"]["podIP"], "haproxy_backend_total_time_average_seconds",
                                                 "observed") for p in bed.balancers("observed")}
        stop = time.monotonic()
        sent = sum(c.result() for c in clients)
    assert sent > 2048
    values = reading.values
    mean = sum(recent) / len(recent)
    # Two balancer pods, each letting two requests at a time reach the one replica.
    assert 1 <= values["in_flight"] <= 4, values
    assert values["queue_depth"] >= 4, values
    assert values["arrival_rate"] > 5, values
    # Total time, the wait in the queue included, as the clients saw it (not the 50 ms alone).
    assert values["latency"] > 0.1, (values, mean, raw)
    assert 0.5 * mean <= values["latency"] <= 1.5 * mean, (values, mean, raw)


def _restarts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def _phase(bed: Bed, pod: str) -> str:
    return str(((bed.k.get("pod", pod, bed.namespace) or {}).get("status") or {}).get("phase", ""))


CHECK_ALL = """rc=0
haproxy -v | head -n 1
for f in /configs/*.cfg; do
  out=$(haproxy -c -V -f "$f" 2>&1) || rc=1
  case "$out" in *WARNING*|*ALERT*) rc=1 ;; esac
  printf '== %s\\n%s\\n' "$f" "$out"
done
exit $rc
"""


def test_every_rendered_config_passes_haproxy_check_on_the_balancer_image(bed: Bed) -> None:
    """The configs tests/integration/test_haproxy_config.py checks on the host's HAProxy 2.6, each
    checked with no warning by the balancer image's own HAProxy 3.x, in a pod on the real node."""
    configs = {f"case-{i:02d}.cfg": rendered(raw) for i, raw in enumerate(CASES)}
    bed.k.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "configs", "namespace": bed.namespace},
                 "data": configs})
    placement = bed.node.placement
    bed.k.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check-configs", "namespace": bed.namespace},
                 "spec": {"restartPolicy": "Never", "nodeSelector": placement["nodeSelector"],
                          "tolerations": placement["tolerations"],
                          "securityContext": {"runAsNonRoot": True, "runAsUser": 99,
                                              "seccompProfile": {"type": "RuntimeDefault"}},
                          "volumes": [{"name": "configs", "configMap": {"name": "configs"}}],
                          "containers": [{
                              "name": "check", "image": bed.node.images["haproxy"], "imagePullPolicy": "Never",
                              "command": ["sh", "-c", CHECK_ALL],
                              "env": [{"name": haproxy.COOKIE_ENV, "value": "0123456789abcdef"}],
                              "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                            "limits": {"memory": "256Mi"}},
                              "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                  "capabilities": {"drop": ["ALL"]}},
                              "volumeMounts": [{"name": "configs", "mountPath": "/configs"}]}]}})
    try:
        phase = wait_until(lambda: _phase(bed, "check-configs") in ("Succeeded", "Failed")
                           and _phase(bed, "check-configs"), 120, "the config check to end")
        log = bed.k.run("logs", "check-configs", "-n", bed.namespace).stdout
    finally:
        bed.k.run("delete", "pod", "check-configs", "-n", bed.namespace, "--wait=false", check=False)
        bed.k.run("delete", "configmap", "configs", "-n", bed.namespace, check=False)
    assert log.startswith("HAProxy version 3."), log[:200]
    assert phase == "Succeeded", log
    assert log.count("Configuration file is valid") == len(configs), log
