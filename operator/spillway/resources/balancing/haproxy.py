"""Provider `HAProxy`: Spillway's own data plane, for any cluster. Pure: no I/O.

What is built, for a ScalableService `<name>`:
- ConfigMap `<name>-haproxy-<digest>` with haproxy.cfg, immutable and named by its content: a
  changed config is a new ConfigMap, so a pod of the old one that restarts reads the file it was
  started with, and the reconcile removes the old one once no pod mounts it; one backend named `<name>` (the HAProxy metrics
  preset matches `proxy="<name>"`), always with an explicit `balance` (HAProxy 3.3 changed the
  default from roundrobin to random), servers discovered from the DNS SRV records of a headless
  Service (`server-template` with `replicas.max` slots per pool and a `resolvers` section), so
  a scale-out or scale-in changes the servers without a reload;
- Deployment `<name>-haproxy` (`balancing.haproxy.replicas`, at least 2, spread over nodes by a
  preferred pod anti-affinity, a rolling update that never lowers the ready count) whose pods
  roll when the config changes (the ConfigMap's name is in their template) and check it with
  `haproxy -c` in an init container first, so a config the image's HAProxy refuses stops the
  rollout at its first new pod while the old pods serve on; and PDB `<name>-haproxy`: the
  balancer is never a single point of failure;
- Service `<name>` in front of the balancer pods (the address clients use whatever the
  provider), and headless Services `<name>-backends` (or `<name>-<pool>-backends`) selecting
  the app's replicas;
- cookie affinity that yields under load when the sessions are shared (a session store): a user
  waits for their replica only while it has at most a replica's worth queued (`maxqueue`), then
  goes to another;
- the seed's Tomcat knobs at the balancer: each server's `maxconn` is the replica's
  concurrency, requests beyond it wait in HAProxy's queue for at most `capacity.timeout`
  (`timeout queue`), and once the backend holds every server's concurrency plus queueLimit a
  request is refused at once with 503 and `Retry-After: 1` (a request that waited its whole
  timeout in the queue gets HAProxy's own 503 too);
- HAProxy's Prometheus exporter on port 8405 (`/metrics`), with the `prometheus.io/*`
  annotations and the `app.kubernetes.io/instance` label that Kubernetes pod discovery turns
  into the preset's `app_kubernetes_io_instance`, and a PodMonitor doing the same where the
  Prometheus Operator's CRD exists.

HAProxy directives: https://docs.haproxy.org/3.2/configuration.html (every one used here is also
in 2.6, which the tests run: `haproxy -c` checks the rendered file on it).
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from typing import Any

from spillway.api.errors import SpecError
from spillway.api.spec import HTTP_TOKEN, Pool, ScalableServiceSpec
from spillway.resources.balancing.base import (
    Balancer,
    Context,
    Plan,
    Requirement,
    Support,
    Verdict,
    default_algorithm,
)
from spillway.resources.meta import Owner, child_name, content_name, evictable, labels, metadata, selector_labels

COMPONENT = "balancer"
HTTP_PORT = 8080  # unprivileged: the restricted profile drops NET_BIND_SERVICE
METRICS_PORT = 8405
CONFIG_DIR = "/usr/local/etc/haproxy"
COOKIE_KEY = "cookie-key"
COOKIE_ENV = "SPILLWAY_COOKIE_KEY"
UID = 99  # the official image's haproxy user; any non-root uid works with Debian's package
RETRY_AFTER_SECONDS = 1
READY_PATH = "/ready"
# A new balancer pod is Ready once it has a usable server, so that a rollout or a replaced pod
# answers no "no replica ready" while its first resolution and check run; past this many
# seconds it is Ready anyway, so that replicas all down leave the balancer answering 503 with
# Retry-After rather than the Service refusing connections.
READY_GRACE_SECONDS = 30
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
REQUIRES = (Requirement("monitoring.coreos.com/v1", "PodMonitor", "podmonitors.monitoring.coreos.com",
                        optional=True),)
_BALANCE = {"RoundRobin": "roundrobin", "Random": "random", "LeastConnection": "leastconn",
            "Weighted": "roundrobin"}

SUPPORT = Support(
    provider="HAProxy",
    algorithms={"RoundRobin": "balance roundrobin", "Random": "balance random",
                "LeastConnection": "balance leastconn (default)", "Weighted": "server weight per pool",
                "ConsistentHash": "hash-type consistent: source, hdr(), req.cook()"},
    affinities={"ClientIP": "stick table on source", "Cookie": "dynamic cookie, generated key"},
    notes="Built in: runs on any cluster; per-server maxconn, bounded queue, Prometheus exporter.",
)


def config_name(owner: Owner) -> str:
    return child_name(owner, "haproxy")


def config_map_name(owner: Owner, config: str) -> str:
    """The immutable ConfigMap holding this haproxy.cfg."""
    return content_name(owner, "haproxy", {"haproxy.cfg": config})


def backends_name(owner: Owner, pool: Pool | None) -> str:
    return child_name(owner, "backends" if pool is None else f"{pool.name}-backends")


def cookie_secret_name(owner: Owner) -> str:
    return child_name(owner, "balancer")


def needs_cookie_key(spec: ScalableServiceSpec) -> bool:
    return spec.balancing.provider == "HAProxy" and spec.balancing.affinity.type == "Cookie"


def cookie_secret(owner: Owner, key: str) -> dict[str, Any]:
    """The Secret holding the dynamic-cookie-key; the reconcile creates it once with a random
    key and never rewrites it, so cookies stay valid across reconciles and restarts."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(owner, cookie_secret_name(owner), COMPONENT),
            "type": "Opaque", "stringData": {COOKIE_KEY: key}}


def render(owner: Owner, spec: ScalableServiceSpec, context: Context) -> Plan:
    algorithm = default_algorithm(spec)
    config = haproxy_cfg(owner, spec)
    selector = selector_labels(owner, COMPONENT)
    config_map = _config_map(owner, config)
    objects: list[dict[str, Any]] = [
        config_map,
        _deployment(owner, spec, config_map["metadata"]["name"], selector),
        _front_service(owner, spec, selector),
        *_backend_services(owner, spec, context),
        _pdb(owner, selector),
        _pod_monitor(owner, selector, spec.scaling.interval),
    ]
    balancer = Balancer(provider="HAProxy", algorithm=algorithm,
                        endpoint=f"{owner.name}.{owner.namespace}.svc:{spec.service_port}")
    return Plan(balancer=balancer, verdict=_verdict(owner, spec, algorithm), objects=tuple(objects),
                requires=REQUIRES)


def _verdict(owner: Owner, spec: ScalableServiceSpec, algorithm: str) -> Verdict:
    words = {"ConsistentHash": f"consistent hash on {_hash_words(spec)}", "LeastConnection": "least connection",
             "RoundRobin": "round robin", "Random": "random choice", "Weighted": "pool weights"}[algorithm]
    affinity = spec.balancing.affinity
    sticky = {"None": "", "ClientIP": ", sticky by client address",
              "Cookie": f", sticky by cookie {affinity.cookie_name}"}[affinity.type]
    return Verdict(True, "HAProxyBalancing", (
        f"HAProxy ({spec.balancing.haproxy.replicas} replicas) behind Service {owner.name} balances by "
        f"{words}{sticky}; each replica takes {spec.capacity.concurrency} at once, the rest wait up to "
        f"{_time(spec.capacity.timeout)}."))


def _hash_words(spec: ScalableServiceSpec) -> str:
    key = spec.balancing.hash
    return "the client address" if key.source == "SourceIP" else f"{key.source.lower()} {key.name}"


def readiness(spec: ScalableServiceSpec, applied: list[dict[str, Any]]) -> tuple[bool, str]:
    """Ready once one HAProxy pod is: the Service then carries traffic."""
    deployment = next((o for o in applied if o.get("kind") == "Deployment"), None)
    ready = ((deployment or {}).get("status") or {}).get("readyReplicas") or 0
    wanted = spec.balancing.haproxy.replicas
    return ready > 0, f"{ready} of {wanted} HAProxy replicas are ready."


# --- haproxy.cfg ---------------------------------------------------------------------------


def maxconn(spec: ScalableServiceSpec) -> int:
    """The balancer's connection bound: what every usable server holds at once plus what may wait
    for it, and room for the rest (refused at once with 503). With pools of different sizes, the
    weight-weighted mean server stands for each."""
    pools: list[Pool | None] = list(spec.pools) or [None]
    return max(1000, min(200_000, spec.replicas.max * len(pools) * _held(spec) + 1000))


def _held(spec: ScalableServiceSpec) -> int:
    """What one server holds at once plus what may wait for it (the weight-weighted mean server)."""
    pools: list[Pool | None] = list(spec.pools) or [None]
    per_server = [(_concurrency(spec, p), _queue_limit(spec, p), p.weight if p else 1) for p in pools]
    return round(sum((c + q) * w for c, q, w in per_server) / sum(w for _, _, w in per_server))


# HAProxy's memory per connection: two buffers of tune.bufsize (16 KiB) and the stream around
# them; and what the process needs with none.
CONNECTION_BYTES = 34 * 1024
BASE_MEMORY_MI = 64


def default_resources(spec: ScalableServiceSpec) -> dict[str, Any]:
    """Requests of a small balancer; a memory limit that holds `maxconn` connections (at least
    256Mi), so that the connections haproxy.cfg admits never get the container killed."""
    needed = BASE_MEMORY_MI + -(-maxconn(spec) * CONNECTION_BYTES // 2**20)
    limit = f"{max(256, needed)}Mi"
    return DEFAULT_RESOURCES if limit == "256Mi" else {**DEFAULT_RESOURCES, "limits": {"memory": limit}}


def haproxy_cfg(owner: Owner, spec: ScalableServiceSpec) -> str:
    backend = owner.name
    capacity = spec.capacity
    pools: list[Pool | None] = list(spec.pools) or [None]
    per_server = [(_concurrency(spec, p), _queue_limit(spec, p), p.weight if p else 1) for p in pools]
    slots = spec.replicas.max
    total, held = maxconn(spec), _held(spec)
    timeout = _time(capacity.timeout)
    lines = [
        "# Rendered by Spillway from the ScalableService; edits are overwritten.",
        "global",
        f"    maxconn {total}",
        "    set-var proc.spillway_boot date()",
        "    log stdout format raw local0 info",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        "    option redispatch 1",
        # Every retry goes to another replica and a refusing one is marked down at once: a
        # scale-in that stops several replicas together costs a request one attempt per replica.
        f"    retries {min(max(3, slots), 20)}",
        # A replica going away may close a connection without answering: a request that is
        # safe to repeat is sent to another replica instead of failing (never a POST).
        "    retry-on conn-failure empty-response junk-response",
        # Inside a cluster a connection takes well under a millisecond: a replica whose pod has
        # gone (its address no longer answers, not even with a reset) costs a request 1 s, then
        # the request is retried on another replica.
        "    timeout connect 1s",
        f"    timeout client {_time(max(capacity.timeout, timedelta(seconds=30)))}",
        f"    timeout server {timeout}",
        f"    timeout queue {timeout}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    default-server init-addr none",
        "",
        "resolvers cluster",
        "    parse-resolv-conf",
        "    accepted_payload_size 8192",
        "    resolve_retries 3",
        "    timeout resolve 1s",
        "    timeout retry 1s",
        # Asked again every 5 s; a replica gone from a valid answer leaves 5 s later.
        "    hold valid 5s",
        "    hold obsolete 5s",
        # A resolver that fails or answers NXDOMAIN (every replica unready at once, under
        # overload) says nothing the health checks do not: the last servers are kept for
        # HAProxy's default 30 s, not emptied after 5 s into 503s while the replicas serve.
        "    hold nx 30s",
        "    hold other 30s",
        "    hold refused 30s",
        "    hold timeout 30s",
        "",
        "frontend metrics",
        f"    bind :{METRICS_PORT}",
        "    no log",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        f"    http-request return status 503 content-type text/plain string \"no usable server yet\" "
        f"if {{ path {READY_PATH} }} {{ nbsrv({backend}) eq 0 }} "
        f"{{ date,sub(proc.spillway_boot) lt {READY_GRACE_SECONDS} }}",
        f"    http-request return status 200 content-type text/plain string \"ready\" if {{ path {READY_PATH} }}",
        "    monitor-uri /healthz",
        "",
        "frontend http",
        f"    bind :{HTTP_PORT}",
        "    option httplog",
        f"    maxconn {total}",
        f"    http-request return status 503 content-type text/plain string \"no replica ready\" "
        f"hdr Retry-After {RETRY_AFTER_SECONDS} if {{ nbsrv({backend}) eq 0 }}",
        f"    http-request set-var(txn.spillway_bound) nbsrv({backend}),mul({held})",
        f"    acl spillway_full be_conn({backend}),sub(txn.spillway_bound) ge 0",
        f"    http-request return status 503 content-type text/plain string \"queue full\" "
        f"hdr Retry-After {RETRY_AFTER_SECONDS} if spillway_full",
        f"    default_backend {backend}",
        "",
        f"backend {backend}",
        "    http-request disable-l7-retry unless { method GET HEAD OPTIONS }",
        *_balance_lines(spec),
        *_affinity_lines(spec),
    ]
    for pool, (concurrency, _, weight) in zip(pools, per_server, strict=True):
        prefix = "app-" if pool is None else f"{pool.name}-"
        weight_part = f" weight {weight}" if spec.balancing.algorithm == "Weighted" else ""
        srv = f"_http._tcp.{backends_name(owner, pool)}.{owner.namespace}.svc.cluster.local"
        # The SRV records' own weights (CoreDNS: 100 / records) would replace the pool's. A
        # replica refusing a connection is taken out at once, not after the next checks: DNS
        # drops a terminated replica only after its TTL and the cache's.
        lines.append(f"    server-template {prefix} {slots} {srv} resolvers cluster resolve-prefer ipv4 "
                     f"resolve-opts ignore-weight check inter 1s fall 2 rise 1 observe layer4 error-limit 1 "
                     f"on-error mark-down maxconn {concurrency}{_soft_affinity(spec, concurrency)}{weight_part}")
    return "\n".join(lines) + "\n"


# What a spec string may bring into haproxy.cfg: the CRD's own HTTP token pattern, which leaves out
# what HAProxy's parser reads specially (whitespace, `#`, quotes, `\`, `$`, parentheses, commas).
# The API server refuses the rest first; this is the second line, for a spec that reached the
# renderer some other way.
_CONFIG_WORD = re.compile(HTTP_TOKEN)


def config_word(value: str, field: str) -> str:
    """`value`, if it can stand as one word of haproxy.cfg; else a SpecError naming `field`."""
    if not _CONFIG_WORD.fullmatch(value):
        raise SpecError([f"{field}: {value!r} cannot be written into haproxy.cfg: use letters, digits "
                         "and !%&*+.^_`|~-"])
    return value


def _balance_lines(spec: ScalableServiceSpec) -> list[str]:
    algorithm = default_algorithm(spec)
    if algorithm != "ConsistentHash":
        return [f"    balance {_BALANCE[algorithm]}"]
    key = spec.balancing.hash
    if key.source == "SourceIP":
        return ["    balance source", "    hash-type consistent"]
    name = config_word(key.name or "", "spec.balancing.hash.name")
    how = f"hdr({name})" if key.source == "Header" else f"hash req.cook({name})"
    return [f"    balance {how}", "    hash-type consistent"]


def _affinity_lines(spec: ScalableServiceSpec) -> list[str]:
    affinity = spec.balancing.affinity
    ttl = _time(affinity.ttl)
    if affinity.type == "Cookie":
        cookie = config_word(affinity.cookie_name, "spec.balancing.affinity.cookieName")
        return [f"    cookie {cookie} insert indirect nocache httponly dynamic maxlife {ttl}",
                f"    dynamic-cookie-key \"${{{COOKIE_ENV}}}\""]
    if affinity.type == "ClientIP":
        return [f"    stick-table type ipv6 size 1m expire {ttl}", "    stick on src"]
    return []


def _soft_affinity(spec: ScalableServiceSpec, concurrency: int) -> str:
    """With a shared session store, cookie affinity only keeps a user where their data is warm:
    once a replica has a replica's worth of requests waiting (`maxqueue`), a user pinned to it is
    sent to another (`option redispatch`), whose answer pins them there. Without it, users who
    logged in before a scale-out would stay on the old replicas, queueing while the new ones sit
    idle: the demo's surge served 25 req/s on 8 replicas. Without a store, moving the user would
    log them out, so they wait for their replica."""
    shared = spec.session_store.type != "None"
    return f" maxqueue {concurrency}" if shared and spec.balancing.affinity.type == "Cookie" else ""


def _concurrency(spec: ScalableServiceSpec, pool: Pool | None) -> int:
    override = pool.capacity.concurrency if pool is not None else None
    return override if override is not None else spec.capacity.concurrency


def _queue_limit(spec: ScalableServiceSpec, pool: Pool | None) -> int:
    override = pool.capacity.queue_limit if pool is not None else None
    return override if override is not None else spec.capacity.queue_limit


def _time(value: timedelta) -> str:
    """HAProxy's time format: a whole number with one unit."""
    millis = round(value.total_seconds() * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


# --- objects -------------------------------------------------------------------------------


def _config_map(owner: Owner, config: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(owner, config_map_name(owner, config), COMPONENT),
            "immutable": True, "data": {"haproxy.cfg": config}}


_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
             "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID}


def _deployment(owner: Owner, spec: ScalableServiceSpec, config_map: str, selector: dict[str, str]) -> dict[str, Any]:
    settings = spec.balancing.haproxy
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    env = [{"name": COOKIE_ENV, "valueFrom": {"secretKeyRef": {"name": cookie_secret_name(owner), "key": COOKIE_KEY}}}
           ] if needs_cookie_key(spec) else []
    # The image's own HAProxy checks the file before the balancer starts: a config it refuses
    # (a directive another version lacks) fails this pod's start, not a serving one.
    check: dict[str, Any] = {
        "name": "check-config",
        "image": settings.image,
        "command": ["haproxy", "-c", "-q", "-f", f"{CONFIG_DIR}/haproxy.cfg"],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": copy.deepcopy(_SECURITY), "volumeMounts": copy.deepcopy(mounts),
        **({"env": copy.deepcopy(env)} if env else {}),
    }
    container: dict[str, Any] = {
        "name": "haproxy",
        "image": settings.image,
        "command": ["haproxy", "-W", "-db", "-f", f"{CONFIG_DIR}/haproxy.cfg"],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": READY_PATH, "port": "metrics"}, "periodSeconds": 1,
                           "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10,
                          "failureThreshold": 3},
        # Until the Service's endpoints drop this pod, keep serving: kube-proxy stops sending new
        # connections within a second or two, and requests in flight finish.
        "lifecycle": {"preStop": {"sleep": {"seconds": 10}}},
        "resources": settings.resources if settings.resources is not None else default_resources(spec),
        "securityContext": copy.deepcopy(_SECURITY),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchLabels": selector},
                                "topologyKey": "kubernetes.io/hostname"}}]}},
        "initContainers": [check],
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": config_map}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}],
    }
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in settings.tolerations]
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                   "prometheus.io/path": "/metrics", **evictable(True)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, config_name(owner), COMPONENT),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(owner, COMPONENT), "annotations": annotations},
                         "spec": pod_spec},
        },
    }


def _front_service(owner: Owner, spec: ScalableServiceSpec, selector: dict[str, str]) -> dict[str, Any]:
    service: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector,
        "ports": [{"name": "http", "protocol": "TCP", "port": spec.service_port, "targetPort": "http"}],
        "sessionAffinity": "None",
    }
    affinity = spec.balancing.affinity
    if affinity.type == "ClientIP":
        # Each HAProxy replica keeps its own stick table: the same client must reach the same one.
        service["sessionAffinity"] = "ClientIP"
        seconds = min(86400, max(1, int(affinity.ttl.total_seconds())))
        service["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": seconds}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, owner.name, COMPONENT),
            "spec": service}


def _backend_services(owner: Owner, spec: ScalableServiceSpec, context: Context) -> list[dict[str, Any]]:
    """Headless Services whose SRV records (`_http._tcp.<service>`) list the ready replicas with
    their port: HAProxy's server-template fills its slots from them."""
    wanted: list[tuple[Pool | None, dict[str, str]]] = (
        [(p, context.pool_selectors[p.name]) for p in spec.pools] if spec.pools else [(None, context.selector)])
    return [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata(owner, backends_name(owner, pool), COMPONENT),
        "spec": {"clusterIP": "None", "selector": selector,  # ready replicas only (the default)
                 "ports": [{"name": "http", "protocol": "TCP", "port": spec.service_port, "targetPort": spec.port}]},
    } for pool, selector in wanted]


def _pdb(owner: Owner, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(owner, config_name(owner), COMPONENT),
            "spec": {"selector": {"matchLabels": selector}, "maxUnavailable": 1,
                     # A balancer pod that is not ready serves nothing: draining its node may evict it.
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}


def scrape_interval(interval: timedelta) -> str:
    """The PodMonitor's scrape interval: the scaling interval, so that each decision reads a
    sample taken since the last one (the Prometheus Operator's default is its Prometheus's, often
    30 s or 1 m), within 5 s (the exporter is cheap, not free) and 60 s, in whole seconds."""
    seconds = min(60, max(5, round(interval.total_seconds())))
    return f"{seconds}s"


def _pod_monitor(owner: Owner, selector: dict[str, str], interval: timedelta) -> dict[str, Any]:
    """For a Prometheus Operator: the same identity pod discovery gives the annotated pods."""
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": metadata(owner, config_name(owner), COMPONENT),
        "spec": {
            "selector": {"matchLabels": selector},
            "podMetricsEndpoints": [{
                "port": "metrics", "path": "/metrics", "interval": scrape_interval(interval),
                "relabelings": [{"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"}],
            }],
        },
    }
