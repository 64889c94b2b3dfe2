"""The session store's rendered redis.conf, ACL file and start scripts on Debian's real Redis, on
loopback (no cluster): the files are written as the pod mounts them (ConfigMap and Secret) and
the ConfigMap's own start script renders the running config and execs the server, so what runs
here is what runs in the pod, with only the port, the bind address and the directories changed.
Every process is tracked and stopped by its PID."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spillway.api.spec import ScalableServiceSpec
from spillway.resources import sessionstore
from spillway.resources.meta import Owner
from tests.cluster.processes import free_port
from tests.integration.components import TrackedProcess, ensure_installed, wait_until

pytestmark = pytest.mark.integration

OWNER = Owner(name="checkout", namespace="shop", uid="u-1")
PASSWORD = "generated-by-the-reconcile-0123456789"
APP = sessionstore.user_password(PASSWORD, "app")
EXPORTER = sessionstore.user_password(PASSWORD, "exporter")
ADMIN = sessionstore.user_password(PASSWORD, "admin")


class Refused(Exception):
    """An error reply from Redis (NOAUTH, WRONGPASS, NOPERM, ...)."""


class Connection:
    """Just enough RESP2 to send a command and read its reply (the venv has no redis client)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")

    def __call__(self, *args: str | int) -> Any:
        parts = [str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        return self.read()

    def read(self) -> Any:
        line = self.reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return Refused(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if rest == "-1" else self.reader.read(int(rest) + 2)[:-2].decode()
        if kind == b"*":
            return None if rest == "-1" else [self.read() for _ in range(int(rest))]
        raise ConnectionError(f"unexpected reply {line!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _as(port: int, user: str, password: str) -> Connection:
    connection = Connection(port)
    assert connection("AUTH", user, password) == "OK"
    return connection


def _spec(mode: str) -> ScalableServiceSpec:
    return ScalableServiceSpec.model_validate({"targetRef": {"name": "checkout"},
                                               "sessionStore": {"type": "Redis", "redis": {"mode": mode}}})


@dataclass
class Pod:
    """The directories one pod mounts, filled from the rendered ConfigMap and Secret."""

    config: Path
    secret: Path
    run: Path
    data: Path

    @classmethod
    def mounted(cls, root: Path, mode: str, data: Path | None = None, component: str = sessionstore.REDIS) -> Pod:
        """The files a `component` (redis or sentinel) pod mounts: its own ConfigMap and the Secret."""
        objects = sessionstore.build(OWNER, _spec(mode), PASSWORD, {"app": "checkout"})
        pod = cls(root / "config", root / "secret", root / "run", data or root / "data")
        for directory in (pod.config, pod.secret, pod.run, pod.data):
            directory.mkdir(parents=True, exist_ok=True)
        config_map = next(o for o in objects if o["kind"] == "ConfigMap"
                          and o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
        server_secret = next(o for o in objects if o["metadata"]["name"] == sessionstore.redis_name(OWNER)
                             and o["kind"] == "Secret")
        for directory, files in ((pod.config, config_map["data"]), (pod.secret, sessionstore.secret_text(server_secret))):
            for name, text in files.items():
                (directory / name).write_text(text)
        return pod

    def env(self, mode: str, **overrides: str) -> dict[str, str]:
        env = {"SPILLWAY_MODE": mode, "SPILLWAY_MASTER": sessionstore.master_name(OWNER),
               "SPILLWAY_CONFIG": str(self.config), "SPILLWAY_SECRET": str(self.secret), "SPILLWAY_RUN": str(self.run),
               "SPILLWAY_DATA": str(self.data), "SPILLWAY_QUORUM": str(sessionstore.QUORUM)}
        env.update(overrides)
        return env


def _start(script: Path, env: dict[str, str], port: int, log: Path) -> TrackedProcess:
    """The script with the pod's env (through `env`, which execs it: the server keeps the PID)."""
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), "sh", str(script), "--port", str(port),
            "--bind", "127.0.0.1"]
    process = TrackedProcess(argv, log)
    process.start()
    try:
        wait_until(lambda: _answers(port), 20, f"a server on 127.0.0.1:{port}")
    except TimeoutError as err:
        process.stop()
        raise TimeoutError(f"{err}\n{process.tail()}") from None
    return process


def _answers(port: int) -> bool:
    connection = Connection(port)
    try:
        return connection("PING") is not None  # PONG, or NOAUTH: either way it serves
    finally:
        connection.close()


def _start_redis(pod: Pod, port: int, log: Path) -> TrackedProcess:
    ensure_installed("redis-server")
    return _start(pod.config / "start-redis.sh", pod.env("Standalone"), port, log)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = _start_redis(Pod.mounted(root, "Standalone"), port, root / "redis.log")
    try:
        yield port
    finally:
        process.stop()


def test_unauthenticated_clients_are_refused(redis: int) -> None:
    answer = Connection(redis)("GET", "spring:session:sessions:1")
    assert isinstance(answer, Refused) and str(answer).startswith("NOAUTH")


@pytest.mark.parametrize("auth", [("AUTH", PASSWORD), ("AUTH", "default", PASSWORD), ("AUTH", "default", ""),
                                  ("AUTH", "app", PASSWORD), ("AUTH", "admin", APP)])
def test_default_user_and_wrong_passwords_are_refused(redis: int, auth: tuple[str, ...]) -> None:
    answer = Connection(redis)(*auth)
    assert isinstance(answer, Refused) and str(answer).startswith("WRONGPASS"), answer


def test_app_user_stores_sessions_with_expiry_under_its_prefixes(redis: int) -> None:
    app = _as(redis, "app", APP)
    for key in ("spring:session:sessions:1", "checkout:cache:1"):
        assert app("SET", key, "v", "EX", 60) == "OK"
        assert app("GET", key) == "v"
        assert 0 < app("TTL", key) <= 60
    assert app("HSET", "spring:session:sessions:2", "creationTime", "1") == 1
    assert "redis_version" in app("INFO", "server")  # Spring Boot's health indicator


@pytest.mark.parametrize("command", [
    ("SET", "payments:1", "v"), ("GET", "other"), ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"),
    ("CONFIG", "GET", "maxmemory"), ("CONFIG", "SET", "notify-keyspace-events", "KEA"), ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"), ("MODULE", "LIST"), ("ACL", "LIST"), ("REPLICAOF", "127.0.0.1", "1"),
    ("SLAVEOF", "127.0.0.1", "1"), ("MIGRATE", "127.0.0.1", "1", "spring:session:x", "0", "100"),
    ("MONITOR",), ("SCRIPT", "FLUSH"), ("FUNCTION", "FLUSH"), ("SORT", "spring:session:list", "BY", "nosort"),
    ("CLIENT", "LIST"), ("BGSAVE",), ("EVAL", "return redis.call('GET', KEYS[1])", "1", "payments:1"),
])
def test_app_user_is_refused_dangerous_commands_and_other_keys(redis: int, command: tuple[str, ...]) -> None:
    answer = _as(redis, "app", APP)(*command)
    # DEBUG is also switched off for everyone (enable-debug-command no), which answers first.
    assert isinstance(answer, Refused) and str(answer).startswith(("NOPERM", "ERR DEBUG command not allowed")), answer
    verdict = _as(redis, "admin", ADMIN)("ACL", "DRYRUN", "app", *command)
    assert isinstance(verdict, Refused) or verdict.startswith("This user has no permissions"), verdict


def test_app_user_runs_scripts_on_its_own_keys(redis: int) -> None:
    app = _as(redis, "app", APP)
    assert app("EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "spring:session:lua") == "OK"


@pytest.mark.parametrize(("command", "channel"), [
    ("SUBSCRIBE", "__keyevent@0__:expired"), ("SUBSCRIBE", "__keyevent@0__:del"),
    ("PSUBSCRIBE", "spring:session:event:0:created:*"),
])
def test_app_user_subscribes_to_what_spring_session_listens_on(redis: int, command: str, channel: str) -> None:
    answer = _as(redis, "app", APP)(command, channel)
    assert answer == [command.lower(), channel, 1], answer


def test_exporter_user_reads_info_but_no_key(redis: int) -> None:
    exporter = _as(redis, "exporter", EXPORTER)
    assert exporter("PING") == "PONG"
    assert "used_memory:" in exporter("INFO")
    for command in (("GET", "spring:session:sessions:1"), ("CONFIG", "GET", "*"), ("SET", "checkout:x", "1")):
        answer = exporter(*command)
        assert isinstance(answer, Refused) and str(answer).startswith("NOPERM"), answer


def test_admin_sees_the_rendered_durability_memory_and_events(redis: int) -> None:
    admin = _as(redis, "admin", ADMIN)

    def config(name: str) -> str:
        answer = admin("CONFIG", "GET", name)
        assert answer[0] == name
        return str(answer[1])

    assert config("appendonly") == "yes"
    assert config("appendfsync") == "everysec"
    assert config("maxmemory") == str(256 * 2**20)
    assert config("maxmemory-policy") == "volatile-lru"
    assert set(config("notify-keyspace-events")) >= set("Egx")
    assert config("save") == "3600 1 300 100 60 10000"
    assert config("masteruser") == "admin"


def test_readiness_probe_passes_on_a_primary(redis: int, tmp_path: Path) -> None:
    probe = sessionstore.READY_REDIS.replace(f"-p {sessionstore.REDIS_PORT}", f"-p {redis}")
    result = subprocess.run(["sh", "-c", probe], env={**os.environ, "SPILLWAY_EXPORTER_PASSWORD": EXPORTER},
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sessions_survive_a_crash_through_the_append_only_file(tmp_path: Path) -> None:
    port = free_port()
    pod = Pod.mounted(tmp_path, "Standalone")
    process = _start_redis(pod, port, tmp_path / "redis.log")
    try:
        assert _as(port, "app", APP)("SET", "spring:session:sessions:kept", "alive", "EX", 600) == "OK"
        time.sleep(1.5)  # appendfsync everysec
        process.kill()  # no shutdown save: only the AOF has the write
        process = _start_redis(pod, port, tmp_path / "redis.log")
        assert _as(port, "app", APP)("GET", "spring:session:sessions:kept") == "alive"
        assert (pod.data / "appendonlydir").is_dir()
    finally:
        process.stop()


@dataclass
class Sentinels:
    """A Redis and a sentinel on loopback, each started by its own pod's rendered script."""

    redis_port: int
    sentinel_port: int
    sentinel_pod: Pod


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinels]:
    ensure_installed("redis-sentinel")
    root = tmp_path_factory.mktemp("sentinels")
    redis_port, sentinel_port = free_port(), free_port()
    pod = Pod.mounted(root / "redis", "Sentinel")
    # One Redis alone on loopback: its script asks no sentinel and stays the primary.
    env = pod.env("Sentinel", SPILLWAY_SENTINELS="", SPILLWAY_SELF="127.0.0.1", SPILLWAY_SEED="127.0.0.1",
                  SPILLWAY_REDIS_PORT=str(redis_port), SPILLWAY_SENTINEL_PORT=str(sentinel_port))
    primary = _start(pod.config / "start-redis.sh", env, redis_port, root / "redis.log")
    sentinel: TrackedProcess | None = None
    try:
        sentinel_pod = Pod.mounted(root / "sentinel", "Sentinel", component=sessionstore.SENTINEL)
        env = sentinel_pod.env("Sentinel", SPILLWAY_SENTINELS="", SPILLWAY_SELF="127.0.0.1",
                               SPILLWAY_SEED="127.0.0.1", SPILLWAY_REDIS_PORT=str(redis_port),
                               SPILLWAY_SENTINEL_PORT=str(sentinel_port))
        sentinel = _start(sentinel_pod.config / "start-sentinel.sh", env, sentinel_port, root / "sentinel.log")
        yield Sentinels(redis_port, sentinel_port, sentinel_pod)
    finally:
        if sentinel is not None:
            sentinel.stop()
        primary.stop()


def test_sentinel_from_the_rendered_config_monitors_the_primary(sentinels: Sentinels) -> None:
    redis_port, sentinel_pod = sentinels.redis_port, sentinels.sentinel_pod
    master = sessionstore.master_name(OWNER)
    ask = _as(sentinels.sentinel_port, "admin", ADMIN)
    try:
        assert ask("SENTINEL", "get-master-addr-by-name", master) == ["127.0.0.1", str(redis_port)]

        def flags() -> str:
            answer = ask("SENTINEL", "master", master)
            found = dict(zip(answer[::2], answer[1::2], strict=True))
            return str(found["flags"]) if found.get("role-reported") == "master" else ""

        # Authenticated as admin (auth-user/auth-pass from the Secret), the sentinel sees a healthy
        # primary: no s_down, no disconnected.
        wait_until(lambda: flags() == "master", 15, "the sentinel to see the primary")
        rewritten = (sentinel_pod.run / "sentinel.conf").read_text()
        assert f"sentinel monitor {master} 127.0.0.1 {redis_port} {sessionstore.QUORUM}" in rewritten
        assert "sentinel myid" in rewritten, "redis-sentinel rewrites its config in the writable run dir"
        assert "user default off" in rewritten, "the rewritten config keeps the users"
    finally:
        ask.close()


SENTINEL_APP = sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP)
MASTER = sessionstore.master_name(OWNER)


@pytest.mark.parametrize("command", [
    ("PING",), ("SENTINEL", "get-master-addr-by-name", MASTER), ("SENTINEL", "SET", MASTER, "quorum", "1"),
    ("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "REMOVE", MASTER)])
def test_a_sentinel_refuses_every_command_before_authentication(sentinels: Sentinels, command: tuple[str, ...]) -> None:
    connection = Connection(sentinels.sentinel_port)
    try:
        answer = connection(*command)
        assert isinstance(answer, Refused) and str(answer).startswith("NOAUTH"), answer
    finally:
        connection.close()


@pytest.mark.parametrize("auth", [("default", ""), ("default", PASSWORD), ("app", APP), ("app", ADMIN),
                                  ("admin", SENTINEL_APP), ("exporter", EXPORTER)])
def test_a_sentinel_refuses_the_default_user_and_any_other_password(sentinels: Sentinels,
                                                                      auth: tuple[str, str]) -> None:
    connection = Connection(sentinels.sentinel_port)
    try:
        answer = connection("AUTH", *auth)
        assert isinstance(answer, Refused) and str(answer).startswith("WRONGPASS"), answer
    finally:
        connection.close()


def test_the_apps_sentinel_user_reads_the_topology_and_events(sentinels: Sentinels) -> None:
    app = _as(sentinels.sentinel_port, "app", SENTINEL_APP)
    try:
        assert app("SENTINEL", "get-master-addr-by-name", MASTER) == ["127.0.0.1", str(sentinels.redis_port)]
        assert isinstance(app("SENTINEL", "master", MASTER), list)
        assert isinstance(app("SENTINEL", "replicas", MASTER), list)
        assert isinstance(app("SENTINEL", "sentinels", MASTER), list)
        assert app("PING") == "PONG"
        assert app("CLIENT", "SETNAME", "lettuce") == "OK"
        assert app("PSUBSCRIBE", "*") == ["psubscribe", "*", 1], "Lettuce follows the sentinels' events"
    finally:
        app.close()


@pytest.mark.parametrize("command", [
    ("SENTINEL", "SET", MASTER, "quorum", "1"), ("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "REMOVE", MASTER),
    ("SENTINEL", "MONITOR", "evil", "10.0.0.66", "6379", "1"), ("SENTINEL", "RESET", "*"),
    ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "no"), ("SENTINEL", "FLUSHCONFIG"),
    ("SENTINEL", "CKQUORUM", MASTER), ("SENTINEL", "DEBUG"), ("ACL", "SETUSER", "app", "+@all"),
    ("ACL", "LIST"), ("CONFIG", "GET", "*"), ("PUBLISH", "__sentinel__:hello", "x"), ("SHUTDOWN",),
    ("CLIENT", "KILL", "TYPE", "normal"), ("INFO",)])
def test_the_apps_sentinel_user_is_refused_every_change(sentinels: Sentinels, command: tuple[str, ...]) -> None:
    app = _as(sentinels.sentinel_port, "app", SENTINEL_APP)
    try:
        answer = app(*command)
        assert isinstance(answer, Refused) and str(answer).startswith(("NOPERM", "ERR")), answer
        assert _as(sentinels.sentinel_port, "admin", ADMIN)("SENTINEL", "get-master-addr-by-name", MASTER) == [
            "127.0.0.1", str(sentinels.redis_port)], "the sentinel still monitors the primary"
    finally:
        app.close()
