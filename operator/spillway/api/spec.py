"""The `ScalableService` spec: what a team declares, with its defaults and its rules.

These models are the single source of the CRD schema (see `crd.py`): field descriptions,
defaults, enums and the cross-field rules all come from here. Pure: no I/O.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from spillway.api.rules import Rule, SpecModel
from spillway.api.units import Duration, Quantity

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Every spec string that reaches a config file, a script, a query or another API's object has a
# pattern here, so that the API server refuses a hostile value with the field named and the
# operator's own parse (the second line, for a CRD installed without these patterns) does too.
# A header or cookie name: RFC 9110's token (tchar) without `#`, `'` and `$`, which HAProxy's
# configuration parser reads as a comment, a quote and a variable.
HTTP_TOKEN = r"^[A-Za-z0-9!%&*+.^_`|~-]+$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"  # a Secret's data key (core/v1 validation)
# Gateway API's own patterns (gateway.networking.k8s.io v1 ParentReference and Hostname).
GATEWAY_GROUP = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
GATEWAY_KIND = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
GATEWAY_SECTION = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# An image reference as the distribution project's grammar has it: a registry host (with a
# port), lowercase path components, a tag and/or a sha256 digest.
IMAGE = (r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
         r"(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
         r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")
# A Prometheus API's base URL: a scheme, a host (a name or an IPv6 address in brackets), a port
# and a path of URL-safe characters; no credentials (they belong in a Secret), no query and no
# fragment (either would swallow the API's path).
PROMETHEUS_URL = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:=,;-]*)?$"
IntOrString = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
PodTemplate = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]

Provider = Literal["Service", "HAProxy", "GatewayAPI", "EnvoyGateway", "Istio", "NginxGatewayFabric"]
GATEWAY_PROVIDERS = ("GatewayAPI", "EnvoyGateway", "NginxGatewayFabric")
Algorithm = Literal["RoundRobin", "Random", "LeastConnection", "Weighted", "ConsistentHash"]
MetricsSource = Literal["HAProxy", "SpringBoot", "Istio", "Custom"]


class TargetRef(SpecModel):
    """An existing Deployment to adopt: Spillway then manages its replica count only."""

    api_version: Literal["apps/v1"] = Field("apps/v1", description="API version of the target.")
    kind: Literal["Deployment"] = Field("Deployment", description="Kind of the target.")
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN,
                      description="Name of the Deployment in the ScalableService's namespace.")


class Replicas(SpecModel):
    """Bounds of the replica count. `kubectl scale ssvc` sets `min` (the scale subresource)."""

    rules = (
        Rule("self.min <= self.max", "replicas.min must be less than or equal to replicas.max",
             lambda r: r.min <= r.max),
    )
    min: int = Field(1, ge=1, le=10000, description=(
        "Fewest replicas. Spillway starts here and never scales below it; "
        "`kubectl scale ssvc NAME --replicas=N` sets this floor."))
    max: int = Field(10, ge=1, le=10000, description="Most replicas Spillway will ever run.")


class Capacity(SpecModel):
    """What ONE replica holds: the Tomcat knobs, made explicit."""

    rules = (
        Rule("duration(self.timeout) > duration('0s')", "capacity.timeout must be greater than 0s",
             lambda c: c.timeout > timedelta(0), ".timeout"),
    )
    concurrency: int = Field(200, ge=1, le=100000, description=(
        "Requests one replica serves at once (Tomcat maxThreads, the worker pool size)."))
    queue_limit: int = Field(100, ge=0, le=1000000, description=(
        "Requests allowed to wait beyond `concurrency` on one replica (Tomcat acceptCount)."))
    timeout: Duration = Field(timedelta(seconds=30), description=(
        "How long a request may wait before it has failed for its user, e.g. 30s."))


class SecretKeyRef(SpecModel):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN,
                      description="Secret name in the ScalableService's namespace.")
    key: str = Field(max_length=253, pattern=SECRET_KEY, description="Key within the Secret.")


class SecretRef(SpecModel):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN,
                      description="Secret name in the ScalableService's namespace.")


class Prometheus(SpecModel):
    """Where the signals are read."""

    rules = (
        Rule("!(has(self.bearerTokenSecretRef) && has(self.basicAuthSecretRef))",
             "prometheus: set at most one of bearerTokenSecretRef and basicAuthSecretRef",
             lambda p: not (p.bearer_token_secret_ref and p.basic_auth_secret_ref)),
        Rule("duration(self.timeout) > duration('0s')", "prometheus.timeout must be greater than 0s",
             lambda p: p.timeout > timedelta(0), ".timeout"),
        Rule("duration(self.timeout) <= duration('30s')", "prometheus.timeout must be at most 30s",
             lambda p: p.timeout <= timedelta(seconds=30), ".timeout"),
    )
    url: str = Field(max_length=2048, pattern=PROMETHEUS_URL,
                     description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.")
    timeout: Duration = Field(timedelta(seconds=5), description="Timeout of one query, at most 30s.")
    bearer_token_secret_ref: SecretKeyRef | None = Field(None, description="Bearer token for the API.")
    basic_auth_secret_ref: SecretRef | None = Field(None, description=(
        "Secret with keys `username` and `password` for HTTP basic auth."))
    ca_secret_ref: SecretKeyRef | None = Field(None, description="PEM CA bundle to verify TLS.")
    insecure_skip_verify: bool = Field(False, description="Skip TLS verification (not recommended).")


class Queries(SpecModel):
    """PromQL per signal; overrides the preset. Placeholders: {namespace}, {service}, {selector}."""

    queue_depth: str | None = Field(None, max_length=4096, description="Requests waiting, summed over replicas.")
    in_flight: str | None = Field(None, max_length=4096, description="Requests being served, summed over replicas.")
    arrival_rate: str | None = Field(None, max_length=4096, description="Requests arriving per second.")
    latency: str | None = Field(None, max_length=4096, description=(
        "Latency in seconds at the target quantile ({quantile} is filled in)."))


class LatencyTarget(SpecModel):
    rules = (
        Rule("duration(self.objective) > duration('0s')", "latency.objective must be greater than 0s",
             lambda t: t.objective > timedelta(0), ".objective"),
    )
    quantile: float = Field(0.95, gt=0, lt=1, description="Quantile the objective applies to, in (0, 1).")
    objective: Duration = Field(description="Latency the quantile must stay under, e.g. 250ms.")


class Targets(SpecModel):
    """Each target turns one signal into a replica proposal; the largest proposal wins."""

    queue_per_replica: float = Field(10, gt=0, le=1000000, description=(
        "Waiting requests one replica may carry (KEDA-style queue scaling)."))
    utilization: float = Field(0.7, gt=0, le=1, description=(
        "Busy share of capacity.concurrency to aim for (in-flight / (replicas x concurrency))."))
    latency: LatencyTarget | None = Field(None, description=(
        "Latency objective for the queueing model (Erlang C); unset turns that proposal off."))


class ScalingRules(SpecModel):
    """How fast to move in one direction (the HPA's behavior semantics, HPAScalingRules)."""

    stabilization_window: Duration = Field(timedelta(0), description=(
        "Recommendations over this window are considered; the most conservative wins."))
    max_step_percent: int | None = Field(None, ge=1, le=10000, description=(
        "At most this percent of the replicas at the start of percentPeriod may be added or removed "
        "within it; unset means no percent limit."))
    max_step_pods: int | None = Field(None, ge=1, le=10000, description=(
        "At most this many pods may be added or removed within podsPeriod; unset means no pod limit."))
    period: Duration = Field(timedelta(seconds=15), description=(
        "Length of the period the step limits apply to, unless podsPeriod or percentPeriod say otherwise."))
    select_policy: Literal["Max", "Min", "Disabled"] = Field("Max", description=(
        "Which step limit applies when both are set: the one allowing the larger (Max) or the "
        "smaller (Min) change; Disabled forbids moving in this direction."))
    tolerance: float | None = Field(None, ge=0, lt=1, description=(
        "Tolerance for this direction (as the HPA's behavior.scaleUp/scaleDown.tolerance): a signal "
        "whose ratio to its target lies within it proposes the current count. Unset: behavior.tolerance."))
    pods_period: Duration | None = Field(None, description=(
        "Period of the maxStepPods limit (the HPA's periodSeconds of a Pods policy). Unset: period."))
    percent_period: Duration | None = Field(None, description=(
        "Period of the maxStepPercent limit (the HPA's periodSeconds of a Percent policy). Unset: period."))


def _scale_up() -> ScalingRules:
    return ScalingRules(max_step_percent=100, max_step_pods=4)


def _scale_down() -> ScalingRules:
    return ScalingRules(stabilization_window=timedelta(seconds=300), max_step_percent=10,
                        period=timedelta(seconds=60))


class Behavior(SpecModel):
    tolerance: float = Field(0.1, ge=0, lt=1, description=(
        "A signal whose ratio to its target (at the current count) lies within [1 - tolerance, "
        "1 + tolerance] proposes the current count, as the HPA's tolerance; scaleUp.tolerance and "
        "scaleDown.tolerance override it per direction."))
    scale_up: ScalingRules = Field(default_factory=_scale_up, description="Limits on scaling out.")
    scale_down: ScalingRules = Field(default_factory=_scale_down, description="Limits on scaling in.")
    panic: bool = Field(True, description=(
        "Scale up at once, past step limits, when the queue exceeds what the current replicas "
        "can drain within capacity.timeout."))


class MetricsUnavailable(SpecModel):
    """What to do when the signals cannot be read. Never scales down on missing data."""

    rules = (
        Rule("self.action != 'Fallback' || has(self.fallbackReplicas)",
             "onMetricsUnavailable.action Fallback needs fallbackReplicas",
             lambda m: m.action != "Fallback" or m.fallback_replicas is not None),
    )
    action: Literal["Hold", "Fallback"] = Field("Hold", description=(
        "Hold keeps the current count; Fallback moves up to fallbackReplicas after `after` failed intervals."))
    fallback_replicas: int | None = Field(None, ge=1, le=10000, description=(
        "Replica count for Fallback (never lower than the current count)."))
    after: int = Field(3, ge=1, le=1000, description="Failed intervals before Fallback applies.")


class Scaling(SpecModel):
    rules = (
        Rule("self.metricsSource != 'Custom' || has(self.queries.queueDepth) || has(self.queries.inFlight)"
             " || has(self.queries.arrivalRate) || has(self.queries.latency)",
             "metricsSource Custom needs at least one query in scaling.queries",
             lambda s: s.metrics_source != "Custom" or any(
                 (s.queries.queue_depth, s.queries.in_flight, s.queries.arrival_rate, s.queries.latency)),
             ".queries"),
        Rule("duration(self.interval) >= duration('1s')", "scaling.interval must be at least 1s",
             lambda s: s.interval >= timedelta(seconds=1), ".interval"),
    )
    prometheus: Prometheus | None = Field(None, description=(
        "Prometheus to read signals from; unset means Spillway runs exactly replicas.min, so "
        "`kubectl scale`, an HPA or KEDA aimed at the ScalableService set the count."))
    interval: Duration = Field(timedelta(seconds=15), description="How often to read signals and decide.")
    metrics_source: MetricsSource = Field("HAProxy", description=(
        "Preset of PromQL queries matching the exporter in front of or inside the service."))
    queries: Queries = Field(default_factory=Queries, description="Per-signal PromQL overrides.")
    targets: Targets = Field(default_factory=Targets, description="Targets per signal.")
    behavior: Behavior = Field(default_factory=Behavior, description="Tolerance, windows and step limits.")
    on_metrics_unavailable: MetricsUnavailable = Field(default_factory=MetricsUnavailable, description=(
        "What to do when signals are missing."))
    paused: bool = Field(False, description="Stop changing the replica count (signals are still read).")


class Affinity(SpecModel):
    type: Literal["None", "ClientIP", "Cookie"] = Field("None", description=(
        "Keep a client on one replica: by client address or by a cookie the balancer sets."))
    cookie_name: str = Field("SPILLWAY", max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             description="Name of the affinity cookie.")
    ttl: Duration = Field(timedelta(hours=1), description="How long a client stays with its replica.")


class HashKey(SpecModel):
    rules = (
        Rule("self.source == 'SourceIP' || has(self.name)",
             "hash.name is required when hash.source is Header or Cookie",
             lambda h: h.source == "SourceIP" or h.name is not None, ".name"),
    )
    source: Literal["SourceIP", "Header", "Cookie"] = Field("SourceIP", description="What ConsistentHash hashes.")
    name: str | None = Field(None, max_length=256, pattern=HTTP_TOKEN, description=(
        "Header or cookie name to hash: an HTTP token (letters, digits and !%&*+.^_`|~-)."))


FreeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class HAProxyBalancer(SpecModel):
    replicas: int = Field(2, ge=2, le=100, description=(
        "Balancer replicas; at least 2 so the balancer is never a single point of failure."))
    image: str = Field("docker.io/library/haproxy:3.4", max_length=512, pattern=IMAGE, description=(
        "HAProxy image (2.6 or later), by tag and/or digest (`name@sha256:...`); its `haproxy` must be on PATH."))
    node_selector: dict[str, str] = Field(default_factory=dict, description="Nodes the balancer pods run on.")
    tolerations: list[FreeObject] = Field(default_factory=list, max_length=32, description=(
        "Tolerations of the balancer pods (core/v1 Toleration objects)."))
    resources: FreeObject | None = Field(None, description=(
        "Resources of the HAProxy container (core/v1 ResourceRequirements); default: requests cpu 100m, "
        "memory 64Mi, limit memory 256Mi."))


class ParentRef(SpecModel):
    group: str = Field("gateway.networking.k8s.io", max_length=253, pattern=GATEWAY_GROUP,
                       description="Group of the parent.")
    kind: str = Field("Gateway", min_length=1, max_length=63, pattern=GATEWAY_KIND, description="Kind of the parent.")
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Gateway.")
    namespace: str | None = Field(None, max_length=63, pattern=DNS_LABEL,
                                  description="Namespace of the Gateway; default: the ScalableService's.")
    section_name: str | None = Field(None, max_length=253, pattern=GATEWAY_SECTION,
                                     description="Listener name on the Gateway.")


class GatewayConfig(SpecModel):
    parent_refs: list[ParentRef] = Field(default_factory=list, max_length=16, description=(
        "Gateways the HTTPRoute attaches to."))
    hostnames: list[Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME)]] = Field(
        default_factory=list, max_length=16, description="Hostnames the route serves.")


class Balancing(SpecModel):
    rules = (
        Rule("self.affinity.type != 'Cookie' || self.provider != 'Service'",
             "affinity.type Cookie needs a provider that sets cookies (HAProxy, GatewayAPI, EnvoyGateway, "
             "Istio or NginxGatewayFabric); the Service provider supports ClientIP only",
             lambda b: not (b.affinity.type == "Cookie" and b.provider == "Service"), ".affinity.type"),
        Rule("self.provider != 'Service' || self.affinity.type != 'ClientIP'"
             " || duration(self.affinity.ttl) <= duration('86400s')",
             "affinity.ttl must be at most 24h with the Service provider (kube-proxy's limit)",
             lambda b: not (b.provider == "Service" and b.affinity.type == "ClientIP"
                            and b.affinity.ttl > timedelta(seconds=86400)), ".affinity.ttl"),
        Rule("!(self.provider in ['GatewayAPI', 'EnvoyGateway', 'NginxGatewayFabric'])"
             " || size(self.gateway.parentRefs) > 0",
             "provider GatewayAPI, EnvoyGateway and NginxGatewayFabric need at least one gateway.parentRefs entry",
             lambda b: b.provider not in GATEWAY_PROVIDERS or len(b.gateway.parent_refs) > 0,
             ".gateway.parentRefs"),
    )
    provider: Provider = Field("Service", description="What balances traffic across the replicas.")
    algorithm: Algorithm | None = Field(None, description=(
        "Balancing algorithm; unset means the provider's default (Random for Service, "
        "LeastConnection for HAProxy, RoundRobin otherwise)."))
    affinity: Affinity = Field(default_factory=Affinity, description="Sticky sessions.")
    hash: HashKey = Field(default_factory=HashKey, description="Key for the ConsistentHash algorithm.")
    haproxy: HAProxyBalancer = Field(default_factory=HAProxyBalancer, description="Settings of the HAProxy provider.")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description="Settings of the Gateway API providers.")


class Persistence(SpecModel):
    append_only: bool = Field(True, description="Write an append-only file (AOF).")
    fsync: Literal["always", "everysec", "no"] = Field("everysec", description="appendfsync policy.")
    size: Quantity = Field("1Gi", description="Volume size per Redis pod.")
    storage_class_name: str | None = Field(None, max_length=253, pattern=DNS_SUBDOMAIN,
                                          description="StorageClass; default: the cluster's.")


class RedisStore(SpecModel):
    mode: Literal["Standalone", "Sentinel"] = Field("Sentinel", description=(
        "Standalone runs one Redis; Sentinel runs a primary, replicas and three sentinels with failover."))
    replicas: int = Field(2, ge=1, le=10, description="Replicas of the primary (Sentinel mode).")
    image: str = Field("docker.io/library/redis:8.2", max_length=512, pattern=IMAGE,
                       description="Redis image, by tag and/or digest (`name@sha256:...`).")
    persistence: Persistence = Field(default_factory=Persistence, description="Durability of sessions.")
    max_memory: Quantity = Field("256Mi", description="maxmemory of each Redis.")
    eviction_policy: Literal[
        "noeviction", "allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu",
        "allkeys-random", "volatile-random", "volatile-ttl",
    ] = Field("volatile-lru", description="maxmemory-policy when memory is full.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Nodes the Redis and sentinel pods run on.")
    tolerations: list[FreeObject] = Field(default_factory=list, max_length=32, description=(
        "Tolerations of the Redis and sentinel pods (core/v1 Toleration objects)."))


class ExternalStore(SpecModel):
    url_secret_ref: SecretKeyRef = Field(description="Secret key holding the store's URL (redis://...).")


class SessionStore(SpecModel):
    rules = (
        Rule("self.type != 'External' || has(self.external)",
             "sessionStore.type External needs sessionStore.external.urlSecretRef",
             lambda s: s.type != "External" or s.external is not None, ".external"),
        Rule("self.type != 'Redis' || !has(self.external)",
             "sessionStore: type Redis provisions a store, so sessionStore.external must not be set "
             "(use type External to keep your own store)",
             lambda s: s.type != "Redis" or s.external is None, ".external"),
    )
    type: Literal["None", "Redis", "External"] = Field("None", description=(
        "Redis provisions a store for this service; External uses one you run."))
    redis: RedisStore = Field(default_factory=RedisStore, description="Settings of the provisioned Redis.")
    external: ExternalStore | None = Field(None, description="The store you run.")
    env: str = Field("SESSION_STORE_URL", max_length=128, pattern=ENV_NAME, description=(
        "Environment variable that carries the store's URL into every app container."))


class DisruptionBudget(SpecModel):
    rules = (
        Rule("!(has(self.minAvailable) && has(self.maxUnavailable))",
             "disruptionBudget: set at most one of minAvailable and maxUnavailable",
             lambda d: d.min_available is None or d.max_unavailable is None),
    )
    enabled: bool = Field(True, description="Create a PodDisruptionBudget for the app.")
    min_available: IntOrString | None = Field(None, description="Pods that must stay up (number or percent).")
    max_unavailable: IntOrString | None = Field(None, description=(
        "Pods that may be down at once (number or percent); default 1 when neither is set."))


class Headroom(SpecModel):
    """Room kept free for the next scale-out, so that new replicas start without waiting for a
    node: a CapacityBuffer where the cluster serves that API, else low-priority placeholder pods
    that the app's pods preempt."""

    rules = (
        Rule("!(has(self.replicas) && has(self.percent))",
             "headroom: set at most one of replicas and percent",
             lambda h: h.replicas is None or h.percent is None),
        Rule("!has(self.minReplicas) || has(self.percent)",
             "headroom.minReplicas is the floor of headroom.percent: set percent with it",
             lambda h: h.min_replicas is None or h.percent is not None, ".minReplicas"),
    )
    replicas: int | None = Field(None, ge=0, le=1000, description=(
        "A fixed number of pods' worth of room, each sized like one of the app's pods."))
    percent: int | None = Field(None, ge=1, le=1000, description=(
        "Room as a percent of the app's current replica count, rounded up; follows the app as it scales."))
    min_replicas: int | None = Field(None, ge=0, le=1000, description=(
        "Floor of the room asked by percent (default 1)."))
    mechanism: Literal["Auto", "CapacityBuffer", "Placeholders"] = Field("Auto", description=(
        "How the room is kept. Auto: a CapacityBuffer (autoscaling.x-k8s.io/v1beta1) where the cluster serves "
        "that API, else placeholder pods. Placeholders suits a cluster whose autoscaler has buffers turned off."))
    priority_class_name: str | None = Field(None, max_length=253, pattern=DNS_SUBDOMAIN, description=(
        "PriorityClass of the placeholder pods (default: the one the chart installs, value -1). Its value "
        "must be lower than the app pods' priority, or they cannot preempt the placeholders."))

    def pods(self, current: int) -> int:
        """Pods' worth of room for an app of `current` replicas."""
        if self.replicas is not None:
            return self.replicas
        if self.percent is None:
            return 0
        return max(1 if self.min_replicas is None else self.min_replicas, -(-max(current, 0) * self.percent // 100))


class PoolCapacity(SpecModel):
    concurrency: int | None = Field(None, ge=1, le=100000, description="Overrides capacity.concurrency.")
    queue_limit: int | None = Field(None, ge=0, le=1000000, description="Overrides capacity.queueLimit.")


# Suffixes of Spillway's own children: a pool of one of these names would collide with them.
RESERVED_POOL_NAMES = ("haproxy", "backends", "balancer", "redis", "sentinel", "headroom")


class Pool(SpecModel):
    """A group of replicas on different hardware: its own Deployment, its share of traffic."""

    rules = (
        Rule("!(self.name in " + str(list(RESERVED_POOL_NAMES)) + ")",
             "pool name must not be one of " + ", ".join(RESERVED_POOL_NAMES) + " (Spillway's own objects use them)",
             lambda p: p.name not in RESERVED_POOL_NAMES, ".name"),
        Rule("!self.name.endsWith('-headroom')",
             "pool name must not end in -headroom (the placeholders of pool NAME are <service>-NAME-headroom)",
             lambda p: not p.name.endswith("-headroom"), ".name"),
    )

    name: str = Field(max_length=20, pattern=DNS_LABEL, description="Pool name, a suffix of its Deployment.")
    weight: int = Field(1, ge=1, le=100, description="Share of traffic and of replicas.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Nodes this pool runs on.")
    capacity: PoolCapacity = Field(default_factory=PoolCapacity, description="Per-replica capacity of this pool.")


class ScalableServiceSpec(SpecModel):
    rules = (
        Rule("has(self.template) != has(self.targetRef)",
             "set exactly one of template and targetRef",
             lambda s: (s.template is None) != (s.target_ref is None)),
        Rule("!has(self.targetRef) || size(self.pools) == 0",
             "pools need template: an adopted Deployment (targetRef) cannot be split into pools",
             lambda s: s.target_ref is None or not s.pools, ".pools"),
        Rule("!has(self.balancing.algorithm) || self.balancing.algorithm != 'Weighted' || size(self.pools) > 0",
             "balancing.algorithm Weighted needs at least one entry in pools",
             lambda s: s.balancing.algorithm != "Weighted" or bool(s.pools), ".balancing.algorithm"),
        Rule("!has(self.scaling.onMetricsUnavailable.fallbackReplicas)"
             " || (self.scaling.onMetricsUnavailable.fallbackReplicas >= self.replicas.min"
             " && self.scaling.onMetricsUnavailable.fallbackReplicas <= self.replicas.max)",
             "scaling.onMetricsUnavailable.fallbackReplicas must lie between replicas.min and replicas.max",
             lambda s: s.scaling.on_metrics_unavailable.fallback_replicas is None
             or s.replicas.min <= s.scaling.on_metrics_unavailable.fallback_replicas <= s.replicas.max,
             ".scaling.onMetricsUnavailable.fallbackReplicas"),
    )
    template: PodTemplate | None = Field(None, description=(
        "Pod template (a PodTemplateSpec) of the Deployment Spillway creates and owns."))
    target_ref: TargetRef | None = Field(None, description=(
        "An existing Deployment to adopt instead of template: Spillway sets only its replicas."))
    port: IntOrString = Field("http", description="Container port (name or number) that serves traffic.")
    service_port: int = Field(80, ge=1, le=65535, description="Port of the Service in front of the replicas.")
    replicas: Replicas = Field(default_factory=Replicas, description="Bounds of the replica count.")
    capacity: Capacity = Field(default_factory=Capacity, description="What one replica holds.")
    scaling: Scaling = Field(default_factory=Scaling, description="When and how fast to scale.")
    balancing: Balancing = Field(default_factory=Balancing, description="How traffic is spread.")
    session_store: SessionStore = Field(default_factory=SessionStore, description="Where sessions live.")
    disruption_budget: DisruptionBudget = Field(default_factory=DisruptionBudget, description=(
        "PodDisruptionBudget of the app."))
    headroom: Headroom = Field(default_factory=Headroom, description=(
        "Room kept free on the nodes so that a scale-out starts at once (none by default)."))
    pools: list[Pool] = Field(default_factory=list, max_length=8, description=(
        "Heterogeneous replicas: each pool is a Deployment from the same template with its overrides."),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})

    @model_validator(mode="after")
    def _check_template(self) -> ScalableServiceSpec:
        """What CEL cannot see inside the schemaless pod template, checked here."""
        if self.template is None:
            return self
        containers = (self.template.get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers or not all(
            isinstance(c, dict) and c.get("name") and c.get("image") for c in containers
        ):
            raise ValueError("template.spec.containers must list at least one container with a name and an image")
        if isinstance(self.port, str):
            names = {p.get("name") for c in containers for p in c.get("ports") or [] if isinstance(p, dict)}
            if self.port not in names:
                raise ValueError(f"port {self.port!r} is not the name of a port of any container in template")
        return self
