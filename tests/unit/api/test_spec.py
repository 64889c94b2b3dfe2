from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from spillway.api import SpecError, parse_spec
from tests.unit.conftest import minimal_spec

# (case name, spec overrides, the exact message). Shared with the integration suite, which
# proves the API server refuses the same resources (`api_server_refuses` marks those the schema
# or CEL can see; the others only the operator can judge, inside the schemaless pod template).
INVALID: list[tuple[str, dict[str, Any], str, bool]] = [
    ("min over max", {"replicas": {"min": 5, "max": 3}},
     "spec.replicas: replicas.min must be less than or equal to replicas.max", True),
    ("min zero", {"replicas": {"min": 0}},
     "spec.replicas.min: Input should be greater than or equal to 1", True),
    ("template and targetRef", {"targetRef": {"name": "legacy"}},
     "spec: set exactly one of template and targetRef", True),
    ("neither template nor targetRef", {"template": None},
     "spec: set exactly one of template and targetRef", True),
    ("bad duration", {"capacity": {"timeout": "30 seconds"}},
     "spec.capacity.timeout: '30 seconds' is not a duration: use a number with a unit of ms, s, m or h, "
     "such as 250ms, 15s, 5m or 1h30m", True),
    ("zero timeout", {"capacity": {"timeout": "0s"}},
     "spec.capacity: capacity.timeout must be greater than 0s", True),
    ("interval too short", {"scaling": {"interval": "500ms"}},
     "spec.scaling: scaling.interval must be at least 1s", True),
    ("quantile one", {"scaling": {"targets": {"latency": {"quantile": 1, "objective": "250ms"}}}},
     "spec.scaling.targets.latency.quantile: Input should be less than 1", True),
    ("quantile zero", {"scaling": {"targets": {"latency": {"quantile": 0, "objective": "250ms"}}}},
     "spec.scaling.targets.latency.quantile: Input should be greater than 0", True),
    ("latency without objective", {"scaling": {"targets": {"latency": {"quantile": 0.99}}}},
     "spec.scaling.targets.latency.objective: Field required", True),
    ("utilization over one", {"scaling": {"targets": {"utilization": 1.5}}},
     "spec.scaling.targets.utilization: Input should be less than or equal to 1", True),
    ("unknown metrics source", {"scaling": {"metricsSource": "Datadog"}},
     "spec.scaling.metricsSource: Input should be 'HAProxy', 'SpringBoot', 'Istio' or 'Custom'", True),
    ("custom without queries", {"scaling": {"metricsSource": "Custom"}},
     "spec.scaling: metricsSource Custom needs at least one query in scaling.queries", True),
    ("fallback without count", {"scaling": {"onMetricsUnavailable": {"action": "Fallback"}}},
     "spec.scaling.onMetricsUnavailable: onMetricsUnavailable.action Fallback needs fallbackReplicas", True),
    ("fallback out of bounds", {"replicas": {"min": 2, "max": 5},
                                "scaling": {"onMetricsUnavailable": {"action": "Fallback", "fallbackReplicas": 9}}},
     "spec: scaling.onMetricsUnavailable.fallbackReplicas must lie between replicas.min and replicas.max", True),
    ("two prometheus auths", {"scaling": {"prometheus": {
        "url": "http://prom:9090", "bearerTokenSecretRef": {"name": "t", "key": "token"},
        "basicAuthSecretRef": {"name": "b"}}}},
     "spec.scaling.prometheus: prometheus: set at most one of bearerTokenSecretRef and basicAuthSecretRef", True),
    ("prometheus url without scheme", {"scaling": {"prometheus": {"url": "prom:9090"}}},
     "spec.scaling.prometheus.url: String should match pattern "
     "'^https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:=,;-]*)?$'", True),
    ("prometheus url with credentials", {"scaling": {"prometheus": {"url": "http://user:secret@prom:9090"}}},
     "spec.scaling.prometheus.url: String should match pattern "
     "'^https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:=,;-]*)?$'", True),
    ("prometheus timeout over 30s", {"scaling": {"prometheus": {"url": "http://prom:9090", "timeout": "31s"}}},
     "spec.scaling.prometheus: prometheus.timeout must be at most 30s", True),
    ("cookie on service", {"balancing": {"provider": "Service", "affinity": {"type": "Cookie"}}},
     "spec.balancing: affinity.type Cookie needs a provider that sets cookies (HAProxy, GatewayAPI, "
     "EnvoyGateway, Istio or NginxGatewayFabric); the Service provider supports ClientIP only", True),
    ("client ip ttl over a day", {"balancing": {"affinity": {"type": "ClientIP", "ttl": "25h"}}},
     "spec.balancing: affinity.ttl must be at most 24h with the Service provider (kube-proxy's limit)", True),
    ("gateway without parents", {"balancing": {"provider": "GatewayAPI"}},
     "spec.balancing: provider GatewayAPI, EnvoyGateway and NginxGatewayFabric need at least one "
     "gateway.parentRefs entry", True),
    ("unknown algorithm", {"balancing": {"algorithm": "Fastest"}},
     "spec.balancing.algorithm: Input should be 'RoundRobin', 'Random', 'LeastConnection', 'Weighted' "
     "or 'ConsistentHash'", True),
    ("weighted without pools", {"balancing": {"provider": "HAProxy", "algorithm": "Weighted"}},
     "spec: balancing.algorithm Weighted needs at least one entry in pools", True),
    ("hash header without name", {"balancing": {"hash": {"source": "Header"}}},
     "spec.balancing.hash: hash.name is required when hash.source is Header or Cookie", True),
    ("single haproxy", {"balancing": {"provider": "HAProxy", "haproxy": {"replicas": 1}}},
     "spec.balancing.haproxy.replicas: Input should be greater than or equal to 2", True),
    ("external store without secret", {"sessionStore": {"type": "External"}},
     "spec.sessionStore: sessionStore.type External needs sessionStore.external.urlSecretRef", True),
    ("bad memory size", {"sessionStore": {"type": "Redis", "redis": {"maxMemory": "lots"}}},
     "spec.sessionStore.redis.maxMemory: 'lots' is not a quantity: use a number with an optional suffix "
     "such as 256Mi, 1Gi or 500M", True),
    ("bad eviction policy", {"sessionStore": {"type": "Redis", "redis": {"evictionPolicy": "lru"}}},
     "spec.sessionStore.redis.evictionPolicy: Input should be 'noeviction', 'allkeys-lru', 'volatile-lru', "
     "'allkeys-lfu', 'volatile-lfu', 'allkeys-random', 'volatile-random' or 'volatile-ttl'", True),
    ("bad env name", {"sessionStore": {"env": "SESSION-URL"}},
     "spec.sessionStore.env: String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'", True),
    ("both budgets", {"disruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}},
     "spec.disruptionBudget: disruptionBudget: set at most one of minAvailable and maxUnavailable", True),
    ("pools with targetRef", {"template": None, "targetRef": {"name": "legacy"}, "pools": [{"name": "big"}]},
     "spec: pools need template: an adopted Deployment (targetRef) cannot be split into pools", True),
    ("pool name not a label", {"pools": [{"name": "Big_Pool"}]},
     "spec.pools[0].name: String should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'", True),
    ("pool weight zero", {"pools": [{"name": "big", "weight": 0}]},
     "spec.pools[0].weight: Input should be greater than or equal to 1", True),
    ("pool name ending in -headroom", {"pools": [{"name": "a-headroom"}]},
     "spec.pools[0]: pool name must not end in -headroom (the placeholders of pool NAME are <service>-NAME-headroom)",
     True),
    ("headroom replicas and percent", {"headroom": {"replicas": 2, "percent": 20}},
     "spec.headroom: headroom: set at most one of replicas and percent", True),
    ("headroom floor without percent", {"headroom": {"replicas": 2, "minReplicas": 1}},
     "spec.headroom: headroom.minReplicas is the floor of headroom.percent: set percent with it", True),
    ("headroom percent zero", {"headroom": {"percent": 0}},
     "spec.headroom.percent: Input should be greater than or equal to 1", True),
    ("unknown headroom mechanism", {"headroom": {"mechanism": "Buffer"}},
     "spec.headroom.mechanism: Input should be 'Auto', 'CapacityBuffer' or 'Placeholders'", True),
    ("no containers", {"template": {"spec": {"containers": []}}},
     "spec: template.spec.containers must list at least one container with a name and an image", False),
    ("unknown port name", {"port": "web"},
     "spec: port 'web' is not the name of a port of any container in template", False),
]

# Every spec string that reaches a config file, a script, a query or another API's object, with
# a spec that is valid but for the value put there (shared with the integration suite, which
# proves the API server refuses each hostile value with the field named). The PromQL overrides
# (scaling.queries) are the user's own queries, sent URL-encoded and spliced into nothing, so they
# take any text.
_PARENT = {"name": "gw", "namespace": "infra", "sectionName": "web", "kind": "Gateway",
           "group": "gateway.networking.k8s.io"}


def _parent(field: str, value: str) -> dict[str, Any]:
    return {"balancing": {"provider": "GatewayAPI", "gateway": {"parentRefs": [{**_PARENT, field: value}]}}}


def _secret_key(ref: str, value: str) -> dict[str, Any]:
    return {"scaling": {"prometheus": {"url": "http://prom:9090", ref: {"name": "s", "key": value}}}}


HOSTILE_FIELDS: dict[str, Any] = {
    "spec.balancing.hash.name": lambda v: {"balancing": {
        "provider": "HAProxy", "algorithm": "ConsistentHash", "hash": {"source": "Header", "name": v}}},
    "spec.balancing.affinity.cookieName": lambda v: {"balancing": {
        "provider": "HAProxy", "affinity": {"type": "Cookie", "cookieName": v}}},
    "spec.balancing.haproxy.image": lambda v: {"balancing": {"provider": "HAProxy", "haproxy": {"image": v}}},
    "spec.balancing.gateway.parentRefs[0].name": lambda v: _parent("name", v),
    "spec.balancing.gateway.parentRefs[0].namespace": lambda v: _parent("namespace", v),
    "spec.balancing.gateway.parentRefs[0].sectionName": lambda v: _parent("sectionName", v),
    "spec.balancing.gateway.parentRefs[0].kind": lambda v: _parent("kind", v),
    "spec.balancing.gateway.parentRefs[0].group": lambda v: _parent("group", v),
    "spec.balancing.gateway.hostnames[0]": lambda v: {"balancing": {
        "provider": "GatewayAPI", "gateway": {"parentRefs": [{"name": "gw"}], "hostnames": [v]}}},
    "spec.scaling.prometheus.url": lambda v: {"scaling": {"prometheus": {"url": f"http://prom:9090/api{v}"}}},
    "spec.scaling.prometheus.bearerTokenSecretRef.key": lambda v: _secret_key("bearerTokenSecretRef", v),
    "spec.scaling.prometheus.caSecretRef.key": lambda v: _secret_key("caSecretRef", v),
    "spec.sessionStore.redis.image": lambda v: {"sessionStore": {"type": "Redis", "redis": {"image": v}}},
    "spec.sessionStore.redis.persistence.storageClassName": lambda v: {"sessionStore": {
        "type": "Redis", "redis": {"persistence": {"storageClassName": v}}}},
    "spec.sessionStore.external.urlSecretRef.key": lambda v: {"sessionStore": {
        "type": "External", "external": {"urlSecretRef": {"name": "s", "key": v}}}},
    "spec.sessionStore.env": lambda v: {"sessionStore": {"env": v}},
    "spec.headroom.priorityClassName": lambda v: {"headroom": {"replicas": 1, "priorityClassName": v}},
    "spec.targetRef.name": lambda v: {"template": None, "targetRef": {"name": v}},
    "spec.pools[0].name": lambda v: {"pools": [{"name": v}]},
}
# A newline, a carriage return, a space, both quotes, a comment, braces, parentheses, a backslash
# and a non-ASCII letter, each inside an otherwise valid value.
HOSTILE_VALUES = ["a\nb", "a\rb", "a b", 'a"b', "a'b", "a#b", "a{b", "a}b", "a(b", "a)b", "a\\b", "aéb"]


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_a_valid_value_in_each_field_parses(field: str) -> None:
    parse_spec(minimal_spec(**HOSTILE_FIELDS[field]("ab")))


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_every_hostile_value_is_refused_with_the_field_named(field: str) -> None:
    for value in HOSTILE_VALUES:
        with pytest.raises(SpecError) as caught:
            parse_spec(minimal_spec(**HOSTILE_FIELDS[field](value)))
        assert str(caught.value).startswith(f"{field}: "), (value, str(caught.value))


@pytest.mark.parametrize(("overrides", "message"), [(c[1], c[2]) for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_spec_is_refused_with_a_message_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(minimal_spec(**overrides))
    assert str(caught.value) == message


def test_minimal_spec_gets_the_documented_defaults() -> None:
    spec = parse_spec(minimal_spec())
    assert (spec.replicas.min, spec.replicas.max) == (1, 10)
    assert (spec.capacity.concurrency, spec.capacity.queue_limit) == (200, 100)
    assert spec.capacity.timeout == timedelta(seconds=30)
    assert spec.scaling.interval == timedelta(seconds=15)
    assert spec.scaling.behavior.scale_up.max_step_pods == 4
    assert spec.scaling.behavior.scale_down.stabilization_window == timedelta(minutes=5)
    assert spec.scaling.on_metrics_unavailable.action == "Hold"
    assert spec.balancing.provider == "Service" and spec.balancing.algorithm is None
    assert spec.session_store.type == "None"
    assert spec.port == "http"


def test_design_example_parses() -> None:
    spec = parse_spec(minimal_spec(
        replicas={"min": 2, "max": 40},
        capacity={"concurrency": 200, "queueLimit": 100, "timeout": "30s"},
        scaling={
            "prometheus": {"url": "http://prometheus.monitoring:9090", "timeout": "5s"},
            "interval": "15s", "metricsSource": "HAProxy",
            "targets": {"queuePerReplica": 10, "latency": {"quantile": 0.95, "objective": "250ms"},
                        "utilization": 0.7},
            "behavior": {"tolerance": 0.1,
                         "scaleUp": {"stabilizationWindow": "0s", "maxStepPercent": 100, "maxStepPods": 4,
                                     "period": "15s"},
                         "scaleDown": {"stabilizationWindow": "300s", "maxStepPercent": 10, "period": "60s"}},
            "onMetricsUnavailable": {"action": "Hold", "fallbackReplicas": None},
        },
        balancing={"provider": "HAProxy", "algorithm": "Weighted",
                   "affinity": {"type": "Cookie", "cookieName": "SPILLWAY", "ttl": "1h"}, "haproxy": {"replicas": 2}},
        sessionStore={"type": "Redis", "redis": {"mode": "Sentinel", "replicas": 2,
                                                 "persistence": {"appendOnly": True, "fsync": "everysec",
                                                                 "size": "1Gi"},
                                                 "maxMemory": "256Mi", "evictionPolicy": "volatile-lru"}},
        disruptionBudget={"minAvailable": 1},
        pools=[{"name": "large", "weight": 3, "nodeSelector": {"node-size": "large"}, "capacity": {"concurrency": 400}},
               {"name": "small", "weight": 1, "nodeSelector": {"node-size": "small"}}],
    ))
    assert spec.scaling.targets.latency is not None
    assert spec.scaling.targets.latency.objective == timedelta(milliseconds=250)
    assert spec.scaling.behavior.scale_down.stabilization_window == timedelta(seconds=300)
    assert [p.weight for p in spec.pools] == [3, 1]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(minimal_spec(replicaz={"min": 1}))
    assert str(caught.value) == "spec.replicaz: Extra inputs are not permitted"


def test_several_problems_are_all_named() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(minimal_spec(capacity={"concurrency": 0}, servicePort=70000))
    assert caught.value.problems == [
        "spec.servicePort: Input should be less than or equal to 65535",
        "spec.capacity.concurrency: Input should be greater than or equal to 1",
    ]


def test_numeric_port_needs_no_name() -> None:
    assert parse_spec(minimal_spec(port=8080)).port == 8080


def test_serialized_spec_parses_back_to_the_same_model() -> None:
    spec = parse_spec(minimal_spec(scaling={"interval": "1m30s"}))
    dumped = spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert dumped["scaling"]["interval"] == "1m30s"
    assert parse_spec(dumped) == spec


@pytest.mark.parametrize(("room", "pods"), [
    ({}, 0), ({"replicas": 3}, 3), ({"percent": 25}, 3), ({"percent": 1}, 1), ({"percent": 1, "minReplicas": 0}, 1),
    ({"percent": 10, "minReplicas": 5}, 5),
])
def test_headroom_asks_a_fixed_count_or_a_percent_above_a_floor(room: dict[str, Any], pods: int) -> None:
    spec = parse_spec(minimal_spec(headroom=room))
    assert spec.headroom.mechanism == "Auto"
    assert spec.headroom.pods(10) == pods  # an app of 10 replicas
