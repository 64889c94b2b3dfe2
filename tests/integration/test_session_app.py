"""The seed's web app (examples/session-app: Spring Boot, Tomcat, Spring Session on Redis) on
loopback, no cluster. Two instances share a Debian redis-server running the redis.conf and ACL
Spillway renders (the app user limited to Spring Session's keys and the service's own), so a
user logged in on one is known on the other; without Redis each keeps its sessions in its own
memory and the other does not know the user; in Sentinel mode the app finds the primary through
a sentinel and logs in there with the URL's user and password. Then the SpringBoot metrics
preset, read by a real Prometheus from the app's real /actuator/prometheus under a real
overload, against what the test's own clients know.

Every process is tracked and stopped by its PID; every request loop is bounded in time.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from spillway.api.spec import Queries, ScalableServiceSpec
from spillway.metrics.presets import grouped, render
from spillway.metrics.prometheus import PrometheusSignals
from spillway.ports import Credentials
from spillway.resources import sessionstore
from spillway.resources.meta import Owner
from tests.cluster.processes import free_port
from tests.integration.components import REPO, Prometheus, TrackedProcess, ensure_installed, wait_until

pytestmark = pytest.mark.integration

BUILD = REPO / "examples" / "session-app" / "build.sh"
OWNER = Owner(name="checkout", namespace="shop", uid="u-1")
PASSWORD = "generated-by-the-reconcile-0123456789"
APP = sessionstore.user_password(PASSWORD, "app")
ADMIN = sessionstore.user_password(PASSWORD, "admin")
SENTINEL_APP = sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP)
THREADS = 8  # the app's default server.tomcat.threads.max
START_SECONDS = 120  # a JVM on a busy 2-core machine, two starting at once


# --- the app --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def build() -> dict[str, str]:
    """The jar and the Java that runs it (build.sh: idempotent, cached; cold it runs Maven)."""
    out = subprocess.run(["bash", str(BUILD)], check=True, capture_output=True, text=True, timeout=1200).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class App:
    """One instance of the jar on loopback with only the environment given, as a pod has it.
    `management` puts the actuator on a port of its own (MANAGEMENT_SERVER_PORT)."""

    def __init__(self, build: dict[str, str], workdir: Path, replica: str, env: dict[str, str],
                 management: bool = False) -> None:
        self.replica = replica
        self.port = free_port()
        self.management_port = free_port() if management else self.port
        tmp = workdir / replica / "tmp"  # Tomcat's work directory: an emptyDir in a pod
        tmp.mkdir(parents=True)
        variables = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": replica,
                     "SERVER_ADDRESS": "127.0.0.1", "SERVER_PORT": str(self.port), **env}
        if management:
            variables |= {"MANAGEMENT_SERVER_ADDRESS": "127.0.0.1", "MANAGEMENT_SERVER_PORT": str(self.management_port)}
        argv = ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), build["SESSION_APP_JAVA"],
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", f"-Djava.io.tmpdir={tmp}",
                "-jar", build["SESSION_APP_JAR"]]
        self.process = TrackedProcess(argv, workdir / f"{replica}.log")

    def start(self) -> None:
        self.process.start()

    def wait_ready(self) -> None:
        assert self.process.proc is not None
        proc = self.process.proc
        try:
            wait_until(lambda: proc.poll() is not None or self.ready(), START_SECONDS, f"{self.replica} to be ready",
                       every=0.5)
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.process.tail()}") from None
        assert proc.poll() is None, f"{self.replica} exited:\n{self.process.tail()}"

    def ready(self) -> bool:
        return call("GET", self.management_port, "/actuator/health/readiness")[0] == 200

    def health(self) -> dict[str, Any]:
        status, body, _ = call("GET", self.management_port, "/actuator/health")
        assert status == 200, body
        return dict(body)

    def stop(self) -> None:
        self.process.stop(timeout=20)


def call(method: str, port: int, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, Any, list[str]]:
    """One request: the status, the JSON body (or the text), and the Set-Cookie headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        text = answer.read().decode()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return answer.status, parsed, answer.headers.get_all("Set-Cookie") or []
    finally:
        connection.close()


class Browser:
    """One user's cookie jar. Cookies do not tell ports apart, so a browser sends the same
    cookies to every replica on 127.0.0.1, as it would to every replica behind one address."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def login(self, app: App, user: str, as_json: bool = False) -> tuple[int, Any]:
        if as_json:
            body, kind = json.dumps({"user": user}).encode(), "application/json"
        else:
            body, kind = urlencode({"user": user}).encode(), "application/x-www-form-urlencoded"
        return self.send("POST", app, "/login", body, {"Content-Type": kind})

    def whoami(self, app: App) -> tuple[int, Any]:
        return self.send("GET", app, "/whoami")

    def send(self, method: str, app: App, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, answer, set_cookies = call(method, app.port, path, body, {**(headers or {}), "Cookie": cookie})
        for line in set_cookies:
            name, _, value = line.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return status, answer


@pytest.fixture
def apps(build: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Starts instances (all at once, then waits for each) and always stops them by PID."""
    with ExitStack() as stack:
        def start(*replicas: tuple[str, dict[str, str]], management: bool = False) -> list[App]:
            started = [App(build, tmp_path, name, env, management) for name, env in replicas]
            for app in started:
                stack.callback(app.stop)
                app.start()
            for app in started:
                app.wait_ready()
            return started

        yield start


# --- Redis, as Spillway renders it -----------------------------------------------------------

def redis_cli(port: int, *command: str, user: str | None = "admin", password: str = ADMIN) -> str:
    auth = ["--user", user, "--pass", password, "--no-auth-warning"] if user else []
    result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *auth, *command],
                            capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def _start_server(argv: list[str], port: int, log: Path) -> TrackedProcess:
    process = TrackedProcess(argv, log)
    process.start()
    try:
        # PONG, or NOAUTH from the Redis whose default user is off: either way it serves.
        wait_until(lambda: redis_cli(port, "PING", user=None), 20, f"a server on 127.0.0.1:{port}")
    except TimeoutError as err:
        process.stop()
        raise TimeoutError(f"{err}\n{process.tail()}") from None
    return process


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Debian's redis-server with the rendered redis.conf and ACL file; only the port, the
    bind address and the directories differ from the pod's."""
    ensure_installed("redis-server")
    root = tmp_path_factory.mktemp("redis")
    spec = ScalableServiceSpec.model_validate({"targetRef": {"name": OWNER.name},
                                               "sessionStore": {"type": "Redis", "redis": {"mode": "Standalone"}}})
    (root / "redis.conf").write_text(sessionstore.redis_conf(spec))
    (root / "users.acl").write_text(sessionstore.acl_file(OWNER, PASSWORD))
    (root / "data").mkdir()
    port = free_port()
    process = _start_server(["redis-server", str(root / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(root / "data"), "--aclfile", str(root / "users.acl")], port,
                            root / "redis.log")
    try:
        yield port
    finally:
        process.stop()


@pytest.fixture
def sentinel(redis: int, tmp_path: Path) -> Iterator[int]:
    """Debian's redis-sentinel with the rendered sentinel.conf and the Secret's users and auth
    lines, monitoring the Redis above as the admin user: the app must authenticate to it too."""
    ensure_installed("redis-sentinel")
    master = sessionstore.master_name(OWNER)
    auth = sessionstore.secret_text(sessionstore.server_secret(OWNER, PASSWORD))["sentinel-auth.conf"]
    config = tmp_path / "sentinel.conf"
    config.write_text(sessionstore.sentinel_conf() + f"dir {tmp_path}\n"
                      f"sentinel monitor {master} 127.0.0.1 {redis} 1\n" + sessionstore.sentinel_master_conf(OWNER)
                      + auth)
    port = free_port()
    process = _start_server(["redis-server", str(config), "--sentinel", "--port", str(port), "--bind", "127.0.0.1"],
                            port, tmp_path / "sentinel.log")
    try:
        wait_until(lambda: redis_cli(port, "SENTINEL", "get-master-addr-by-name", master).split()
                   == ["127.0.0.1", str(redis)], 15, "the sentinel to name the primary")
        yield port
    finally:
        process.stop()


def _session_key(browser: Browser) -> str:
    """Spring Session's cookie holds the session id in base64; Redis keeps it under its namespace."""
    return "spring:session:sessions:" + base64.b64decode(browser.cookies["SESSION"]).decode()


def _redis_url(port: int) -> str:
    return f"redis://app:{APP}@127.0.0.1:{port}/0"


# --- sessions --------------------------------------------------------------------------------

def test_a_user_logged_in_on_one_replica_is_known_on_the_other_through_redis(redis: int, apps: Any) -> None:
    a, b = apps(("replica-a", {"SPRING_DATA_REDIS_URL": _redis_url(redis)}),
                ("replica-b", {"SPRING_DATA_REDIS_URL": _redis_url(redis)}))
    alice = Browser()
    assert alice.login(a, "alice") == (200, {"user": "alice", "replica": "replica-a"})
    assert alice.whoami(b) == (200, {"user": "alice", "replica": "replica-b"})
    assert set(alice.cookies) == {"SESSION"}  # Spring Session's cookie, not Tomcat's JSESSIONID
    bob = Browser()
    assert bob.login(b, "bob", as_json=True) == (200, {"user": "bob", "replica": "replica-b"})
    assert bob.whoami(a) == (200, {"user": "bob", "replica": "replica-a"})
    assert Browser().whoami(a) == (200, {"user": None, "replica": "replica-a"})

    # Under Spring Session's namespace, where the ACL lets the app user write, with an expiry.
    for browser in (alice, bob):
        key = _session_key(browser)
        assert redis_cli(redis, "EXISTS", key) == "1"
        assert 0 < int(redis_cli(redis, "TTL", key)) <= 35 * 60
    # Both replicas subscribe to the key events (indexed repository) as the app user, and never
    # tried a command or key the ACL refuses (CONFIG, KEYS, another prefix): the ACL log is empty.
    assert redis_cli(redis, "PUBSUB", "NUMSUB", "__keyevent@0__:expired").split() == ["__keyevent@0__:expired", "2"]
    assert redis_cli(redis, "ACL", "LOG") == ""
    assert all(app.health()["components"]["redis"]["status"] == "UP" for app in (a, b))


def test_without_redis_each_replica_keeps_its_own_sessions_and_the_other_does_not_know_the_user(apps: Any) -> None:
    a, b = apps(("replica-a", {}), ("replica-b", {}))
    alice = Browser()
    assert alice.login(a, "alice") == (200, {"user": "alice", "replica": "replica-a"})
    assert alice.whoami(a) == (200, {"user": "alice", "replica": "replica-a"})
    assert set(alice.cookies) == {"JSESSIONID"}  # Tomcat's own session, in replica-a's memory
    assert alice.whoami(b) == (200, {"user": None, "replica": "replica-b"})
    assert "redis" not in a.health()["components"]
    assert "No Redis configured" in a.process.tail(200)


def test_in_sentinel_mode_the_app_finds_the_primary_through_the_authenticated_sentinel(
        redis: int, sentinel: int, apps: Any) -> None:
    # The URL names a port where nothing listens: only the sentinel can lead the app to the data
    # node, and only the URL's user and password can open it. The sentinel's own user is the
    # connection Secret's sentinel-username and -password (its default user is off).
    nowhere = free_port()
    assert redis_cli(sentinel, "SENTINEL", "get-master-addr-by-name", sessionstore.master_name(OWNER),
                     user=None).startswith("NOAUTH")
    (app,) = apps(("replica-s", {"SPRING_DATA_REDIS_URL": _redis_url(nowhere),
                                 "SPRING_DATA_REDIS_SENTINEL_MASTER": sessionstore.master_name(OWNER),
                                 "SPRING_DATA_REDIS_SENTINEL_NODES": f"127.0.0.1:{sentinel}",
                                 "SPRING_DATA_REDIS_SENTINEL_USERNAME": "app",
                                 "SPRING_DATA_REDIS_SENTINEL_PASSWORD": SENTINEL_APP}))
    carol = Browser()
    assert carol.login(app, "carol") == (200, {"user": "carol", "replica": "replica-s"})
    assert carol.whoami(app) == (200, {"user": "carol", "replica": "replica-s"})
    assert redis_cli(redis, "EXISTS", _session_key(carol)) == "1"
    assert "user=app" in redis_cli(redis, "CLIENT", "LIST")
    assert app.health()["components"]["redis"]["status"] == "UP"


def test_login_refuses_a_missing_or_overlong_user(apps: Any) -> None:
    (app,) = apps(("replica-v", {}))
    assert Browser().send("POST", app, "/login")[0] == 400
    assert Browser().login(app, "x" * 65)[0] == 400
    assert Browser().login(app, "x" * 64, as_json=True)[0] == 200


# --- the SpringBoot preset under a real overload ----------------------------------------------

NAMESPACE = "shop"
POD = "checkout-5d8f7c9b6d-x2x4z"  # what pod discovery would label the app's pod with
CLIENTS = 40
WORK_MS = 2000
LOAD_SECONDS = 8.0
READ_AT_SECONDS = 6.0
WINDOW_SECONDS = 60.0


class Load:
    """`clients` closed-loop clients, each on one keep-alive connection, sending GET `path` until
    `seconds` have passed (then each finishes the request it has out). `took` is every answered
    request's time, `errors` every failure."""

    def __init__(self, port: int, clients: int, seconds: float, path: str) -> None:
        self.port, self.path = port, path
        self.deadline = time.monotonic() + seconds
        self.took: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        for thread in self.threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 60)

    def _client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while time.monotonic() < self.deadline:
                started = time.monotonic()
                try:
                    connection.request("GET", self.path)
                    answer = connection.getresponse()
                    answer.read()
                    if answer.status != 200:
                        raise OSError(f"HTTP {answer.status}")
                    with self.lock:
                        self.took.append(time.monotonic() - started)
                except (OSError, http.client.HTTPException) as err:
                    with self.lock:
                        self.errors.append(f"{type(err).__name__}: {err}"[:200])
                    return
        finally:
            connection.close()


def test_spring_boot_preset_reads_a_real_tomcat_overload(apps: Any, tmp_path: Path) -> None:
    # The actuator on its own port: through the app's port, /actuator/prometheus would wait in
    # the same queue as the overload, past the scrape timeout.
    (app,) = apps(("replica-m", {}), management=True)
    labels = {"__metrics_path__": "/actuator/prometheus", "namespace": NAMESPACE, "pod": POD}
    (tmp_path / "prometheus").mkdir()
    prometheus = Prometheus([f"127.0.0.1:{app.management_port}"], labels, tmp_path / "prometheus")
    source = PrometheusSignals()
    queries = render("SpringBoot", Queries(), namespace=NAMESPACE, service="checkout", deployments=["checkout"],
                     quantile=0.95)
    together = grouped("SpringBoot", Queries(), namespace=NAMESPACE, service="checkout", deployments=["checkout"],
                       quantile=0.95)

    def read() -> dict[str, float]:
        return source.read(prometheus.url, 5.0, Credentials(), queries, max_age_seconds=WINDOW_SECONDS).values

    def series(metric: str) -> float | None:
        return source.read(prometheus.url, 5.0, Credentials(), {"q": f'sum({metric}{{pod="{POD}"}})'},
                           max_age_seconds=WINDOW_SECONDS).values.get("q")

    prometheus.start()
    try:
        def scraped() -> dict[str, float] | None:
            values = read()
            return values if {"queue_depth", "in_flight"} <= set(values) else None

        idle = wait_until(scraped, 30, "Prometheus to scrape the app")
        assert idle["queue_depth"] == 0 and idle["in_flight"] == 0, idle
        with Load(app.port, CLIENTS, LOAD_SECONDS, f"/work?ms={WORK_MS}") as load:
            time.sleep(READ_AT_SECONDS)
            under_load = read()
            rows = source.read_grouped(prometheus.url, 5.0, Credentials(), together, WINDOW_SECONDS, 1.0).values
            raw = {m: series(m) for m in ("tomcat_connections_current_connections", "tomcat_threads_busy_threads",
                                          "tomcat_connections_keepalive_current_connections",
                                          "tomcat_threads_config_max_threads")}
            # Any request to the app's port waits behind the queue: a scrape there would too.
            asked = time.monotonic()
            assert call("GET", app.port, "/whoami", timeout=30)[0] == 200
            behind_the_queue = time.monotonic() - asked
        time.sleep(2.0)  # the last answers scraped
        after = read()
    finally:
        prometheus.stop()
    waited = statistics.fmean(load.took)
    print(f"under load: {under_load}; grouped rows: {rows}; raw: {raw}; after the load: {after}; clients: "
          f"{len(load.took)} answered, mean {waited:.2f}s, max {max(load.took):.2f}s; /whoami on the app's port "
          f"under load: {behind_the_queue:.2f}s")
    assert not load.errors, load.errors[:5]

    # What the clients know: 40 connections open, 8 served, 32 waiting for a thread.
    assert under_load["in_flight"] == THREADS
    assert under_load["queue_depth"] == CLIENTS - THREADS
    assert rows["queue_depth"] == under_load["queue_depth"] and rows["in_flight"] == under_load["in_flight"]
    # Why the queue is not current - busy - keep-alive: Tomcat's connection count holds one more
    # than the open connections (the acceptor's), and its keep-alive count is every open one.
    assert raw == {"tomcat_connections_current_connections": CLIENTS + 1, "tomcat_threads_busy_threads": THREADS,
                   "tomcat_connections_keepalive_current_connections": CLIENTS,
                   "tomcat_threads_config_max_threads": THREADS}
    # The latency histogram starts when a thread takes the request: it reads the service time
    # (in the bucket that holds 2 s), while the clients also waited in Tomcat's queue.
    assert WORK_MS / 1000 <= after["latency"] <= 2.15
    assert waited > 2 * WORK_MS / 1000
    assert after["arrival_rate"] > 0
    assert behind_the_queue > WORK_MS / 1000  # while Prometheus read the management port every second
    assert after["queue_depth"] == 0 and after["in_flight"] == 0
