"""The Service and HAProxy providers: what each renders for every algorithm and affinity, and
what it says it cannot honour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api import SpecError, parse_spec
from spillway.api.spec import HTTP_TOKEN, ScalableServiceSpec
from spillway.resources.balancing import Context, haproxy, render, service
from spillway.resources.balancing.base import Plan
from spillway.resources.meta import SAFE_TO_EVICT, Owner
from spillway.resources.workload import pool_selector
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="u")
POOLS = [{"name": "large", "weight": 3, "capacity": {"concurrency": 40, "queueLimit": 20}},
         {"name": "small", "weight": 1}]
SELECTOR = {"app.kubernetes.io/instance": "checkout"}


def _plan(**overrides: Any) -> tuple[ScalableServiceSpec, Plan]:
    spec = parse_spec(minimal_spec(**overrides))
    pools = {p.name: pool_selector(OWNER, p) for p in spec.pools}
    return spec, render(OWNER, spec, Context(selector=SELECTOR, pool_selectors=pools))


def _objects(plan: Plan, kind: str) -> list[dict[str, Any]]:
    return [o for o in plan.objects if o["kind"] == kind]


def _backend(plan: Plan) -> list[str]:
    config = _objects(plan, "ConfigMap")[0]["data"]["haproxy.cfg"]
    section = config.split("\nbackend checkout\n", 1)[1]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    # Retries after a replica closed without answering are for requests safe to repeat only.
    assert lines[0] == "http-request disable-l7-retry unless { method GET HEAD OPTIONS }"
    return lines[1:]


# --- Service ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("balancing", "reason", "message"), [
    ({}, "ServiceBalancing", "Service checkout spreads traffic at random across the ready replicas (kube-proxy)."),
    ({"algorithm": "Random", "affinity": {"type": "ClientIP", "ttl": "30m"}}, "ServiceBalancing",
     "Service checkout spreads traffic at random across the ready replicas (kube-proxy); a client stays on one "
     "replica by its address for 30m."),
    ({"algorithm": "LeastConnection"}, "AlgorithmNotHonoured",
     "Service checkout spreads traffic at random across the ready replicas (kube-proxy); balancing.algorithm "
     "LeastConnection is not applied: kube-proxy has no per-Service algorithm. Provider HAProxy applies it."),
], ids=["default", "client-ip", "least-connection"])
def test_service_says_what_kube_proxy_honours(balancing: dict[str, Any], reason: str, message: str) -> None:
    _, plan = _plan(balancing=balancing)
    assert (plan.verdict.reason, plan.verdict.message) == (reason, message)
    assert plan.verdict.honoured == (reason != "AlgorithmNotHonoured")
    assert [o["kind"] for o in plan.objects] == ["Service"]
    assert (plan.balancer.provider, plan.balancer.algorithm) == ("Service", "Random")


def test_service_client_ip_affinity_carries_its_timeout() -> None:
    _, plan = _plan(balancing={"affinity": {"type": "ClientIP", "ttl": "2h"}})
    spec = plan.objects[0]["spec"]
    assert spec["sessionAffinity"] == "ClientIP"
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 7200}}
    assert spec["selector"] == SELECTOR


def test_weighted_pools_behind_a_service_follow_their_weights() -> None:
    _, plan = _plan(balancing={"algorithm": "Weighted"}, pools=POOLS)
    assert (plan.verdict.honoured, plan.verdict.reason) == (True, "ServiceBalancing")
    assert "share of traffic follows its weight" in plan.verdict.message
    assert service.SUPPORT.algorithms["Weighted"]


# --- HAProxy ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("balancing", "lines"), [
    ({}, ["balance leastconn"]),
    ({"algorithm": "RoundRobin"}, ["balance roundrobin"]),
    ({"algorithm": "Random"}, ["balance random"]),
    ({"algorithm": "LeastConnection"}, ["balance leastconn"]),
    ({"algorithm": "ConsistentHash"}, ["balance source", "hash-type consistent"]),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}},
     ["balance hdr(X-User)", "hash-type consistent"]),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "JSESSIONID"}},
     ["balance hash req.cook(JSESSIONID)", "hash-type consistent"]),
], ids=["default", "round-robin", "random", "least-connection", "hash-source", "hash-header", "hash-cookie"])
def test_haproxy_always_writes_an_explicit_balance(balancing: dict[str, Any], lines: list[str]) -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", **balancing})
    backend = _backend(plan)
    assert backend[: len(lines)] == lines
    assert not any(line.startswith(("cookie ", "stick")) for line in backend)


def test_haproxy_servers_come_from_srv_records_with_the_replica_capacity() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy"}, replicas={"min": 2, "max": 12},
                    capacity={"concurrency": 8, "queueLimit": 4, "timeout": "2500ms"})
    backend = _backend(plan)
    assert backend[-1] == ("server-template app- 12 _http._tcp.checkout-backends.shop.svc.cluster.local resolvers "
                           "cluster resolve-prefer ipv4 resolve-opts ignore-weight check inter 1s fall 2 rise 1 observe layer4 "
                           "error-limit 1 on-error mark-down maxconn 8")
    config = _objects(plan, "ConfigMap")[0]["data"]["haproxy.cfg"]
    assert "    timeout queue 2500ms\n" in config and "    timeout server 2500ms\n" in config
    # The bound: every usable server's concurrency plus its queue.
    assert "nbsrv(checkout),mul(12)" in config
    headless = [s for s in _objects(plan, "Service") if s["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == ["checkout-backends"]
    assert headless[0]["spec"]["selector"] == SELECTOR
    assert headless[0]["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}]


def test_weighted_pools_get_their_weight_and_their_own_capacity() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "algorithm": "Weighted"}, pools=POOLS,
                    capacity={"concurrency": 10, "queueLimit": 5})
    servers = [line for line in _backend(plan) if line.startswith("server-template")]
    assert servers[0].startswith("server-template large- 10 _http._tcp.checkout-large-backends.shop.svc.cluster.local")
    assert servers[0].endswith("maxconn 40 weight 3")
    assert servers[1].endswith("maxconn 10 weight 1")
    headless = {s["metadata"]["name"]: s["spec"]["selector"] for s in _objects(plan, "Service")
                if s["spec"].get("clusterIP") == "None"}
    assert headless["checkout-small-backends"]["spillway.io/pool"] == "small"


def test_pools_without_weighted_keep_equal_server_weights() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "algorithm": "RoundRobin"}, pools=POOLS)
    assert not any(" weight " in line for line in _backend(plan))


def test_cookie_affinity_uses_a_dynamic_cookie_with_the_generated_key() -> None:
    spec, plan = _plan(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie", "cookieName": "SID",
                                                                       "ttl": "90m"}})
    assert _backend(plan)[1:3] == ["cookie SID insert indirect nocache httponly dynamic maxlife 5400s",
                                   'dynamic-cookie-key "${SPILLWAY_COOKIE_KEY}"']
    container = _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "SPILLWAY_COOKIE_KEY", "valueFrom": {"secretKeyRef": {
        "name": "checkout-balancer", "key": "cookie-key"}}}]
    assert haproxy.needs_cookie_key(spec)
    secret = haproxy.cookie_secret(OWNER, "k" * 64)
    assert secret["metadata"]["name"] == "checkout-balancer" and secret["stringData"] == {"cookie-key": "k" * 64}
    assert "k" * 64 not in repr(plan)  # the key never enters the rendered objects


def test_cookie_affinity_yields_to_another_replica_under_load_only_when_sessions_are_shared() -> None:
    cookie = {"provider": "HAProxy", "affinity": {"type": "Cookie"}}
    servers = [line for line in _backend(_plan(balancing=cookie, sessionStore={"type": "Redis"})[1])
               if line.startswith("server-template")]
    # A replica's worth waiting for the user's replica, then another: the store has the session.
    assert servers and all(" maxconn 200 maxqueue 200" in line for line in servers)
    alone = _backend(_plan(balancing=cookie)[1])
    assert not any("maxqueue" in line for line in alone), "without a store, moving a user logs them out"
    no_affinity = _backend(_plan(balancing={"provider": "HAProxy"}, sessionStore={"type": "Redis"})[1])
    assert not any("maxqueue" in line for line in no_affinity)


def test_client_ip_affinity_sticks_at_haproxy_and_at_its_service() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "affinity": {"type": "ClientIP", "ttl": "48h"}})
    assert _backend(plan)[1:3] == ["stick-table type ipv6 size 1m expire 172800s", "stick on src"]
    front = next(s for s in _objects(plan, "Service") if s["metadata"]["name"] == "checkout")
    assert front["spec"]["sessionAffinity"] == "ClientIP"
    assert front["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 86400}}  # kube-proxy's cap


def test_the_balancer_is_never_a_single_point_of_failure() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "haproxy": {"replicas": 3}})
    deployment = _objects(plan, "Deployment")[0]
    assert deployment["metadata"]["name"] == "checkout-haproxy"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == \
        "kubernetes.io/hostname"
    pdb = _objects(plan, "PodDisruptionBudget")[0]
    assert pdb["spec"] == {"selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
                           "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    # Stateless: a cluster autoscaler may drain its node within the PDB.
    assert deployment["spec"]["template"]["metadata"]["annotations"][SAFE_TO_EVICT] == "true"
    front = next(s for s in _objects(plan, "Service") if s["metadata"]["name"] == "checkout")
    assert front["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_balancer_pods_meet_the_restricted_profile_and_are_scraped() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "haproxy": {
        "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "edge", "operator": "Exists"}]}})
    template = _objects(plan, "Deployment")[0]["spec"]["template"]
    pod = template["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"] == haproxy.DEFAULT_RESOURCES
    assert pod["nodeSelector"] == {"disk": "ssd"} and pod["tolerations"] == [{"key": "edge", "operator": "Exists"}]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "8405"
    # Pod discovery maps this label to the preset's app_kubernetes_io_instance.
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == "checkout"
    monitor = _objects(plan, "PodMonitor")[0]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"  # the default scaling interval
    assert next(r for r in plan.requires if r.kind == "PodMonitor").optional


def test_a_config_change_is_a_new_immutable_config_map_that_rolls_the_balancer_pods() -> None:
    def mounted(**overrides: Any) -> str:
        _, plan = _plan(**overrides)
        (config_map,) = _objects(plan, "ConfigMap")
        assert config_map["immutable"] is True
        volumes = _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
        name = next(v["configMap"]["name"] for v in volumes if v["name"] == "config")
        assert name == config_map["metadata"]["name"] == haproxy.config_map_name(OWNER, config_map["data"]["haproxy.cfg"])
        return str(name)

    base = mounted(balancing={"provider": "HAProxy"})
    assert base.startswith("checkout-haproxy-") and len(base) == len("checkout-haproxy-") + 10
    assert mounted(balancing={"provider": "HAProxy"}) == base
    assert mounted(balancing={"provider": "HAProxy", "algorithm": "Random"}) != base
    assert mounted(balancing={"provider": "HAProxy"}, capacity={"concurrency": 7}) != base


def test_the_config_is_checked_by_the_images_haproxy_before_the_balancer_starts() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie"}})
    pod = _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]
    (check,) = pod["initContainers"]
    (balancer,) = pod["containers"]
    assert check["command"][:2] == ["haproxy", "-c"] and check["command"][-1] == balancer["command"][-1]
    assert check["image"] == balancer["image"]
    # The same file, the same environment (the cookie key the file names): what it checks is what runs.
    assert (check["volumeMounts"], check["env"]) == (balancer["volumeMounts"], balancer["env"])
    assert check["securityContext"] == balancer["securityContext"]
    assert check["securityContext"]["readOnlyRootFilesystem"] and check["securityContext"]["runAsNonRoot"]


def test_every_object_belongs_to_the_service() -> None:
    _, plan = _plan(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie"}}, pools=POOLS)
    for obj in plan.objects:
        assert obj["metadata"]["namespace"] == "shop"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "checkout"


def test_readiness_follows_the_balancer_deployment() -> None:
    spec, plan = _plan(balancing={"provider": "HAProxy"})
    deployment = {**_objects(plan, "Deployment")[0], "status": {"readyReplicas": 0}}
    assert haproxy.readiness(spec, [deployment]) == (False, "0 of 2 HAProxy replicas are ready.")
    deployment["status"] = {"readyReplicas": 1}
    assert haproxy.readiness(spec, [deployment]) == (True, "1 of 2 HAProxy replicas are ready.")


def test_long_names_stay_valid_service_names() -> None:
    owner = Owner(name="a" * 60, namespace="shop", uid="u")
    spec = parse_spec(minimal_spec(balancing={"provider": "HAProxy"}))
    plan = haproxy.render(owner, spec, Context(selector=SELECTOR))
    names = [o["metadata"]["name"] for o in plan.objects if o["kind"] == "Service"]
    assert all(len(n) <= 63 and n[-1].isalnum() for n in names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(("interval", "scrape"), [
    (timedelta(seconds=1), "5s"), (timedelta(seconds=15), "15s"), (timedelta(seconds=22.4), "22s"),
    (timedelta(minutes=10), "60s")])
def test_the_pod_monitor_scrapes_at_the_scaling_interval_within_bounds(interval: timedelta, scrape: str) -> None:
    assert haproxy.scrape_interval(interval) == scrape


def test_a_balancer_pod_is_ready_once_it_has_a_server_or_its_grace_has_passed() -> None:
    """Readiness asks HAProxy whether the backend has a usable server, for the first
    READY_GRACE_SECONDS; liveness only whether HAProxy answers."""
    _, plan = _plan(balancing={"provider": "HAProxy"})
    config = _objects(plan, "ConfigMap")[0]["data"]["haproxy.cfg"]
    container = _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "    set-var proc.spillway_boot date()\n" in config
    metrics = config.split("frontend metrics\n", 1)[1].split("\n\n", 1)[0]
    assert ('http-request return status 503 content-type text/plain string "no usable server yet" if '
            f'{{ path /ready }} {{ nbsrv(checkout) eq 0 }} {{ date,sub(proc.spillway_boot) lt '
            f'{haproxy.READY_GRACE_SECONDS} }}') in metrics
    assert metrics.index("path /ready } {") < metrics.index('string "ready" if { path /ready }')


# --- what a spec string can do to haproxy.cfg ------------------------------------------------------

def _config(**overrides: Any) -> str:
    return str(_objects(_plan(**overrides)[1], "ConfigMap")[0]["data"]["haproxy.cfg"])


def _same_structure(config: str, plain: str, value: str, placeholder: str) -> bool:
    """`config` is `plain` with `placeholder` replaced by `value` inside words: the same lines, the
    same words on each, nothing added, split or commented out."""
    lines, plain_lines = config.split("\n"), plain.split("\n")
    if len(lines) != len(plain_lines):
        return False
    for line, plain_line in zip(lines, plain_lines, strict=True):
        words, plain_words = line.split(), plain_line.split()
        if len(words) != len(plain_words) or any(w != p.replace(placeholder, value)
                                                 for w, p in zip(words, plain_words, strict=True)):
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(name=st.from_regex(HTTP_TOKEN, fullmatch=True).filter(lambda n: len(n) <= 256),
       source=st.sampled_from(["Header", "Cookie"]))
def test_no_accepted_hash_name_changes_the_config_structure(name: str, source: str) -> None:
    def balancing(value: str) -> dict[str, Any]:
        return {"provider": "HAProxy", "algorithm": "ConsistentHash", "hash": {"source": source, "name": value}}

    placeholder = "SPILLWAYHASHNAME"
    assert _same_structure(_config(balancing=balancing(name)), _config(balancing=balancing(placeholder)), name,
                           placeholder)


@settings(max_examples=40, deadline=None)
@given(name=st.from_regex(r"^[A-Za-z0-9_-]+$", fullmatch=True).filter(lambda n: len(n) <= 64))
def test_no_accepted_cookie_name_changes_the_config_structure(name: str) -> None:
    def balancing(value: str) -> dict[str, Any]:
        return {"provider": "HAProxy", "affinity": {"type": "Cookie", "cookieName": value}}

    placeholder = "SPILLWAYCOOKIE"
    assert _same_structure(_config(balancing=balancing(name)), _config(balancing=balancing(placeholder)), name,
                           placeholder)


def test_the_structure_check_sees_a_newline_a_space_and_a_comment() -> None:
    plain = _config(balancing={"provider": "HAProxy", "algorithm": "ConsistentHash",
                               "hash": {"source": "Header", "name": "SPILLWAYHASHNAME"}})
    for hostile in ("a\nbackend evil", "a b", "a #b"):
        assert not _same_structure(plain.replace("SPILLWAYHASHNAME", hostile), plain, hostile, "SPILLWAYHASHNAME")


@pytest.mark.parametrize(("balancing", "field"), [
    ({"algorithm": "ConsistentHash", "hash": {"source": "Header", "name": "X-User"}}, "spec.balancing.hash.name"),
    ({"algorithm": "ConsistentHash", "hash": {"source": "Cookie", "name": "SID"}}, "spec.balancing.hash.name"),
    ({"affinity": {"type": "Cookie"}}, "spec.balancing.affinity.cookieName"),
])
def test_the_renderer_refuses_what_the_patterns_should_have_refused(balancing: dict[str, Any], field: str) -> None:
    """The second line: a spec that reached the renderer without its patterns (built, not parsed)."""
    spec = parse_spec(minimal_spec(balancing={"provider": "HAProxy", **balancing}))
    hostile = "a\n    http-request deny"
    part = ({"hash": spec.balancing.hash.model_copy(update={"name": hostile})} if field.endswith("hash.name") else
            {"affinity": spec.balancing.affinity.model_copy(update={"cookie_name": hostile})})
    spec = spec.model_copy(update={"balancing": spec.balancing.model_copy(update=part)})  # copies skip validation
    with pytest.raises(SpecError) as caught:
        render(OWNER, spec, Context(selector=SELECTOR, pool_selectors={}))
    assert str(caught.value).startswith(f"{field}: 'a\\n    http-request deny' cannot be written into haproxy.cfg")


@pytest.mark.parametrize(("replicas", "concurrency", "maxconn", "limit"), [
    (10, 200, 4000, "256Mi"),  # the defaults: 4,000 connections fit in 256Mi
    (100, 200, 31000, "1094Mi"),
    (10_000, 200, 200_000, "6705Mi"),  # maxconn's own ceiling
])
def test_the_balancers_memory_limit_holds_the_connections_its_config_admits(replicas: int, concurrency: int,
                                                                            maxconn: int, limit: str) -> None:
    spec, plan = _plan(replicas={"min": 1, "max": replicas}, capacity={"concurrency": concurrency, "queueLimit": 100},
                       balancing={"provider": "HAProxy"})
    config = _objects(plan, "ConfigMap")[0]["data"]["haproxy.cfg"]
    assert f"    maxconn {maxconn}\n" in config and haproxy.maxconn(spec) == maxconn
    container = _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == limit
    mebibytes = int(limit.removesuffix("Mi"))
    assert mebibytes * 2**20 >= maxconn * haproxy.CONNECTION_BYTES + haproxy.BASE_MEMORY_MI * 2**20


def test_resources_the_user_sets_are_kept_as_they_are() -> None:
    mine = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    _, plan = _plan(replicas={"min": 1, "max": 10_000}, balancing={"provider": "HAProxy", "haproxy": {"resources": mine}})
    assert _objects(plan, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["resources"] == mine
