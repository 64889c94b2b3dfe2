"""The provisioned session store's builders: what each object says, for each mode, and that no
password leaks out of a Secret."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.resources import sessionstore
from spillway.resources.meta import Owner, owner_reference, selector_labels
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="0b5e2c1a-uid")
PASSWORD = "s3cr3t-from-the-reconcile-0123456789"
APP_SELECTOR = {"app.kubernetes.io/instance": "checkout", "app.kubernetes.io/component": "app"}
KUBERNETES_VERSION = "1.36.0"
ROLE = "spillway.io/redis-role"


def _spec(**redis: Any) -> ScalableServiceSpec:
    return parse_spec(minimal_spec(sessionStore={"type": "Redis", "redis": redis}))


def _build(**redis: Any) -> list[dict[str, Any]]:
    return sessionstore.build(OWNER, _spec(**redis), PASSWORD, APP_SELECTOR)


def _base(kind: str, name: str) -> str:
    """A content-named ConfigMap's name without its digest."""
    return re.sub(r"-[0-9a-f]{10}$", "", name) if kind == "ConfigMap" else name


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and _base(kind, o["metadata"]["name"]) == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _find(objects, "StatefulSet", name)["spec"]["template"]["spec"]
    return spec


def _conf(objects: list[dict[str, Any]]) -> list[str]:
    text: str = _find(objects, "ConfigMap", "checkout-redis")["data"]["redis.conf"]
    return text.splitlines()


@pytest.mark.parametrize(("mode", "expected"), [
    ("Standalone", [("Secret", "checkout-redis"), ("Secret", "checkout-redis-connection"),
                    ("ConfigMap", "checkout-redis"), ("Service", "checkout-redis"),
                    ("Service", "checkout-redis-primary"), ("StatefulSet", "checkout-redis"),
                    ("PodDisruptionBudget", "checkout-redis"), ("NetworkPolicy", "checkout-redis")]),
    ("Sentinel", [("Secret", "checkout-redis"), ("Secret", "checkout-redis-connection"),
                  ("ConfigMap", "checkout-redis"), ("ConfigMap", "checkout-sentinel"), ("Service", "checkout-redis"),
                  ("Service", "checkout-redis-primary"), ("StatefulSet", "checkout-redis"),
                  ("PodDisruptionBudget", "checkout-redis"), ("NetworkPolicy", "checkout-redis"),
                  ("Service", "checkout-sentinel"), ("StatefulSet", "checkout-sentinel"),
                  ("PodDisruptionBudget", "checkout-sentinel"), ("NetworkPolicy", "checkout-sentinel")]),
])
def test_objects_of_each_mode_and_sentinels_only_in_sentinel_mode(mode: str, expected: list[tuple[str, str]]) -> None:
    objects = _build(mode=mode)
    assert [(o["kind"], _base(o["kind"], o["metadata"]["name"])) for o in objects] == expected
    configs = [o for o in objects if o["kind"] == "ConfigMap"]
    assert all(c["immutable"] is True for c in configs)
    assert set(_find(objects, "ConfigMap", "checkout-redis")["data"]) == (
        {"redis.conf", "start-redis.sh", "stop-redis.sh"} if mode == "Sentinel" else {"redis.conf", "start-redis.sh"})
    if mode == "Sentinel":
        assert set(_find(objects, "ConfigMap", "checkout-sentinel")["data"]) == {
            "sentinel.conf", "sentinel-master.conf", "start-sentinel.sh"}
    for component in ("redis", "sentinel") if mode == "Sentinel" else ("redis",):
        mounted = _find(objects, "StatefulSet", f"checkout-{component}")["spec"]["template"]["spec"]["volumes"]
        config = _find(objects, "ConfigMap", f"checkout-{component}")
        assert {"name": "config", "configMap": {"name": config["metadata"]["name"], "defaultMode": 0o444}} in mounted
        assert config["metadata"]["labels"]["app.kubernetes.io/component"] == component


@pytest.mark.parametrize(("redis", "replicas"), [({"mode": "Standalone", "replicas": 5}, 1),
                                                 ({"mode": "Sentinel"}, 3), ({"mode": "Sentinel", "replicas": 1}, 2)])
def test_redis_statefulset_runs_a_primary_plus_replicas_in_sentinel_mode(redis: dict[str, Any], replicas: int) -> None:
    objects = _build(**redis)
    assert _find(objects, "StatefulSet", "checkout-redis")["spec"]["replicas"] == replicas
    if redis["mode"] == "Sentinel":
        sentinels = _find(objects, "StatefulSet", "checkout-sentinel")["spec"]
        assert (sentinels["replicas"], sentinels["podManagementPolicy"]) == (3, "Parallel")


def test_acl_turns_default_off_and_limits_each_user() -> None:
    acl = sessionstore.acl_file(OWNER, PASSWORD).splitlines()
    hashes = {u: "#" + hashlib.sha256(sessionstore.user_password(PASSWORD, u).encode()).hexdigest()
              for u in sessionstore.USERS}
    assert acl == [
        "user default off resetpass resetkeys resetchannels -@all",
        f"user app on {hashes['app']} resetkeys ~spring:session:* ~checkout:* resetchannels "
        "&__keyevent@*__:expired &__keyevent@*__:del &spring:session:* &spring:session:event:0:created:* "
        "&checkout:* +@all -@dangerous +info -@scripting +eval +evalsha +eval_ro +evalsha_ro +script|load "
        "+script|exists",
        f"user exporter on {hashes['exporter']} resetkeys resetchannels -@all +ping +info +client|setname",
        f"user admin on {hashes['admin']} ~* &* +@all",
    ]


def test_each_user_has_its_own_password_derived_from_the_generated_one() -> None:
    passwords = {u: sessionstore.user_password(PASSWORD, u) for u in sessionstore.USERS}
    assert len(set(passwords.values())) == 3
    assert all(len(p) == 64 and int(p, 16) >= 0 for p in passwords.values())
    assert sessionstore.user_password(PASSWORD, "app") == sessionstore.user_password(PASSWORD, "app")


@pytest.mark.parametrize(("redis", "lines"), [
    ({}, ["appendonly yes", "appendfsync everysec", "save 3600 1 300 100 60 10000", "maxmemory 268435456",
          "maxmemory-policy volatile-lru", "notify-keyspace-events Egx", "port 6379", "protected-mode no",
          "enable-debug-command no", "client-output-buffer-limit replica 67108864 33554432 60"]),
    ({"persistence": {"appendOnly": False, "fsync": "always"}, "maxMemory": "1Gi", "evictionPolicy": "allkeys-lfu"},
     ["appendonly no", "appendfsync always", "maxmemory 1073741824", "maxmemory-policy allkeys-lfu"]),
    ({"mode": "Standalone", "maxMemory": "64Mi"},
     ["maxmemory 67108864", "client-output-buffer-limit replica 33554432 16777216 60"]),
    ({"mode": "Sentinel", "replicas": 10, "maxMemory": "64Mi"},
     ["client-output-buffer-limit replica 8388608 4194304 60"]),
])
def test_redis_conf_lines_follow_the_spec(redis: dict[str, Any], lines: list[str]) -> None:
    conf = _conf(_build(**redis))
    for line in lines:
        assert line in conf


def test_redis_conf_names_no_path_or_password_the_script_adds() -> None:
    conf = _conf(_build())
    assert not [line for line in conf if line.split(" ")[0] in ("dir", "aclfile", "masterauth", "requirepass")]


@pytest.mark.parametrize(("max_memory", "limit"), [("256Mi", "704Mi"), ("1Gi", "2624Mi"), ("100M", "303Mi")])
def test_memory_limit_leaves_room_for_fork_and_replica_buffers(max_memory: str, limit: str) -> None:
    container = _pod(_build(maxMemory=max_memory), "checkout-redis")["containers"][0]
    assert container["resources"]["limits"]["memory"] == limit
    assert container["resources"]["requests"]["memory"] == limit


def test_too_small_max_memory_and_short_password_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16Mi"):
        _build(maxMemory="0")
    with pytest.raises(ValueError, match="at least 16 characters") as err:
        sessionstore.build(OWNER, _spec(), "short", APP_SELECTOR)
    assert "short" not in str(err.value).replace("at least", "")


def test_sentinel_conf_resolves_and_announces_hostnames() -> None:
    data = _find(_build(mode="Sentinel"), "ConfigMap", "checkout-sentinel")["data"]
    assert data["sentinel.conf"].splitlines()[1:] == [
        "port 26379", "protected-mode no", "sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
        "sentinel deny-scripts-reconfig yes"]
    assert data["sentinel-master.conf"].splitlines() == [
        "sentinel down-after-milliseconds checkout 5000", "sentinel failover-timeout checkout 10000",
        "sentinel parallel-syncs checkout 1"]


def test_sentinel_users_turn_the_default_off_and_let_the_app_read_the_topology_only() -> None:
    lines = sessionstore.sentinel_users(PASSWORD).splitlines()
    assert lines[0] == "user default off resetpass resetkeys resetchannels -@all"
    admin = sessionstore.password_hash(sessionstore.user_password(PASSWORD, "admin"))
    assert lines[1] == f"user admin on #{admin} ~* &* +@all"
    app = lines[2].split()
    assert app[:3] == ["user", "app", "on"] and "-@all" in app
    assert app[3] == "#" + sessionstore.password_hash(sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP))
    granted = {rule for rule in app if rule.startswith("+")}
    assert not {r for r in granted if r.startswith("+@") or r in ("+sentinel", "+publish", "+acl", "+config")}
    assert {r.split("|")[1] for r in granted if r.startswith("+sentinel|")} == {
        "get-master-addr-by-name", "master", "masters", "replicas", "slaves", "sentinels"}


def test_the_apps_sentinel_credentials_are_its_own_and_outlive_a_rotation() -> None:
    spec = parse_spec(minimal_spec(sessionStore={"type": "Redis"}))
    before = sessionstore.secret_text(sessionstore.connection_secret(OWNER, spec, PASSWORD))
    after = sessionstore.secret_text(sessionstore.connection_secret(
        OWNER, spec, PASSWORD, sessionstore.Rotation("token-2", "")))
    assert before["sentinel-username"] == "app"
    assert before["sentinel-password"] == sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP)
    assert before["sentinel-password"] != before["password"]
    assert after["password"] != before["password"] and after["sentinel-password"] == before["sentinel-password"]
    standalone = sessionstore.secret_text(sessionstore.connection_secret(
        OWNER, parse_spec(minimal_spec(sessionStore={"type": "Redis", "redis": {"mode": "Standalone"}})), PASSWORD))
    assert "sentinel-password" not in standalone


def test_server_secret_carries_admin_auth_for_replication_and_sentinels() -> None:
    data = sessionstore.secret_text(_find(_build(mode="Sentinel"), "Secret", "checkout-redis"))
    admin = sessionstore.user_password(PASSWORD, "admin")
    assert data["redis-auth.conf"] == f"masteruser admin\nmasterauth {admin}\n"
    assert data["sentinel-auth.conf"].endswith(
        f"sentinel sentinel-user admin\nsentinel sentinel-pass {admin}\n"
        f"sentinel auth-user checkout admin\nsentinel auth-pass checkout {admin}\n")
    assert data["sentinel-auth.conf"].startswith(sessionstore.sentinel_users(PASSWORD))
    assert data["exporter-password"] == sessionstore.user_password(PASSWORD, "exporter")


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_no_password_outside_a_secret_and_none_in_the_acl_file(mode: str) -> None:
    objects = _build(mode=mode)
    secrets = [PASSWORD, *(sessionstore.user_password(PASSWORD, u) for u in (*sessionstore.USERS, sessionstore.SENTINEL_APP))]
    for obj in objects:
        text = json.dumps(obj)
        if obj["kind"] != "Secret":
            assert not [s for s in secrets if s in text], f"{obj['kind']} {obj['metadata']['name']}"
    plain = json.dumps([sessionstore.secret_text(o) for o in objects if o["kind"] == "Secret"])
    assert PASSWORD not in plain, "the generated password is only in its own Secret, which no pod mounts"
    acl = sessionstore.secret_text(_find(objects, "Secret", "checkout-redis"))["users.acl"]
    assert not [s for s in secrets if s in acl]
    connection = json.dumps(sessionstore.secret_text(_find(objects, "Secret", "checkout-redis-connection")))
    app = sessionstore.user_password(PASSWORD, "app")
    own = {app, sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP)} if mode == "Sentinel" else {app}
    assert app in connection
    assert not [s for s in secrets if s not in own and s in connection], "the app gets only its own passwords"
    server = sessionstore.secret_text(_find(objects, "Secret", "checkout-redis"))
    assert sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP) not in json.dumps(server), (
        "the sentinels hold the app's sentinel password as a hash only")


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_pods_meet_the_restricted_profile_with_a_read_only_root(mode: str) -> None:
    objects = _build(mode=mode)
    for name in ["checkout-redis"] + (["checkout-sentinel"] if mode == "Sentinel" else []):
        pod = _pod(objects, name)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert "hostNetwork" not in pod and "hostPID" not in pod
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
            assert "ports" in container and all(p["containerPort"] > 1024 for p in container["ports"])
            writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            assert sessionstore.RUN_DIR in writable
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= {"configMap", "secret", "emptyDir", "persistentVolumeClaim"}
        run = next(v for v in pod["volumes"] if v["name"] == "run")
        assert run["emptyDir"]["medium"] == "Memory", "rendered configs hold a password: never on disk"


def test_each_container_starts_from_its_script_in_the_config_map() -> None:
    objects = _build(mode="Sentinel")
    redis = _pod(objects, "checkout-redis")["containers"][0]
    sentinel = _pod(objects, "checkout-sentinel")["containers"][0]
    assert redis["command"] == ["sh", "/etc/spillway/config/start-redis.sh"]
    assert sentinel["command"] == ["sh", "/etc/spillway/config/start-sentinel.sh"]
    assert redis["image"] == sentinel["image"] == "docker.io/library/redis:8.2"
    env = {e["name"]: e.get("value") for e in redis["env"]}
    assert env["SPILLWAY_SELF"] == "$(POD_NAME).checkout-redis.shop.svc"
    assert env["SPILLWAY_SEED"] == "checkout-redis-0.checkout-redis.shop.svc"
    assert env["SPILLWAY_SENTINELS"] == " ".join(f"checkout-sentinel-{i}.checkout-sentinel.shop.svc" for i in range(3))
    assert {e["name"]: e.get("value") for e in sentinel["env"]}["SPILLWAY_SELF"] == (
        "$(POD_NAME).checkout-sentinel.shop.svc")
    assert {e["name"]: e.get("valueFrom") for e in redis["env"]}["SPILLWAY_EXPORTER_PASSWORD"] == {
        "secretKeyRef": {"name": "checkout-redis", "key": "exporter-password"}}


@pytest.mark.parametrize(("persistence", "claim"), [
    ({}, {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
    ({"size": "5Gi", "storageClassName": "fast"},
     {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "fast"}),
    ({"size": "0"}, None),
])
def test_data_lives_on_a_claim_when_persistence_has_a_size(persistence: dict[str, Any],
                                                          claim: dict[str, Any] | None) -> None:
    statefulset = _find(_build(persistence=persistence), "StatefulSet", "checkout-redis")["spec"]
    volumes = {v["name"]: v for v in statefulset["template"]["spec"]["volumes"]}
    if claim is None:
        assert "volumeClaimTemplates" not in statefulset
        assert volumes["data"] == {"name": "data", "emptyDir": {}}
    else:
        assert [t["spec"] for t in statefulset["volumeClaimTemplates"]] == [claim]
        assert statefulset["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        assert "data" not in volumes


@pytest.mark.parametrize(("mode", "template_role"), [("Standalone", "primary"), ("Sentinel", None)])
def test_write_service_selects_the_pod_labelled_primary(mode: str, template_role: str | None) -> None:
    objects = _build(mode=mode)
    service = _find(objects, "Service", "checkout-redis-primary")["spec"]
    assert service["selector"] == {**selector_labels(OWNER, "redis"), ROLE: "primary"}
    assert service["ports"] == [{"name": "redis", "protocol": "TCP", "port": 6379, "targetPort": "redis"}]
    labels = _find(objects, "StatefulSet", "checkout-redis")["spec"]["template"]["metadata"]["labels"]
    assert labels.get(ROLE) == template_role, "in Sentinel mode the reconcile moves the label"
    headless = _find(objects, "Service", "checkout-redis")["spec"]
    assert (headless["clusterIP"], headless["publishNotReadyAddresses"]) == ("None", True)


@pytest.mark.parametrize(("mode", "name", "port", "peers"), [
    ("Standalone", "checkout-redis", 6379, ["app", "redis"]),
    ("Sentinel", "checkout-redis", 6379, ["app", "redis", "sentinel"]),
    ("Sentinel", "checkout-sentinel", 26379, ["app", "redis", "sentinel"]),
])
def test_network_policy_admits_only_app_redis_and_sentinel_pods(mode: str, name: str, port: int,
                                                                peers: list[str]) -> None:
    policy = _find(_build(mode=mode), "NetworkPolicy", name)["spec"]
    component = name.removeprefix("checkout-")
    assert policy["podSelector"] == {"matchLabels": selector_labels(OWNER, component)}
    assert policy["policyTypes"] == ["Ingress"]
    selectors = {"app": APP_SELECTOR, "redis": selector_labels(OWNER, "redis"),
                 "sentinel": selector_labels(OWNER, "sentinel")}
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": selectors[p]}} for p in peers],
                                  "ports": [{"protocol": "TCP", "port": port}]}]


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_disruption_budgets_and_anti_affinity_spread_the_pods(mode: str) -> None:
    objects = _build(mode=mode)
    for component in ["redis"] + (["sentinel"] if mode == "Sentinel" else []):
        name = f"checkout-{component}"
        assert _find(objects, "PodDisruptionBudget", name)["spec"] == {
            "selector": {"matchLabels": selector_labels(OWNER, component)}, "maxUnavailable": 1}
        term = _pod(objects, name)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term[0]["podAffinityTerm"]["labelSelector"] == {"matchLabels": selector_labels(OWNER, component)}


def _refs(env: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    refs = {}
    for entry in env:
        assert set(entry) == {"name", "valueFrom"}, "no value ever sits in the env"
        ref = entry["valueFrom"]["secretKeyRef"]
        refs[entry["name"]] = (ref["name"], ref["key"])
    return refs


COMMON = {"REDIS_URL": "url", "REDIS_HOST": "host", "REDIS_PORT": "port", "REDIS_USERNAME": "username",
          "REDIS_PASSWORD": "password", "SPRING_DATA_REDIS_URL": "url"}
SENTINEL_ENV = {"SPRING_DATA_REDIS_SENTINEL_MASTER": "sentinel-master",
                "SPRING_DATA_REDIS_SENTINEL_NODES": "sentinel-nodes",
                "SPRING_DATA_REDIS_SENTINEL_USERNAME": "sentinel-username",
                "SPRING_DATA_REDIS_SENTINEL_PASSWORD": "sentinel-password"}


@pytest.mark.parametrize(("store", "expected"), [
    ({"type": "Redis", "redis": {"mode": "Standalone"}}, {"SESSION_STORE_URL": "url", **COMMON}),
    ({"type": "Redis"}, {"SESSION_STORE_URL": "url", **COMMON, **SENTINEL_ENV}),
    ({"type": "Redis", "env": "REDIS_URL", "redis": {"mode": "Standalone"}}, COMMON),
    ({"type": "Redis", "env": "SESSIONS", "redis": {"mode": "Standalone"}}, {"SESSIONS": "url", **COMMON}),
])
def test_app_env_comes_from_the_connection_secret(store: dict[str, Any], expected: dict[str, str]) -> None:
    env = sessionstore.app_env(OWNER, parse_spec(minimal_spec(sessionStore=store)))
    assert _refs(env) == {name: ("checkout-redis-connection", key) for name, key in expected.items()}
    assert list(_refs(env))[0] == next(iter(expected)), "sessionStore.env first"


def test_app_env_of_an_external_store_and_of_none() -> None:
    external = {"type": "External", "external": {"urlSecretRef": {"name": "sessions", "key": "url"}}}
    assert _refs(sessionstore.app_env(OWNER, parse_spec(minimal_spec(sessionStore=external)))) == {
        "SESSION_STORE_URL": ("sessions", "url")}
    assert sessionstore.app_env(OWNER, parse_spec(minimal_spec())) == []


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_connection_secret_holds_every_key_app_env_names(mode: str) -> None:
    spec = _spec(mode=mode)
    data = sessionstore.secret_text(_find(_build(mode=mode), "Secret", "checkout-redis-connection"))
    assert {key for _, key in _refs(sessionstore.app_env(OWNER, spec)).values()} == set(data)
    app = sessionstore.user_password(PASSWORD, "app")
    host = "checkout-redis-primary.shop.svc"
    assert data["url"] == f"redis://app:{app}@{host}:6379/0"
    assert (data["host"], data["port"], data["username"], data["password"]) == (host, "6379", "app", app)
    if mode == "Sentinel":
        assert data["sentinel-master"] == "checkout"
        assert data["sentinel-nodes"] == ",".join(
            f"checkout-sentinel-{i}.checkout-sentinel.shop.svc:26379" for i in range(3))
        assert (data["sentinel-username"], data["sentinel-password"]) == (
            "app", sessionstore.user_password(PASSWORD, sessionstore.SENTINEL_APP))


@pytest.mark.parametrize(("args", "expected"), [
    (("h", 6379, "app", "p@ss/w:rd"), {"url": "redis://app:p%40ss%2Fw%3Ard@h:6379/0", "host": "h", "port": "6379",
                                       "username": "app", "password": "p@ss/w:rd"}),
    (("h", 1, "u", "p", "m", ["s-0:26379", "s-1:26379"], "q"),
     {"url": "redis://u:p@h:1/0", "host": "h", "port": "1", "username": "u", "password": "p",
      "sentinel-master": "m", "sentinel-nodes": "s-0:26379,s-1:26379", "sentinel-username": "app",
      "sentinel-password": "q"}),
])
def test_connection_secret_data(args: tuple[Any, ...], expected: dict[str, str]) -> None:
    assert sessionstore.connection_secret_data(*args) == expected


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_every_object_is_one_kubernetes_accepts(mode: str) -> None:
    for obj in _build(mode=mode):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


names = st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
redis_specs = st.fixed_dictionaries({
    "mode": st.sampled_from(["Standalone", "Sentinel"]),
    "replicas": st.integers(1, 10),
    "maxMemory": st.sampled_from(["16Mi", "64Mi", "256Mi", "1Gi", "500M"]),
    "evictionPolicy": st.sampled_from(["noeviction", "volatile-lru", "allkeys-lfu", "volatile-ttl"]),
    "persistence": st.fixed_dictionaries({
        "appendOnly": st.booleans(), "fsync": st.sampled_from(["always", "everysec", "no"]),
        "size": st.sampled_from(["0", "1Gi", "20Gi"]),
        "storageClassName": st.one_of(st.none(), names)}),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names, names, redis_specs, st.text(min_size=16, max_size=64))
def test_every_object_carries_the_owner_reference_and_namespace(name: str, namespace: str, redis: dict[str, Any],
                                                               password: str) -> None:
    if redis["persistence"]["storageClassName"] is None:
        del redis["persistence"]["storageClassName"]
    owner = Owner(name=name, namespace=namespace, uid="uid-1")
    spec = parse_spec(minimal_spec(sessionStore={"type": "Redis", "redis": redis}))
    objects = sessionstore.build(owner, spec, password, APP_SELECTOR)
    assert objects
    for obj in objects:
        assert obj["metadata"]["namespace"] == namespace
        assert obj["metadata"]["ownerReferences"] == [owner_reference(owner)]
        assert len(obj["metadata"]["name"]) <= (52 if obj["kind"] == "StatefulSet" else 63)
