"""The provisioned session store (`sessionStore.type: Redis`): Redis in Standalone or Sentinel
mode, as plain dicts ready for server-side apply. Pure: no I/O, no randomness — the reconcile
generates the password once and passes it in; a builder never makes one up.

What is built, for a ScalableService `<name>`:
- Secret `<name>-redis` (the servers' own): the ACL file and the two snippets that carry the
  admin password (`masteruser`/`masterauth`, `sentinel auth-user`/`auth-pass`), plus the
  admin's and the exporter's passwords. Secret `<name>-redis-connection` (the app's): only the
  app user's URL, host, port, name and password, and in Sentinel mode the master's name and the
  sentinels' addresses. `app_env` turns it into the app containers' env (secretKeyRefs only).
- ConfigMap `<name>-redis`: redis.conf, the start scripts, and in Sentinel mode sentinel.conf.
  It never holds a password: each container's command renders its running config into an
  in-memory emptyDir (`/run/spillway`) from the ConfigMap and the mounted Secret, then execs the
  server; the same emptyDir is where redis-sentinel REWRITES its config and Redis runs CONFIG
  REWRITE after a failover (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/).
- StatefulSet `<name>-redis` (1 pod, or in Sentinel mode a primary plus `replicas` replicas),
  headless Service `<name>-redis`, write Service `<name>-redis-primary` selecting
  `spillway.io/redis-role: primary` (static on the Standalone pod; in Sentinel mode the reconcile
  moves the label to the pod the sentinels name), PDB and NetworkPolicy `<name>-redis`; in
  Sentinel mode also StatefulSet, headless Service, PDB and NetworkPolicy `<name>-sentinel`
  (3 sentinels, quorum 2, so failover needs a majority).

Decisions:
- One generated password, several users: each user's password is HMAC-SHA256(password, user
  name) in hex, so the app's password never opens the admin or exporter users, every password is
  safe unquoted in a config file, and the ACL file holds only SHA-256 hashes (`#<hash>`).
- ACL (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/): `default`
  is off with no password. `app` may touch keys under Spring Session's default namespace
  `spring:session:*` and under `<name>:*` (its own keys, or a custom Spring Session namespace);
  commands `+@all -@dangerous` (no FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN, MODULE, ACL,
  REPLICAOF/SLAVEOF, MIGRATE, MONITOR, SORT, RESTORE, CLIENT KILL/LIST, SAVE, ...) plus `+info`
  (Spring Boot's Redis health indicator runs INFO); scripts may run (every key they touch is
  still checked) but not be flushed, killed, debugged or loaded as functions. Channels: the key
  events Spring Session subscribes to and `spring:session:*`; PSUBSCRIBE is checked literally,
  so Spring Session's pattern for database 0 is listed as is. `exporter`: PING and INFO only, no
  key. `admin`: everything, for replication (`masteruser`) and the sentinels (`auth-user`).
- redis.conf: AOF as spec'd (`appendonly`, `appendfsync`, everysec by default) plus the default
  RDB snapshots; `maxmemory` is spec.maxMemory and the container's memory limit is 2.5 times it
  plus 64Mi: a fork for a snapshot or an AOF rewrite can copy every page in the worst case, and
  replica output buffers (not counted in maxmemory) are capped at half of it in all
  (https://redis.io/docs/latest/operate/oss_and_stack/management/admin/,
  https://redis.io/docs/latest/develop/reference/eviction/). `notify-keyspace-events Egx`:
  what Spring Session sets itself, so the app runs with `configure-action=none` and never needs
  CONFIG (https://redis.io/docs/latest/integrate/spring-framework-cache/session/,
  https://redis.io/docs/latest/develop/pubsub/keyspace-notifications/).
- A data volume claim per pod when persistence.size is above zero, an emptyDir otherwise; with an
  emptyDir a recreated primary starts empty, so Sentinel mode wants a size.
- Sentinels announce and resolve hostnames (pod DNS names of the headless Services), so a
  rescheduled pod keeps its identity. A starting Redis asks the sentinels who the primary is and
  follows it, else pod 0 is the primary; a starting sentinel asks its peers, else monitors pod 0.
  Sentinels have no password (protected-mode off): the NetworkPolicy admits only the app's, the
  Redis and the sentinel pods.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
from typing import Any
from urllib.parse import quote

from spillway import GROUP
from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import parse_quantity
from spillway.resources.meta import Owner, child_name, labels, metadata, selector_labels

REDIS = "redis"
SENTINEL = "sentinel"
ROLE_LABEL = f"{GROUP}/redis-role"
PRIMARY = "primary"
CHECKSUM = f"{GROUP}/config-checksum"
REDIS_PORT = 6379
SENTINEL_PORT = 26379
SENTINELS = 3
QUORUM = 2
UID = 999  # the official image's redis user
CONFIG_DIR = "/etc/spillway/config"
SECRET_DIR = "/etc/spillway/secret"
RUN_DIR = "/run/spillway"
DATA_DIR = "/data"
USERS = ("app", "exporter", "admin")
MIB = 2**20
MIN_MAX_MEMORY = 16 * MIB
# Spring Session's RedisIndexedSessionRepository: SUBSCRIBE __keyevent@<db>__:del|expired and
# PSUBSCRIBE <namespace>event:<db>:created:* (the namespace defaults to `spring:session:`).
SPRING_CHANNELS = ("__keyevent@*__:expired", "__keyevent@*__:del", "spring:session:*",
                   "spring:session:event:0:created:*")
ENV_KEYS = (("REDIS_URL", "url"), ("REDIS_HOST", "host"), ("REDIS_PORT", "port"), ("REDIS_USERNAME", "username"),
            ("REDIS_PASSWORD", "password"), ("SPRING_DATA_REDIS_URL", "url"))
SENTINEL_ENV_KEYS = (("SPRING_DATA_REDIS_SENTINEL_MASTER", "sentinel-master"),
                     ("SPRING_DATA_REDIS_SENTINEL_NODES", "sentinel-nodes"))

# Both scripts read everything variable from the environment, so the ConfigMap is the same for
# every pod and the integration test runs them unchanged on loopback.
_ASK_SENTINELS = """primary=""
for sentinel in $SPILLWAY_SENTINELS; do
  [ "$sentinel" = "$SPILLWAY_SELF" ] && continue
  answer=$(timeout 3 redis-cli -h "$sentinel" -p "$SPILLWAY_SENTINEL_PORT" --raw \\
    SENTINEL get-master-addr-by-name "$SPILLWAY_MASTER" 2>/dev/null | head -n 1) || answer=""
  case "$answer" in *" "*|"") ;; *) primary="$answer"; break ;; esac
done
primary="${primary:-$SPILLWAY_SEED}"
"""
START_REDIS = f"""#!/bin/sh
# Renders the running redis.conf (ConfigMap + Secret) into the in-memory run dir, then starts Redis.
set -eu
umask 077
run="$SPILLWAY_RUN/redis.conf"
cat "$SPILLWAY_CONFIG/redis.conf" "$SPILLWAY_SECRET/redis-auth.conf" > "$run"
printf 'dir %s\naclfile %s/users.acl\n' "$SPILLWAY_DATA" "$SPILLWAY_SECRET" >> "$run"
if [ "$SPILLWAY_MODE" = Sentinel ]; then
{_ASK_SENTINELS}  printf 'replica-announce-ip %s\\n' "$SPILLWAY_SELF" >> "$run"
  [ "$primary" = "$SPILLWAY_SELF" ] || printf 'replicaof %s %s\\n' "$primary" "$SPILLWAY_REDIS_PORT" >> "$run"
fi
exec redis-server "$run" "$@"
"""
START_SENTINEL = f"""#!/bin/sh
# Renders sentinel.conf once per pod (redis-sentinel rewrites it afterwards), then starts it.
set -eu
umask 077
run="$SPILLWAY_RUN/sentinel.conf"
if [ ! -s "$run" ]; then
{_ASK_SENTINELS}  {{
    cat "$SPILLWAY_CONFIG/sentinel.conf"
    printf 'dir %s\n' "$SPILLWAY_RUN"
    printf 'sentinel announce-ip %s\\n' "$SPILLWAY_SELF"
    printf 'sentinel monitor %s %s %s %s\\n' "$SPILLWAY_MASTER" "$primary" "$SPILLWAY_REDIS_PORT" "$SPILLWAY_QUORUM"
    cat "$SPILLWAY_CONFIG/sentinel-master.conf" "$SPILLWAY_SECRET/sentinel-auth.conf"
  }} > "$run.new"
  mv "$run.new" "$run"
fi
exec redis-server "$run" --sentinel "$@"
"""
# Ready: answers PING and, on a replica, is linked to its primary.
READY_REDIS = ('out=$(REDISCLI_AUTH="$SPILLWAY_EXPORTER_PASSWORD" redis-cli --no-auth-warning --user exporter '
               f'-p {REDIS_PORT} INFO replication) && case "$out" in *role:master*) ;; '
               '*master_link_status:up*) ;; *) exit 1 ;; esac')


def user_password(password: str, user: str) -> str:
    """The password of one Redis user, derived from the generated one (hex, 64 characters)."""
    return hmac.new(password.encode(), user.encode(), hashlib.sha256).hexdigest()


def _component_name(owner: Owner, component: str) -> str:
    # A StatefulSet's name leaves room for the 11 characters its controller-revision-hash label adds.
    return child_name(owner, component, limit=52)


def redis_name(owner: Owner) -> str:
    return _component_name(owner, REDIS)


def sentinel_name(owner: Owner) -> str:
    return _component_name(owner, SENTINEL)


def primary_name(owner: Owner) -> str:
    return child_name(owner, "redis-primary")


def connection_name(owner: Owner) -> str:
    return child_name(owner, "redis-connection")


def master_name(owner: Owner) -> str:
    return owner.name


def _sentinel_mode(spec: ScalableServiceSpec) -> bool:
    return spec.session_store.redis.mode == "Sentinel"


def _pod_host(owner: Owner, statefulset: str, ordinal: int) -> str:
    return f"{statefulset}-{ordinal}.{statefulset}.{owner.namespace}.svc"


def sentinel_nodes(owner: Owner) -> list[str]:
    return [f"{_pod_host(owner, sentinel_name(owner), i)}:{SENTINEL_PORT}" for i in range(SENTINELS)]


def max_memory_bytes(spec: ScalableServiceSpec) -> int:
    value = parse_quantity(spec.session_store.redis.max_memory)
    if value < MIN_MAX_MEMORY:
        raise ValueError("sessionStore.redis.maxMemory must be at least 16Mi (0 would mean no limit in Redis)")
    return value


def memory_limit(spec: ScalableServiceSpec) -> str:
    """The Redis container's memory limit (and request): 2.5 x maxmemory + 64Mi, in Mi."""
    return f"{math.ceil((max_memory_bytes(spec) * 5 // 2 + 64 * MIB) / MIB)}Mi"


# --- files ----------------------------------------------------------------------------------


def acl_file(owner: Owner, password: str) -> str:
    def hashed(user: str) -> str:
        return "#" + hashlib.sha256(user_password(password, user).encode()).hexdigest()

    channels = " ".join(f"&{c}" for c in (*SPRING_CHANNELS, f"{owner.name}:*"))
    return "\n".join([
        "user default off resetpass resetkeys resetchannels -@all",
        f"user app on {hashed('app')} resetkeys ~spring:session:* ~{owner.name}:* resetchannels {channels} "
        "+@all -@dangerous +info -@scripting +eval +evalsha +eval_ro +evalsha_ro +script|load +script|exists",
        f"user exporter on {hashed('exporter')} resetkeys resetchannels -@all +ping +info +client|setname",
        f"user admin on {hashed('admin')} ~* &* +@all",
    ]) + "\n"


def redis_conf(spec: ScalableServiceSpec) -> str:
    store = spec.session_store.redis
    persistence = store.persistence
    max_memory = max_memory_bytes(spec)
    replicas = store.replicas if _sentinel_mode(spec) else 1
    buffer_hard = max(8 * MIB, max_memory // (2 * replicas))
    return "\n".join([
        "# Rendered by Spillway. At start, the script appends dir, aclfile and the replication auth (from the Secret).",
        f"port {REDIS_PORT}",
        "bind * -::*",
        # The default user is off and has no password: protected mode has nothing to protect.
        "protected-mode no",
        'logfile ""',
        f"appendonly {'yes' if persistence.append_only else 'no'}",
        f"appendfsync {persistence.fsync}",
        "save 3600 1 300 100 60 10000",
        f"maxmemory {max_memory}",
        f"maxmemory-policy {store.eviction_policy}",
        f"client-output-buffer-limit replica {buffer_hard} {buffer_hard // 2} 60",
        "notify-keyspace-events Egx",
        # Redis 7's defaults, stated: DEBUG and MODULE are off for every user, admin included.
        "enable-debug-command no",
        "enable-module-command no",
        "replica-read-only yes",
        "tcp-keepalive 60",
    ]) + "\n"


def sentinel_conf() -> str:
    return "\n".join([
        "# Rendered by Spillway. At start, the script appends dir, announce-ip, monitor and auth lines (from the Secret).",
        f"port {SENTINEL_PORT}",
        "protected-mode no",
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        "sentinel deny-scripts-reconfig yes",
    ]) + "\n"


def sentinel_master_conf(owner: Owner) -> str:
    master = master_name(owner)
    return (f"sentinel down-after-milliseconds {master} 5000\n"
            f"sentinel failover-timeout {master} 60000\n"
            f"sentinel parallel-syncs {master} 1\n")


# --- secrets and env ------------------------------------------------------------------------


def _check(password: str) -> None:
    if len(password) < 16:
        raise ValueError("the session store's generated password must be at least 16 characters")


def server_secret(owner: Owner, password: str) -> dict[str, Any]:
    _check(password)
    admin = user_password(password, "admin")
    master = master_name(owner)
    data = {
        "users.acl": acl_file(owner, password),
        "redis-auth.conf": f"masteruser admin\nmasterauth {admin}\n",
        "sentinel-auth.conf": f"sentinel auth-user {master} admin\nsentinel auth-pass {master} {admin}\n",
        "admin-password": admin,
        "exporter-password": user_password(password, "exporter"),
    }
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(owner, redis_name(owner), REDIS),
            "type": "Opaque", "stringData": data}


def connection_secret_data(host: str, port: int, user: str, password: str, sentinel_master: str | None = None,
                           sentinels: list[str] | None = None) -> dict[str, str]:
    """What the app's connection Secret holds; `app_env` maps its keys to env names."""
    data = {
        "url": f"redis://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/0",
        "host": host, "port": str(port), "username": user, "password": password,
    }
    if sentinel_master is not None:
        data["sentinel-master"] = sentinel_master
        data["sentinel-nodes"] = ",".join(sentinels or [])
    return data


def connection_secret(owner: Owner, spec: ScalableServiceSpec, password: str) -> dict[str, Any]:
    _check(password)
    host = f"{primary_name(owner)}.{owner.namespace}.svc"
    sentinel = _sentinel_mode(spec)
    data = connection_secret_data(host, REDIS_PORT, "app", user_password(password, "app"),
                                  master_name(owner) if sentinel else None, sentinel_nodes(owner) if sentinel else None)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(owner, connection_name(owner), REDIS),
            "type": "Opaque", "stringData": data}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def app_env(owner: Owner, spec: ScalableServiceSpec) -> list[dict[str, Any]]:
    """The env every app container receives: secretKeyRefs only, never a value."""
    store = spec.session_store
    if store.type == "External" and store.external is not None:
        ref = store.external.url_secret_ref
        return [_secret_env(store.env, ref.name, ref.key)]
    if store.type != "Redis":
        return []
    pairs = [(store.env, "url"), *ENV_KEYS, *(SENTINEL_ENV_KEYS if _sentinel_mode(spec) else ())]
    seen: set[str] = set()
    env = []
    for name, key in pairs:
        if name not in seen:
            seen.add(name)
            env.append(_secret_env(name, connection_name(owner), key))
    return env


# --- objects --------------------------------------------------------------------------------


def build(owner: Owner, spec: ScalableServiceSpec, password: str, app_selector: dict[str, str]) -> list[dict[str, Any]]:
    """Every object of the provisioned store, in apply order (Secrets and config first)."""
    sentinel = _sentinel_mode(spec)
    config = config_map(owner, spec)
    objects = [server_secret(owner, password), connection_secret(owner, spec, password), config,
               _headless_service(owner, REDIS, REDIS_PORT), _primary_service(owner),
               _redis_statefulset(owner, spec, config["data"]),
               _pdb(owner, REDIS), _network_policy(owner, REDIS, REDIS_PORT, app_selector, sentinel)]
    if sentinel:
        objects += [_headless_service(owner, SENTINEL, SENTINEL_PORT), _sentinel_statefulset(owner, spec, config["data"]),
                    _pdb(owner, SENTINEL), _network_policy(owner, SENTINEL, SENTINEL_PORT, app_selector, True)]
    return objects


def config_map(owner: Owner, spec: ScalableServiceSpec) -> dict[str, Any]:
    data = {"redis.conf": redis_conf(spec), "start-redis.sh": START_REDIS}
    if _sentinel_mode(spec):
        data.update({"sentinel.conf": sentinel_conf(), "sentinel-master.conf": sentinel_master_conf(owner),
                     "start-sentinel.sh": START_SENTINEL})
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(owner, redis_name(owner), REDIS),
            "data": data}


def _checksum(data: dict[str, str], keys: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join(data[k] for k in keys).encode()).hexdigest()


def _headless_service(owner: Owner, component: str, port: int) -> dict[str, Any]:
    # Not-ready pods resolve too: a replica must find its primary, a sentinel its peers, first.
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, _component_name(owner, component), component),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": selector_labels(owner, component),
                     "ports": [{"name": component, "protocol": "TCP", "port": port, "targetPort": component}]}}


def _primary_service(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, primary_name(owner), REDIS),
            "spec": {"type": "ClusterIP", "selector": {**selector_labels(owner, REDIS), ROLE_LABEL: PRIMARY},
                     "ports": [{"name": REDIS, "protocol": "TCP", "port": REDIS_PORT, "targetPort": REDIS}]}}


def _pdb(owner: Owner, component: str) -> dict[str, Any]:
    # One pod at a time: the sentinels keep their quorum (2 of 3), a primary keeps a replica.
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(owner, _component_name(owner, component), component),
            "spec": {"selector": {"matchLabels": selector_labels(owner, component)}, "maxUnavailable": 1}}


def _network_policy(owner: Owner, component: str, port: int, app_selector: dict[str, str],
                    sentinel: bool) -> dict[str, Any]:
    peers = [app_selector, selector_labels(owner, REDIS)] + ([selector_labels(owner, SENTINEL)] if sentinel else [])
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(owner, _component_name(owner, component), component),
            "spec": {"podSelector": {"matchLabels": selector_labels(owner, component)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": dict(p)}} for p in peers],
                                  "ports": [{"protocol": "TCP", "port": port}]}]}}


_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                       "runAsUser": UID, "runAsGroup": UID, "capabilities": {"drop": ["ALL"]}}


def _env(owner: Owner, spec: ScalableServiceSpec, statefulset: str) -> list[dict[str, Any]]:
    """What the start scripts read: where things are, who this pod is, where to look for peers."""
    values = {
        "SPILLWAY_MODE": spec.session_store.redis.mode, "SPILLWAY_MASTER": master_name(owner),
        "SPILLWAY_CONFIG": CONFIG_DIR, "SPILLWAY_SECRET": SECRET_DIR, "SPILLWAY_RUN": RUN_DIR, "SPILLWAY_DATA": DATA_DIR,
        "SPILLWAY_SELF": f"$(POD_NAME).{statefulset}.{owner.namespace}.svc",
        "SPILLWAY_SEED": _pod_host(owner, redis_name(owner), 0), "SPILLWAY_REDIS_PORT": str(REDIS_PORT),
        "SPILLWAY_SENTINELS": " ".join(_pod_host(owner, sentinel_name(owner), i) for i in range(SENTINELS)),
        "SPILLWAY_SENTINEL_PORT": str(SENTINEL_PORT), "SPILLWAY_QUORUM": str(QUORUM),
    }
    return [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *({"name": k, "value": v} for k, v in values.items())]


def _pod_spec(owner: Owner, component: str, container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": selector_labels(owner, component)},
                                               "topologyKey": "kubernetes.io/hostname"}}]}},
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": redis_name(owner), "defaultMode": 0o444}},
                    {"name": "secret", "secret": {"secretName": redis_name(owner), "defaultMode": 0o440}},
                    # In memory: the rendered configs hold the admin password.
                    {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}, *volumes],
    }


_MOUNTS = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
           {"name": "secret", "mountPath": SECRET_DIR, "readOnly": True},
           {"name": "run", "mountPath": RUN_DIR}]


def _statefulset(owner: Owner, component: str, replicas: int, pod_labels: dict[str, str], checksum: str,
                 pod_spec: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceName": _component_name(owner, component),
        "replicas": replicas,
        # Sentinels start together; Redis pod 0 (the first primary) comes up before its replicas.
        "podManagementPolicy": "Parallel" if component == SENTINEL else "OrderedReady",
        "selector": {"matchLabels": selector_labels(owner, component)},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {"metadata": {"labels": pod_labels, "annotations": {CHECKSUM: checksum}}, "spec": pod_spec},
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": metadata(owner, _component_name(owner, component), component), "spec": spec}


def _redis_statefulset(owner: Owner, spec: ScalableServiceSpec, data: dict[str, str]) -> dict[str, Any]:
    store = spec.session_store.redis
    sentinel = _sentinel_mode(spec)
    persistence = store.persistence
    limit = memory_limit(spec)
    container: dict[str, Any] = {
        "name": REDIS,
        "image": store.image,
        "command": ["sh", f"{CONFIG_DIR}/start-redis.sh"],
        "env": [*_env(owner, spec, redis_name(owner)),
                _secret_env("SPILLWAY_EXPORTER_PASSWORD", redis_name(owner), "exporter-password")],
        "ports": [{"name": REDIS, "containerPort": REDIS_PORT, "protocol": "TCP"}],
        # The port opens before the data is loaded: liveness on TCP never kills a long AOF load.
        "livenessProbe": {"tcpSocket": {"port": REDIS}, "periodSeconds": 10, "failureThreshold": 6},
        "readinessProbe": {"exec": {"command": ["sh", "-c", READY_REDIS]}, "periodSeconds": 5, "timeoutSeconds": 3,
                           "failureThreshold": 2},
        "resources": {"requests": {"cpu": "100m", "memory": limit}, "limits": {"memory": limit}},
        "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
        "volumeMounts": [*_MOUNTS, {"name": "data", "mountPath": DATA_DIR}],
    }
    claims: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if parse_quantity(persistence.size) > 0:
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": persistence.size}}}
        if persistence.storage_class_name:
            claim["storageClassName"] = persistence.storage_class_name
        claims.append({"metadata": {"name": "data", "labels": labels(owner, REDIS)}, "spec": claim})
    else:
        volumes.append({"name": "data", "emptyDir": {}})
    pod_labels = labels(owner, REDIS) if sentinel else {**labels(owner, REDIS), ROLE_LABEL: PRIMARY}
    replicas = 1 + store.replicas if sentinel else 1
    checksum = _checksum(data, ("redis.conf", "start-redis.sh"))
    return _statefulset(owner, REDIS, replicas, pod_labels, checksum, _pod_spec(owner, REDIS, container, volumes), claims)


def _sentinel_statefulset(owner: Owner, spec: ScalableServiceSpec, data: dict[str, str]) -> dict[str, Any]:
    ping = {"exec": {"command": ["sh", "-c", f"redis-cli -p {SENTINEL_PORT} PING | grep -q PONG"]},
            "timeoutSeconds": 3}
    container: dict[str, Any] = {
        "name": SENTINEL,
        "image": spec.session_store.redis.image,
        "command": ["sh", f"{CONFIG_DIR}/start-sentinel.sh"],
        "env": _env(owner, spec, sentinel_name(owner)),
        "ports": [{"name": SENTINEL, "containerPort": SENTINEL_PORT, "protocol": "TCP"}],
        "livenessProbe": {**ping, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {**ping, "periodSeconds": 5, "failureThreshold": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
        "volumeMounts": list(_MOUNTS),
    }
    checksum = _checksum(data, ("sentinel.conf", "sentinel-master.conf", "start-sentinel.sh"))
    return _statefulset(owner, SENTINEL, SENTINELS, labels(owner, SENTINEL), checksum,
                        _pod_spec(owner, SENTINEL, container, []), [])
