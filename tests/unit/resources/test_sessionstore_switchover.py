"""The Sentinel-mode primary's planned stop: the preStop hook and the grace period that fit it,
what the scripts need from the pod (env, Secret and ConfigMap files, a read-only root), and the
hook's decisions, run by `sh` against a scripted redis-cli that records every call."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.resources import sessionstore
from spillway.resources.meta import Owner
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="0b5e2c1a-uid")
PASSWORD = "s3cr3t-from-the-reconcile-0123456789"
HOOK = ["timeout", "20", "sh", "/etc/spillway/config/stop-redis.sh"]


def _build(mode: str) -> list[dict[str, Any]]:
    spec = parse_spec(minimal_spec(sessionStore={"type": "Redis", "redis": {"mode": mode}}))
    return sessionstore.build(OWNER, spec, PASSWORD, {"app": "checkout"})


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """`name` is a content-named ConfigMap's name without its digest."""
    found: dict[str, Any] = next(o for o in objects if o["kind"] == kind and (
        re.sub(r"-[0-9a-f]{10}$", "", o["metadata"]["name"]) if kind == "ConfigMap" else o["metadata"]["name"]) == name)
    return found


def _pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _one(objects, "StatefulSet", name)["spec"]["template"]["spec"]
    return spec


# --- the rendered objects ---------------------------------------------------------------------


def test_sentinel_mode_redis_stops_through_the_switchover_hook_within_its_grace_period() -> None:
    objects = _build("Sentinel")
    redis = _pod(objects, "checkout-redis")
    assert redis["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": HOOK}}}
    # The hook's time counts against the grace period: Redis keeps what it had to stop after it.
    assert sessionstore.SWITCHOVER_SECONDS == 20
    assert redis["terminationGracePeriodSeconds"] == 50
    assert f"CLIENT PAUSE {sessionstore.SWITCHOVER_SECONDS * 1000} WRITE" in sessionstore.STOP_REDIS, (
        "the pause ends by itself when the hook's time is up, even if the hook is killed")
    assert _one(objects, "ConfigMap", "checkout-redis")["data"]["stop-redis.sh"] == sessionstore.STOP_REDIS
    sentinel = _pod(objects, "checkout-sentinel")
    assert "lifecycle" not in sentinel["containers"][0]
    assert sentinel["terminationGracePeriodSeconds"] == 30


def test_standalone_redis_has_no_switchover_to_make() -> None:
    objects = _build("Standalone")
    redis = _pod(objects, "checkout-redis")
    assert "lifecycle" not in redis["containers"][0]
    assert redis["terminationGracePeriodSeconds"] == 30
    assert "stop-redis.sh" not in _one(objects, "ConfigMap", "checkout-redis")["data"]


def test_a_new_stop_script_rolls_redis_and_leaves_the_sentinels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMaps are immutable and content-named: a new hook is a new Redis ConfigMap, which
    the Redis pods roll onto (each old pod keeps, and stops with, the hook it started with); the
    sentinels mount their own ConfigMap and stay."""
    def template(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
        found: dict[str, Any] = _one(objects, "StatefulSet", name)["spec"]["template"]
        return found

    before = _build("Sentinel")
    monkeypatch.setattr(sessionstore.objects, "STOP_REDIS", sessionstore.STOP_REDIS + "# changed\n")
    after = _build("Sentinel")
    old, new = (_one(o, "ConfigMap", "checkout-redis")["metadata"]["name"] for o in (before, after))
    assert old != new
    assert template(after, "checkout-redis") != template(before, "checkout-redis")
    assert template(after, "checkout-sentinel") == template(before, "checkout-sentinel")


def _used(script: str, prefix: str) -> set[str]:
    return set(re.findall(rf"\${{?{prefix}/([\w.-]+)", script))


REDIS_SCRIPTS = {"start-redis.sh": sessionstore.START_REDIS, "stop-redis.sh": sessionstore.STOP_REDIS,
                 "readiness probe": sessionstore.READY_REDIS}


@pytest.mark.parametrize("script", sorted(REDIS_SCRIPTS))
def test_redis_scripts_find_every_variable_and_file_they_read_in_the_pod(script: str) -> None:
    objects = _build("Sentinel")
    text = REDIS_SCRIPTS[script]
    container = _pod(objects, "checkout-redis")["containers"][0]
    env = {e["name"] for e in container["env"]}
    required = set(re.findall(r"\$\{?(SPILLWAY_[A-Z_]+)(?![A-Z_]|:-)", text))  # not those with a default
    assert required and required <= env, required - env
    secret = sessionstore.secret_text(_one(objects, "Secret", "checkout-redis"))
    assert _used(text, "SPILLWAY_SECRET") <= set(secret)
    assert _used(text, "SPILLWAY_CONFIG") <= set(_one(objects, "ConfigMap", "checkout-redis")["data"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert (mounts["secret"], mounts["config"]) == (sessionstore.SECRET_DIR, sessionstore.CONFIG_DIR)


def test_the_hook_uses_the_admin_password_from_the_secret_and_never_holds_one() -> None:
    script = sessionstore.STOP_REDIS
    assert _used(script, "SPILLWAY_SECRET") == {"admin-password"}
    # Passed to redis-cli through its environment, never on a command line `ps` would show.
    assert re.findall(r"--user (\w+)", script) and set(re.findall(r"--user (\w+)", script)) == {"admin"}
    assert " -a " not in script and "--pass" not in script and "AUTH " not in script
    admin = next(line for line in sessionstore.acl_file(OWNER, PASSWORD).splitlines() if line.startswith("user admin "))
    assert admin.endswith("~* &* +@all"), "CLIENT PAUSE is @admin, INFO is @dangerous: admin may run both"


@pytest.mark.parametrize("script", [sessionstore.START_REDIS, sessionstore.STOP_REDIS, sessionstore.START_SENTINEL])
def test_scripts_parse_and_write_only_to_the_run_dir_or_logs(script: str) -> None:
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    code = re.sub(r"(^|\s)#.*$", "", script, flags=re.MULTILINE)  # comments may draw arrows
    targets = set(re.findall(r"(?<![0-9&<])>>?\s*(\"[^\"]*\"|[^\s;]+)", code))
    assert targets
    assert targets <= {"/dev/null", "&2", '"$run"', '"$run.new"', '"${SPILLWAY_LOG:-/proc/1/fd/1}"'}, (
        "the root filesystem is read-only")
    assert "mktemp" not in script and "<<" not in script, "here-documents may be written to $TMPDIR"


# --- the hook's decisions, against a scripted redis-cli ---------------------------------------

SELF = "checkout-redis-0.checkout-redis.shop.svc"
OTHER = "checkout-redis-1.checkout-redis.shop.svc"
SENTINELS = [f"checkout-sentinel-{i}.checkout-sentinel.shop.svc" for i in range(3)]

# Answers as redis-cli --raw prints them; every call is appended to $STUB/calls first; a call not
# authenticated as admin is refused, as the real ones are. What the
# sentinels name, and what the primary reports, change once SENTINEL FAILOVER was asked.
FAKE_CLI = r"""#!/bin/sh
echo "$*" >> "$STUB/calls"
# Redis and the sentinels refuse whoever is not admin with the Secret's password.
case " $* " in
  *" --user admin "*) [ "${REDISCLI_AUTH:-}" = admin-password-from-the-secret ] || { echo WRONGPASS; exit 1; } ;;
  *) echo NOAUTH; exit 1 ;;
esac
host=127.0.0.1
while [ $# -gt 0 ]; do
  case "$1" in
    -h) host=$2; shift 2 ;;
    -p|--user) shift 2 ;;
    --raw|--no-auth-warning) shift ;;
    *) break ;;
  esac
done
after() { grep -q "SENTINEL FAILOVER" "$STUB/calls" && [ -e "$STUB/$1.after" ]; }
learned() {  # a sentinel names the promoted replica from its (lag + 1)th question after the failover
  asked=$(sed -n '/SENTINEL FAILOVER/,$p' "$STUB/calls" | grep -c -- "-h $host .*get-master-addr-by-name")
  [ "$asked" -gt "$(cat "$STUB/lag.$host" 2>/dev/null || echo 0)" ]
}
answer() { if after "$1"; then cat "$STUB/$1.after"; else cat "$STUB/$1"; fi; }
case "$host $*" in
  "127.0.0.1 INFO replication") answer info ;;
  *" INFO replication") n=$(grep -c -- "-h $host .*INFO replication" "$STUB/calls"); sed -n "${n}p" "$STUB/replica" ;;
  *" SENTINEL get-master-addr-by-name checkout")
    for down in $(cat "$STUB/down"); do [ "$host" = "$down" ] && exit 1; done
    if learned; then answer named; else cat "$STUB/named"; fi ;;
  *" SENTINEL FAILOVER checkout") cat "$STUB/failover" ;;
  *" SENTINEL master checkout") printf 'name\ncheckout\nflags\n'; answer flags ;;
  *" CLIENT PAUSE "*|*" CLIENT UNPAUSE") echo OK ;;
  *) echo "unexpected: $host $*" >&2; exit 1 ;;
esac
"""


def _info(role: str, replicas: list[tuple[str, int]], offset: int = 1000) -> str:
    lines = [f"role:{role}", f"connected_slaves:{len(replicas)}"]
    lines += [f"slave{i}:ip={host},port=6379,state=online,offset={acked},lag=0"
              for i, (host, acked) in enumerate(replicas)]
    lines += [f"master_repl_offset:{offset}"]
    return "".join(f"{line}\r\n" for line in lines)


@dataclass(frozen=True)
class Scenario:
    info: str = _info("master", [(OTHER, 1000)])
    named: str = SELF
    down: tuple[int, ...] = ()  # sentinels that do not answer
    failover: str = "OK"
    named_after: str | None = OTHER  # None: the sentinels keep naming this one
    flags_after: str = "master,failover_in_progress"
    replica: tuple[int, ...] = (1000,)  # the replica's own offset, each time it is asked
    lag: tuple[int, ...] = (0, 0, 0)  # questions each sentinel answers with the old primary after the failover


@dataclass(frozen=True)
class Ran:
    calls: list[str]
    log: str
    seconds: float

    def index(self, fragment: str) -> int:
        return next(i for i, call in enumerate(self.calls) if fragment in call)

    def made(self, fragment: str) -> bool:
        return any(fragment in call for call in self.calls)


def _run(tmp_path: Path, scenario: Scenario) -> Ran:
    stub, bin_dir, secret = tmp_path / "stub", tmp_path / "bin", tmp_path / "secret"
    for directory in (stub, bin_dir, secret):
        directory.mkdir()
    cli = bin_dir / "redis-cli"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    (secret / "admin-password").write_text("admin-password-from-the-secret")
    files = {"info": scenario.info, "named": f"{scenario.named}\n6379\n", "failover": f"{scenario.failover}\n",
             "flags": "master\n", "flags.after": f"{scenario.flags_after}\n",
             "down": " ".join(SENTINELS[i] for i in scenario.down),
             "replica": "".join(f"slave_repl_offset:{o}\r\n" for o in scenario.replica), "calls": ""}
    if scenario.named_after is not None:
        files["named.after"] = f"{scenario.named_after}\n6379\n"
    files.update({f"lag.{sentinel}": str(lag) for sentinel, lag in zip(SENTINELS, scenario.lag, strict=True)})
    for name, text in files.items():
        (stub / name).write_text(text)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB": str(stub), "SPILLWAY_LOG": str(tmp_path / "log"),
           "SPILLWAY_SECRET": str(secret), "SPILLWAY_SELF": SELF, "SPILLWAY_REDIS_PORT": "6379",
           "SPILLWAY_SENTINELS": " ".join(SENTINELS), "SPILLWAY_SENTINEL_PORT": "26379", "SPILLWAY_MASTER": "checkout",
           "SPILLWAY_QUORUM": str(sessionstore.QUORUM)}
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", sessionstore.STOP_REDIS], env=env, capture_output=True, text=True, timeout=30)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "unexpected" not in done.stderr, done.stderr
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    return Ran((stub / "calls").read_text().splitlines(), log, seconds)


@pytest.mark.parametrize(("scenario", "why"), [
    (Scenario(info=_info("slave", [])), ""),
    (Scenario(info=_info("master", [])), "no replica"),
    (Scenario(down=(0, 1, 2)), "no sentinel names this primary"),
    (Scenario(named=OTHER), "no sentinel names this primary"),
])
def test_the_hook_does_nothing_and_returns_at_once_unless_a_switchover_can_happen(
        tmp_path: Path, scenario: Scenario, why: str) -> None:
    ran = _run(tmp_path, scenario)
    assert not ran.made("CLIENT PAUSE") and not ran.made("FAILOVER"), ran.calls
    assert why in ran.log
    assert ran.seconds < 2, "nothing to wait for"


def test_the_hook_pauses_writes_hands_over_and_lets_redis_stop_once_a_quorum_names_the_replica(
        tmp_path: Path) -> None:
    # The sentinel asked names the promoted replica at once; the other learns of it later (from
    # the hello messages, every 2 s).
    ran = _run(tmp_path, Scenario(down=(0,), lag=(0, 0, 2)))
    assert ran.index("CLIENT PAUSE 20000 WRITE") < ran.index("SENTINEL FAILOVER")
    assert f" -h {SENTINELS[1]} " in ran.calls[ran.index("SENTINEL FAILOVER")], (
        "the first sentinel that answers and names this primary is asked")
    assert not ran.made("CLIENT UNPAUSE"), "held writes must never reach a demoted primary"
    assert f"2 sentinels name {OTHER}:6379" in ran.log
    polled = [c for c in ran.calls[ran.index("SENTINEL FAILOVER"):] if f"-h {SENTINELS[2]} " in c and "get-master" in c]
    assert len(polled) == 3, "until a quorum names the promoted replica"
    assert ran.seconds < 3


def test_the_hook_waits_for_the_replicas_to_have_every_write_before_the_failover(tmp_path: Path) -> None:
    # The primary's INFO shows the replica's last acknowledgement (once a second), behind; the
    # replica itself reaches the primary's offset on the third question.
    ran = _run(tmp_path, Scenario(info=_info("master", [(OTHER, 900)]), replica=(950, 990, 1000)))
    asked = [i for i, call in enumerate(ran.calls) if f"-h {OTHER} " in call and "INFO replication" in call]
    assert len(asked) == 3
    assert ran.index("CLIENT PAUSE") < asked[0] and asked[-1] < ran.index("SENTINEL FAILOVER")


@pytest.mark.parametrize(("scenario", "why"), [
    (Scenario(failover="NOGOODSLAVE No suitable replica to promote", named_after=None), "refused SENTINEL FAILOVER"),
    (Scenario(named_after=None, flags_after="master"), "still names this primary"),
])
def test_the_hook_resumes_writes_when_the_switchover_does_not_happen(tmp_path: Path, scenario: Scenario,
                                                                     why: str) -> None:
    ran = _run(tmp_path, scenario)
    assert ran.index("CLIENT PAUSE") < ran.index("CLIENT UNPAUSE")
    assert why in ran.log
    assert ran.seconds < 3
