"""The session store's Kubernetes objects: the two Secrets, the ConfigMap, Services,
StatefulSets, PDBs and NetworkPolicies, and the app's env. Pure. See `config` for the decisions."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any
from urllib.parse import quote

from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import parse_quantity
from spillway.resources.meta import Owner, content_name, evictable, labels, metadata, selector_labels
from spillway.resources.sessionstore.config import (
    CONFIG_DIR, NO_ROTATION, ROTATION_CURRENT, ROTATION_PREVIOUS, Rotation, app_password, DATA_DIR, ENV_KEYS, PRIMARY, QUORUM, REDIS, REDIS_PORT, ROLE_LABEL, RUN_DIR,
    SECRET_DIR, SENTINEL, SENTINEL_APP, SENTINEL_ENV_KEYS, SENTINEL_PORT, SENTINELS, UID,
    _component_name, _pod_host, acl_file, connection_name, master_name, memory_limit, password_name, primary_name,
    redis_conf, redis_name, sentinel_conf, sentinel_master_conf, sentinel_mode, sentinel_name, sentinel_nodes,
    sentinel_users, user_password,
)
from spillway.resources.sessionstore.scripts import (
    READY_REDIS, READY_SENTINEL, START_REDIS, START_SENTINEL, STOP_REDIS, SWITCHOVER_SECONDS,
)

# --- secrets and env ------------------------------------------------------------------------


MIN_PASSWORD = 16


def _check(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError("the session store's generated password must be at least 16 characters")


def server_secret(owner: Owner, password: str, rotation: Rotation = NO_ROTATION) -> dict[str, Any]:
    """The servers' Secret; its annotations record the rotation in effect (the ACL file accepts
    both app passwords while the app rolls onto the new one)."""
    _check(password)
    admin = user_password(password, "admin")
    master = master_name(owner)
    data = {
        "users.acl": acl_file(owner, password, rotation),
        "redis-auth.conf": f"masteruser admin\nmasterauth {admin}\n",
        # The sentinels' own users, how they authenticate to each other, and to Redis.
        "sentinel-auth.conf": (f"{sentinel_users(password)}sentinel sentinel-user admin\nsentinel sentinel-pass {admin}\n"
                               f"sentinel auth-user {master} admin\nsentinel auth-pass {master} {admin}\n"),
        "admin-password": admin,
        "exporter-password": user_password(password, "exporter"),
    }
    secret = _secret(owner, redis_name(owner), data)
    annotations = {ROTATION_CURRENT: rotation.current}
    if rotation.previous is not None:
        annotations[ROTATION_PREVIOUS] = rotation.previous
    secret["metadata"]["annotations"] = annotations
    return secret


def connection_secret_data(host: str, port: int, user: str, password: str, sentinel_master: str | None = None,
                           sentinels: list[str] | None = None, sentinel_password: str = "") -> dict[str, str]:
    """What the app's connection Secret holds; `app_env` maps its keys to env names."""
    data = {
        "url": f"redis://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/0",
        "host": host, "port": str(port), "username": user, "password": password,
    }
    if sentinel_master is not None:
        data["sentinel-master"] = sentinel_master
        data["sentinel-nodes"] = ",".join(sentinels or [])
        data["sentinel-username"] = "app"
        data["sentinel-password"] = sentinel_password
    return data


def connection_secret(owner: Owner, spec: ScalableServiceSpec, password: str,
                      rotation: Rotation = NO_ROTATION) -> dict[str, Any]:
    _check(password)
    host = f"{primary_name(owner)}.{owner.namespace}.svc"
    sentinel = sentinel_mode(spec)
    data = connection_secret_data(host, REDIS_PORT, "app", app_password(password, rotation.current),
                                  master_name(owner) if sentinel else None, sentinel_nodes(owner) if sentinel else None,
                                  user_password(password, SENTINEL_APP) if sentinel else "")
    return _secret(owner, connection_name(owner), data)


def _secret(owner: Owner, name: str, text: dict[str, str]) -> dict[str, Any]:
    # `data`, base64, as the API server stores it: a live Secret is compared field by field.
    data = {k: base64.b64encode(v.encode()).decode() for k, v in text.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(owner, name, REDIS), "type": "Opaque",
            "data": data}


def secret_text(secret: dict[str, Any] | None) -> dict[str, str]:
    """A Secret's values as text (from `data` or `stringData`); unreadable values are left out."""
    if not secret:
        return {}
    text: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            text[key] = base64.b64decode(value, validate=True).decode()
        except (ValueError, TypeError):
            continue
    text.update({k: v for k, v in (secret.get("stringData") or {}).items() if isinstance(v, str)})
    return text


def password_secret(owner: Owner, password: str) -> dict[str, Any]:
    """Secret `<name>-redis-password`: the generated password every other one derives from.
    Created once (a POST), never patched, mounted nowhere."""
    _check(password)
    return _secret(owner, password_name(owner), {"password": password})


def stored_password(secret: dict[str, Any] | None) -> str | None:
    """The generated password a password Secret holds, or None when it holds no usable one."""
    password = secret_text(secret).get("password")
    return password if password is not None and len(password) >= MIN_PASSWORD else None


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
    pairs = [(store.env, "url"), *ENV_KEYS, *(SENTINEL_ENV_KEYS if sentinel_mode(spec) else ())]
    seen: set[str] = set()
    env = []
    for name, key in pairs:
        if name not in seen:
            seen.add(name)
            env.append(_secret_env(name, connection_name(owner), key))
    return env


# --- objects --------------------------------------------------------------------------------


def build(owner: Owner, spec: ScalableServiceSpec, password: str, app_selector: dict[str, str],
          operator: dict[str, Any] | None = None, rotation: Rotation = NO_ROTATION) -> list[dict[str, Any]]:
    """Every object of the provisioned store, in apply order (Secrets and config first).
    `operator` is a NetworkPolicy peer for the operator's pods (it asks the sentinels who the
    primary is); None when it runs outside the cluster."""
    sentinel = sentinel_mode(spec)
    configs = config_maps(owner, spec)
    extra = [operator] if operator else []
    objects = [server_secret(owner, password, rotation), connection_secret(owner, spec, password, rotation), *configs,
               _headless_service(owner, REDIS, REDIS_PORT), _primary_service(owner),
               _redis_statefulset(owner, spec, configs[0]["metadata"]["name"]),
               _pdb(owner, REDIS), _network_policy(owner, REDIS, REDIS_PORT, app_selector, sentinel, extra)]
    if sentinel:
        objects += [_headless_service(owner, SENTINEL, SENTINEL_PORT),
                    _sentinel_statefulset(owner, spec, configs[1]["metadata"]["name"]),
                    _pdb(owner, SENTINEL), _network_policy(owner, SENTINEL, SENTINEL_PORT, app_selector, True, extra)]
    return objects


def operator_peer(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    """The NetworkPolicy peer of the operator's pods in its namespace."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": dict(pod_labels)}}


def connection_checksum(owner: Owner, spec: ScalableServiceSpec, password: str, rotation: Rotation = NO_ROTATION) -> str:
    """Changes whenever the app's connection Secret does: put on the app's pod template, it rolls
    the app onto a new password or address (a hash of a hash-derived password reveals nothing)."""
    data = connection_secret(owner, spec, password, rotation)["data"]
    return hashlib.sha256("\0".join(f"{k}={data[k]}" for k in sorted(data)).encode()).hexdigest()[:16]


def config_maps(owner: Owner, spec: ScalableServiceSpec) -> list[dict[str, Any]]:
    """Redis's files, and in Sentinel mode the sentinels' in a second ConfigMap: each immutable
    and named by its content, so a change is a new ConfigMap that rolls only the pods mounting
    it (a pod of the old one that restarts reads what it started with), and the reconcile
    removes the old one once no pod mounts it."""
    files = {REDIS: {"redis.conf": redis_conf(spec), "start-redis.sh": START_REDIS}}
    if sentinel_mode(spec):
        files[REDIS]["stop-redis.sh"] = STOP_REDIS
        files[SENTINEL] = {"sentinel.conf": sentinel_conf(), "sentinel-master.conf": sentinel_master_conf(owner),
                           "start-sentinel.sh": START_SENTINEL}
    return [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": metadata(owner, content_name(owner, component, data), component),
             "immutable": True, "data": data} for component, data in files.items()]


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
                    sentinel: bool, extra: list[dict[str, Any]]) -> dict[str, Any]:
    peers = [app_selector, selector_labels(owner, REDIS)] + ([selector_labels(owner, SENTINEL)] if sentinel else [])
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(owner, _component_name(owner, component), component),
            "spec": {"podSelector": {"matchLabels": selector_labels(owner, component)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [*({"podSelector": {"matchLabels": dict(p)}} for p in peers),
                                           *(copy.deepcopy(e) for e in extra)],
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


# A container's time to stop after SIGTERM (Redis: a final AOF fsync and RDB save). Redis's
# preStop switchover runs before it, on time of its own.
STOP_SECONDS = 30


def _pod_spec(owner: Owner, spec: ScalableServiceSpec, component: str, config: str, container: dict[str, Any],
              volumes: list[dict[str, Any]], grace_seconds: int = STOP_SECONDS) -> dict[str, Any]:
    store = spec.session_store.redis
    placement: dict[str, Any] = {}
    if store.node_selector:
        placement["nodeSelector"] = dict(store.node_selector)
    if store.tolerations:
        placement["tolerations"] = copy.deepcopy(store.tolerations)
    return {**placement,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_seconds,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": selector_labels(owner, component)},
                                               "topologyKey": "kubernetes.io/hostname"}}]}},
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": config, "defaultMode": 0o444}},
                    {"name": "secret", "secret": {"secretName": redis_name(owner), "defaultMode": 0o440}},
                    # In memory: the rendered configs hold the admin password.
                    {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}, *volumes],
    }


_MOUNTS = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
           {"name": "secret", "mountPath": SECRET_DIR, "readOnly": True},
           {"name": "run", "mountPath": RUN_DIR}]


def _statefulset(owner: Owner, component: str, replicas: int, pod_labels: dict[str, str],
                 pod_spec: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceName": _component_name(owner, component),
        "replicas": replicas,
        # Sentinels start together; Redis pod 0 (the first primary) comes up before its replicas.
        "podManagementPolicy": "Parallel" if component == SENTINEL else "OrderedReady",
        "selector": {"matchLabels": selector_labels(owner, component)},
        "updateStrategy": {"type": "RollingUpdate"},
        # A lone Redis (Standalone) holds every session: node scale-down must not move it. Sentinel
        # mode's pods are replicated and their PDB lets one go at a time.
        "template": {"metadata": {"labels": pod_labels, "annotations": {
            **evictable(component == SENTINEL or replicas > 1)}}, "spec": pod_spec},
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": metadata(owner, _component_name(owner, component), component), "spec": spec}


def _redis_statefulset(owner: Owner, spec: ScalableServiceSpec, config: str) -> dict[str, Any]:
    store = spec.session_store.redis
    sentinel = sentinel_mode(spec)
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
    grace = STOP_SECONDS
    if sentinel:
        # A planned stop of the primary hands over to a replica first; the hook's time counts
        # against the grace period, so it is added. The script is the one in the ConfigMap the
        # pod started with (immutable): a new one arrives with the pod's replacement.
        container["lifecycle"] = {"preStop": {"exec": {"command": [
            "timeout", str(SWITCHOVER_SECONDS), "sh", f"{CONFIG_DIR}/stop-redis.sh"]}}}
        grace += SWITCHOVER_SECONDS
    pod_labels = labels(owner, REDIS) if sentinel else {**labels(owner, REDIS), ROLE_LABEL: PRIMARY}
    replicas = 1 + store.replicas if sentinel else 1
    return _statefulset(owner, REDIS, replicas, pod_labels,
                        _pod_spec(owner, spec, REDIS, config, container, volumes, grace), claims)


def _sentinel_statefulset(owner: Owner, spec: ScalableServiceSpec, config: str) -> dict[str, Any]:
    ping = {"exec": {"command": ["sh", "-c", READY_SENTINEL]}, "timeoutSeconds": 3}
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
    return _statefulset(owner, SENTINEL, SENTINELS, labels(owner, SENTINEL),
                        _pod_spec(owner, spec, SENTINEL, config, container, []), [])
