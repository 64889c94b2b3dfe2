"""The session store in the reconcile: the password kept once, the objects written only when they
differ, the app's env, the role label moved on the sentinels' word, External references checked,
and nothing secret in status or Events."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spillway.api import SpecError, parse_spec
from spillway.reconcile import reconcile
from spillway.resources import sessionstore
from spillway.resources.meta import Owner
from spillway.resources.meta import labels as meta_labels
from spillway.resources.sessionstore import SentinelView
from spillway.sessions import Follower
from tests.unit.conftest import minimal_spec, resource
from tests.unit.fakes import FakeCluster

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OWNER = Owner(name="checkout", namespace="shop", uid="ssvc-uid")
ROLE = sessionstore.ROLE_LABEL
PASSWORDS = iter(f"generated-password-{i:04d}-0123456789abcdef" for i in range(10_000))


class FakeProbe:
    """The sentinels' answers, as the test sets them; counts the questions."""

    def __init__(self, primaries: tuple[str | None, ...] = (), quorum: tuple[bool, ...] = ()) -> None:
        self.view = SentinelView(primaries, quorum)
        self.asked: list[list[str]] = []
        self.passwords: set[str] = set()

    def ask(self, addresses: list[str], port: int, master: str, admin_password: str,
            timeout_seconds: float) -> SentinelView:
        assert (port, master) == (26379, "checkout")
        self.asked.append(addresses)
        self.passwords.add(admin_password)
        return self.view

    acl: list[tuple[list[str], list[str]]]
    refuse: str = ""

    def set_user(self, addresses: list[str], port: int, admin_password: str, user: str, rules: list[str],
                 timeout_seconds: float) -> str:
        assert (port, user) == (6379, "app")
        self.__dict__.setdefault("acl", []).append((addresses, rules))
        return self.refuse


def _host(pod: str) -> str:
    return f"{pod}.checkout-redis.shop.svc"


def _store(**store: Any) -> dict[str, Any]:
    return minimal_spec(sessionStore=store)


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in body["status"]["conditions"] if c["type"] == type_), None)


def _ready_statefulset(cluster: FakeCluster, name: str) -> None:
    found = cluster.objects[("apps/v1", "StatefulSet", "shop", name)]
    found["metadata"]["generation"] = 1
    found["status"] = {"observedGeneration": 1, "readyReplicas": found["spec"]["replicas"]}


def _pods(cluster: FakeCluster, statefulset: str, component: str, count: int, labelled: int | None = None) -> None:
    for i in range(count):
        labels = meta_labels(OWNER, component)
        if labelled == i:
            labels[ROLE] = "primary"
        cluster.objects[("v1", "Pod", "shop", f"{statefulset}-{i}")] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{statefulset}-{i}", "namespace": "shop", "labels": labels},
            "status": {"podIP": f"10.0.{int(component == 'sentinel')}.{i + 10}"}}


def _root(cluster: FakeCluster) -> str:
    """The generated password's Secret, as the first reconcile creates it; returns the password."""
    password = next(PASSWORDS)
    cluster.apply(sessionstore.password_secret(OWNER, password))
    return password


def _reconcile(cluster: FakeCluster, body: dict[str, Any], probe: FakeProbe | None = None,
               at: int = 0) -> int:
    return reconcile(cluster, body, NOW + timedelta(seconds=at), probe).writes


def _password(cluster: FakeCluster) -> str | None:
    return sessionstore.stored_password(cluster.get("v1", "Secret", "shop", "checkout-redis-password"))


def test_standalone_store_is_created_with_a_password_made_once(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Standalone"}))
    _reconcile(cluster, body)
    created = [w for w in cluster.writes if w[0] == "create"]
    assert created == [("create", "Secret", "checkout-redis-password")]
    kinds = {(k, re.sub(r"-[0-9a-f]{10}$", "", n) if k == "ConfigMap" else n)
             for verb, k, n in cluster.writes if verb == "apply"}
    assert {("Secret", "checkout-redis"), ("Secret", "checkout-redis-connection"), ("ConfigMap", "checkout-redis"),
            ("StatefulSet", "checkout-redis"), ("Service", "checkout-redis-primary"),
            ("NetworkPolicy", "checkout-redis")} <= kinds
    password = _password(cluster)
    assert password is not None and len(password) >= 32
    # Quiet: a second reconcile of the unchanged resource writes nothing.
    assert _reconcile(cluster, body, at=30) == 0


def test_the_password_survives_a_spec_edit_and_a_new_operator(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Standalone"}))
    _reconcile(cluster, body)
    first = _password(cluster)
    edited = resource(_store(type="Redis", redis={"mode": "Standalone", "maxMemory": "512Mi"}), generation=2)
    edited["status"] = copy.deepcopy(body["status"])
    _reconcile(cluster, edited, at=30)
    # A restarted operator is a reconcile with nothing in memory: only the cluster remembers.
    _reconcile(cluster, resource(_store(type="Redis", redis={"mode": "Sentinel"}), generation=3), FakeProbe(), at=60)
    assert _password(cluster) == first
    assert [w for w in cluster.writes if w[1:] == ("Secret", "checkout-redis-password")] == [
        ("create", "Secret", "checkout-redis-password")]


@pytest.mark.parametrize("loss", ["emptied", "deleted"])
def test_a_lost_root_password_is_reported_and_nothing_changes(cluster: FakeCluster, loss: str) -> None:
    """Never regenerated while Redis runs with the old one: a new password would reach the app
    and not Redis. CredentialsLost, a Warning, no write but status: not the Secret, not Redis, not
    the app."""
    body = resource(_store(type="Redis", redis={"mode": "Standalone"}))
    _reconcile(cluster, body)
    secret_key = ("v1", "Secret", "shop", "checkout-redis-password")
    if loss == "emptied":
        cluster.objects[secret_key]["data"] = {}
    else:
        del cluster.objects[secret_key]
    others = {k: copy.deepcopy(v) for k, v in cluster.objects.items() if k != secret_key}
    writes = len(cluster.writes)
    _reconcile(cluster, body, at=30)
    assert [w for w in cluster.writes[writes:] if w[0] != "status"] == []
    assert {k: v for k, v in cluster.objects.items() if k != secret_key} == others
    assert _password(cluster) is None
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "CredentialsLost")
    state = "holds no usable password" if loss == "emptied" else "is gone"
    assert condition["message"].startswith(f"Secret 'checkout-redis-password', the session store's root password, "
                                           f"{state} while Redis runs")
    assert ("Warning", "CredentialsLost", condition["message"]) in cluster.events
    # Deleting the Redis StatefulSet starts the store afresh, with a new password.
    del cluster.objects[("apps/v1", "StatefulSet", "shop", "checkout-redis")]
    _reconcile(cluster, body, at=60)
    assert _password(cluster) is not None
    assert _condition(body, "SessionStoreReady")["reason"] != "CredentialsLost"


def _template(cluster: FakeCluster) -> dict[str, Any]:
    found: dict[str, Any] = cluster.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["template"]
    return found


@pytest.mark.parametrize("mode", ["Standalone", "Sentinel"])
def test_the_app_receives_the_connection_by_reference_only(cluster: FakeCluster, mode: str) -> None:
    body = resource(_store(type="Redis", redis={"mode": mode}))
    _reconcile(cluster, body, FakeProbe())
    env = {e["name"]: e for e in _template(cluster)["spec"]["containers"][0]["env"]}
    expected = {"SESSION_STORE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD",
                "SPRING_DATA_REDIS_URL"} | ({"SPRING_DATA_REDIS_SENTINEL_MASTER", "SPRING_DATA_REDIS_SENTINEL_NODES",
                                                "SPRING_DATA_REDIS_SENTINEL_USERNAME",
                                                "SPRING_DATA_REDIS_SENTINEL_PASSWORD"}
                                           if mode == "Sentinel" else set())
    assert set(env) == expected
    for item in env.values():
        assert set(item) == {"name", "valueFrom"}
        assert item["valueFrom"]["secretKeyRef"]["name"] == "checkout-redis-connection"


def test_a_template_setting_a_name_keeps_its_own_value(cluster: FakeCluster) -> None:
    spec = _store(type="Redis", redis={"mode": "Standalone"})
    spec["template"]["spec"]["containers"][0]["env"] = [{"name": "REDIS_HOST", "value": "mine"}]
    _reconcile(cluster, resource(spec))
    env = _template(cluster)["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == "REDIS_HOST"] == [{"name": "REDIS_HOST", "value": "mine"}]


def test_no_password_in_status_events_or_non_secret_objects(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Sentinel"}))
    _pods(cluster, "checkout-sentinel", "sentinel", 3)
    _pods(cluster, "checkout-redis", "redis", 3)
    _reconcile(cluster, body, FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3))
    password = _password(cluster)
    assert password is not None
    secrets = [password, *(sessionstore.user_password(password, u) for u in sessionstore.USERS)]
    visible = json.dumps([body["status"], cluster.events, cluster.statuses,
                          [o for k, o in cluster.objects.items() if k[1] != "Secret"]])
    assert not [s for s in secrets if s in visible]
    assert body["status"]["sessionStore"] == {
        "type": "Redis", "mode": "Sentinel", "endpoint": "checkout-redis-primary.shop.svc:6379",
        "secretName": "checkout-redis-connection", "primary": "checkout-redis-0",
        "persistence": "PersistentVolumeClaim 1Gi"}


def test_standalone_is_ready_when_its_pod_is(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Standalone", "persistence": {"size": "0"}}))
    _reconcile(cluster, body)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "RedisNotReady")
    assert condition["message"] == "0 of 1 Redis pods of StatefulSet checkout-redis are ready."
    _ready_statefulset(cluster, "checkout-redis")
    _reconcile(cluster, body, at=30)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "RedisReady")
    assert "emptyDir and is lost when a pod is deleted" in condition["message"]
    assert ("Normal", "RedisReady", condition["message"]) in cluster.events


def _sentinel_store(cluster: FakeCluster, probe: FakeProbe, labelled: int | None = None) -> dict[str, Any]:
    body = resource(_store(type="Redis", redis={"mode": "Sentinel", "replicas": 2}))
    _pods(cluster, "checkout-sentinel", "sentinel", 3)
    _pods(cluster, "checkout-redis", "redis", 3, labelled)
    _reconcile(cluster, body, probe)
    _ready_statefulset(cluster, "checkout-redis")
    _ready_statefulset(cluster, "checkout-sentinel")
    return body


def _labelled(cluster: FakeCluster) -> list[str]:
    return sorted(name for (_, kind, _, name), o in cluster.objects.items()
                  if kind == "Pod" and (o["metadata"].get("labels") or {}).get(ROLE) == "primary")


def test_the_role_label_follows_the_primary_the_sentinels_agree_on(cluster: FakeCluster) -> None:
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3)
    body = _sentinel_store(cluster, probe)
    assert _labelled(cluster) == ["checkout-redis-0"]
    assert probe.asked[0] == ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
    _reconcile(cluster, body, probe, at=10)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("True", "SentinelReady")
    # A failover: two of three sentinels already name the new primary.
    probe.view = SentinelView((_host("checkout-redis-2"), _host("checkout-redis-2"), None), (True, True, False))
    writes_before = len(cluster.writes)
    _reconcile(cluster, body, probe, at=20)
    assert _labelled(cluster) == ["checkout-redis-2"]
    labels = [w for w in cluster.writes[writes_before:] if w[0] == "label"]
    assert labels == [("label", "Pod", "checkout-redis-2"), ("label", "Pod", "checkout-redis-0")], \
        "the new primary is labelled before the old one loses its label"
    assert body["status"]["sessionStore"]["primary"] == "checkout-redis-2"


@pytest.mark.parametrize("primaries", [
    (None, None, None),
    ("checkout-redis-1.checkout-redis.shop.svc", "checkout-redis-2.checkout-redis.shop.svc", None),
    ("other-redis-0.other-redis.shop.svc",) * 3,
])
def test_nothing_moves_without_agreement_on_a_pod_of_this_store(cluster: FakeCluster,
                                                              primaries: tuple[str | None, ...]) -> None:
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3)
    body = _sentinel_store(cluster, probe)
    probe.view = SentinelView(primaries, (True,) * 3)
    _reconcile(cluster, body, probe, at=10)
    assert _labelled(cluster) == ["checkout-redis-0"]
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "PrimaryUnknown")


def test_a_lost_quorum_is_a_warning(cluster: FakeCluster) -> None:
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True, False, False))
    body = _sentinel_store(cluster, probe)
    _reconcile(cluster, body, probe, at=10)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "NoQuorum")
    assert condition["message"].startswith("1 of 3 sentinels see a quorum able to fail over; 2 are needed")
    assert any(e[:2] == ("Warning", "NoQuorum") for e in cluster.events)


def test_the_follower_asks_without_api_requests_while_nothing_changes(cluster: FakeCluster) -> None:
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3)
    _pods(cluster, "checkout-sentinel", "sentinel", 3)
    root = _root(cluster)
    follower = Follower()
    lists = 0
    original = cluster.list

    def counting(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal lists
        lists += 1
        return original(*args, **kwargs)

    _pods(cluster, "checkout-redis", "redis", 3, labelled=0)
    cluster.list = counting  # type: ignore[method-assign]
    assert follower.changed(cluster, probe, OWNER) == "checkout-redis-0"
    assert follower.settle(cluster, OWNER, "checkout-redis-0")
    assert follower.changed(cluster, probe, OWNER) is None
    assert follower.changed(cluster, probe, OWNER) is None
    assert lists == 1
    assert probe.passwords == {sessionstore.user_password(root, "admin")}, "it asks as the sentinels' admin"
    probe.view = SentinelView((_host("checkout-redis-1"),) * 2 + (None,), (True,) * 3)
    assert follower.changed(cluster, probe, OWNER) == "checkout-redis-1"
    follower.changed(cluster, probe, OWNER)
    assert lists == 2, "a sentinel that did not answer is looked up again"


def test_the_follower_asks_again_until_the_new_primary_carries_the_label(cluster: FakeCluster) -> None:
    """A reconcile that could not move the label (an API error, the sentinels disagreeing for that
    moment) is followed by another at the next look, not by silence until some other event."""
    probe = FakeProbe((_host("checkout-redis-1"),) * 3, (True,) * 3)
    _pods(cluster, "checkout-sentinel", "sentinel", 3)
    _pods(cluster, "checkout-redis", "redis", 3, labelled=0)
    _root(cluster)
    follower = Follower()
    follower.primary = "checkout-redis-0"
    assert follower.changed(cluster, probe, OWNER) == "checkout-redis-1"
    assert not follower.settle(cluster, OWNER, "checkout-redis-1")  # the reconcile failed: still on -0
    assert follower.changed(cluster, probe, OWNER) == "checkout-redis-1"
    cluster.objects[("v1", "Pod", "shop", "checkout-redis-1")]["metadata"]["labels"][ROLE] = "primary"
    assert follower.settle(cluster, OWNER, "checkout-redis-1")
    assert follower.changed(cluster, probe, OWNER) is None


def test_the_follower_asks_nothing_without_the_generated_password(cluster: FakeCluster) -> None:
    """The sentinels' default user is off: without the root Secret there is no admin to ask as,
    and the follower neither asks nor guesses; it reads the Secret again at its next look."""
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3)
    _pods(cluster, "checkout-sentinel", "sentinel", 3)
    _pods(cluster, "checkout-redis", "redis", 3)
    follower = Follower()
    assert follower.changed(cluster, probe, OWNER) is None
    assert probe.asked == []
    root = _root(cluster)
    assert follower.changed(cluster, probe, OWNER) == "checkout-redis-0"
    assert probe.passwords == {sessionstore.user_password(root, "admin")}


def test_the_reconcile_asks_the_sentinels_as_admin(cluster: FakeCluster) -> None:
    probe = FakeProbe((_host("checkout-redis-0"),) * 3, (True,) * 3)
    _sentinel_store(cluster, probe)
    root = sessionstore.stored_password(cluster.get("v1", "Secret", "shop", "checkout-redis-password"))
    assert root is not None and probe.passwords == {sessionstore.user_password(root, "admin")}


def test_external_store_is_checked_and_injected_by_reference(cluster: FakeCluster) -> None:
    store = {"type": "External", "external": {"urlSecretRef": {"name": "sessions", "key": "url"}}, "env": "SESSIONS"}
    body = resource(minimal_spec(sessionStore=store))
    _reconcile(cluster, body)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "SecretNotFound")
    assert "env" not in _template(cluster)["spec"]["containers"][0]
    secret_value = "http://user:hunter2hunter2@redis.example:6379/0"
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sessions", "namespace": "shop"},
                   "stringData": {"url": secret_value}})
    _reconcile(cluster, body, at=10)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "InvalidURL")
    assert "hunter2" not in json.dumps([body["status"], cluster.events])
    cluster.objects[("v1", "Secret", "shop", "sessions")]["stringData"] = {"url": "rediss://redis.example:6380/0"}
    _reconcile(cluster, body, at=20)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("True", "ExternalStore")
    assert _template(cluster)["spec"]["containers"][0]["env"] == [
        {"name": "SESSIONS", "valueFrom": {"secretKeyRef": {"name": "sessions", "key": "url"}}}]
    assert body["status"]["sessionStore"] == {"type": "External", "secretName": "sessions"}


def test_external_secret_without_the_key(cluster: FakeCluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sessions", "namespace": "shop"},
                   "stringData": {"other": "redis://x:6379"}})
    body = resource(minimal_spec(sessionStore={"type": "External",
                                               "external": {"urlSecretRef": {"name": "sessions", "key": "url"}}}))
    _reconcile(cluster, body)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and condition["reason"] == "SecretKeyNotFound"
    assert condition["message"] == "Secret 'sessions' has no key 'url' (sessionStore.external.urlSecretRef.key)."


def test_redis_and_an_external_reference_together_are_refused() -> None:
    with pytest.raises(SpecError, match="type Redis provisions a store, so sessionStore.external must not be set"):
        parse_spec(_store(type="Redis", external={"urlSecretRef": {"name": "s", "key": "url"}}))


def test_dropping_the_store_removes_its_objects_but_not_its_secrets(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Sentinel"}))
    _reconcile(cluster, body, FakeProbe())
    dropped = resource(_store(type="None"), generation=2)
    dropped["status"] = copy.deepcopy(body["status"])
    _reconcile(cluster, dropped, at=10)
    left = sorted((k, n) for (_, k, _, n) in cluster.objects if "redis" in n or "sentinel" in n)
    assert left == [("Secret", "checkout-redis"), ("Secret", "checkout-redis-connection"),
                    ("Secret", "checkout-redis-password")]
    assert _condition(dropped, "SessionStoreReady") is None
    assert "env" not in _template(cluster)["spec"]["containers"][0]


def test_sentinel_to_standalone_removes_the_sentinels(cluster: FakeCluster) -> None:
    body = resource(_store(type="Redis", redis={"mode": "Sentinel"}))
    _reconcile(cluster, body, FakeProbe())
    standalone = resource(_store(type="Redis", redis={"mode": "Standalone"}), generation=2)
    standalone["status"] = copy.deepcopy(body["status"])
    _reconcile(cluster, standalone, at=10)
    assert not [n for (_, k, _, n) in cluster.objects if "sentinel" in n]
    assert cluster.get("apps/v1", "StatefulSet", "shop", "checkout-redis")["spec"]["replicas"] == 1


def test_an_adopted_deployment_is_told_not_changed(cluster: FakeCluster) -> None:
    cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "legacy", "namespace": "shop"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "legacy"}},
                            "template": {"metadata": {"labels": {"app": "legacy"}},
                                         "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    body = resource({"targetRef": {"name": "legacy"}, "sessionStore": {"type": "Redis",
                                                                       "redis": {"mode": "Standalone"}}})
    _reconcile(cluster, body)
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None
    assert condition["message"].endswith("The adopted Deployment 'legacy' is not changed: reference Secret "
                                         "'checkout-redis-connection' from its containers yourself.")
    assert "env" not in cluster.get("apps/v1", "Deployment", "shop", "legacy")["spec"]["template"]["spec"][
        "containers"][0]


HOSTS = st.sampled_from([None, "a.x", "b.x", "c.x", ""])


@given(st.lists(HOSTS, min_size=0, max_size=5).map(tuple), st.integers(1, 5))
def test_an_agreed_primary_is_named_by_at_least_a_quorum(primaries: tuple[str | None, ...], quorum: int) -> None:
    agreed = sessionstore.agreed_primary(primaries, quorum)
    if agreed is None:
        named = [p for p in primaries if p]
        assert all(named.count(p) < quorum for p in named) or not named
    else:
        assert primaries.count(agreed) >= quorum


@given(st.lists(st.booleans(), min_size=0, max_size=6), st.integers(-1, 6))
def test_after_the_label_changes_only_the_primary_is_labelled(labelled: list[bool], primary: int) -> None:
    pods = [{"metadata": {"name": f"p{i}", "labels": {ROLE: "primary"} if on else {}}} for i, on in enumerate(labelled)]
    name = f"p{primary}" if 0 <= primary < len(pods) else None
    changes = sessionstore.label_changes(pods, name)
    after = {p["metadata"]["name"] for p in pods if changes.get(p["metadata"]["name"], (
        p["metadata"]["labels"].get(ROLE))) == "primary"}
    if name is None:
        assert changes == {}
    else:
        assert after == {name}


def _rotating(cluster: FakeCluster, token: str, generation: int = 1) -> dict[str, Any]:
    body = resource(_store(type="Redis", redis={"mode": "Standalone"}), generation=generation)
    if token:
        body["metadata"]["annotations"] = {"spillway.io/rotate-session-password": token}
    return body


def _roll_out(cluster: FakeCluster) -> None:
    found = cluster.objects[("apps/v1", "Deployment", "shop", "checkout")]
    n = found["spec"]["replicas"]
    found["status"] = {"replicas": n, "updatedReplicas": n, "readyReplicas": n,
                       "observedGeneration": found["metadata"]["generation"]}


def _app_hashes(cluster: FakeCluster) -> list[str]:
    acl = sessionstore.secret_text(cluster.get("v1", "Secret", "shop", "checkout-redis"))["users.acl"]
    line = next(x for x in acl.splitlines() if x.startswith("user app "))
    return [w[1:] for w in line.split() if w.startswith("#")]


def _connection_password(cluster: FakeCluster) -> str:
    return sessionstore.secret_text(cluster.get("v1", "Secret", "shop", "checkout-redis-connection"))["password"]


def test_a_rotation_adds_the_new_password_first_and_removes_the_old_after_the_rollout(cluster: FakeCluster) -> None:
    probe = FakeProbe()
    _pods(cluster, "checkout-redis", "redis", 1, labelled=0)
    _reconcile(cluster, _rotating(cluster, ""), probe)
    _roll_out(cluster)
    _ready_statefulset(cluster, "checkout-redis")
    password = _password(cluster)
    assert password is not None
    old = sessionstore.app_password(password)
    new = sessionstore.app_password(password, "2026-11-25")
    assert _connection_password(cluster) == old
    checksum = _template(cluster)["metadata"]["annotations"]["spillway.io/session-store-checksum"]

    body = _rotating(cluster, "2026-11-25")
    _reconcile(cluster, body, probe, at=10)
    # Redis is told the new password before the app is given it; both are accepted meanwhile.
    assert probe.acl == [(["10.0.0.10"], ["#" + sessionstore.password_hash(new)])]
    assert _app_hashes(cluster) == [sessionstore.password_hash(new), sessionstore.password_hash(old)]
    assert _connection_password(cluster) == new
    assert _template(cluster)["metadata"]["annotations"]["spillway.io/session-store-checksum"] != checksum
    assert ("Normal", "PasswordRotationStarted") in [e[:2] for e in cluster.events]
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and "Rotating the app's password" in condition["message"]

    # The app has not rolled yet: the old password stays.
    _reconcile(cluster, body, probe, at=20)
    assert len(probe.acl) == 1
    _roll_out(cluster)
    _reconcile(cluster, body, probe, at=30)
    assert probe.acl[1] == (["10.0.0.10"], ["!" + sessionstore.password_hash(old)])
    assert _app_hashes(cluster) == [sessionstore.password_hash(new)]
    assert ("Normal", "PasswordRotated") in [e[:2] for e in cluster.events]
    assert _password(cluster) == password, "the generated password itself never changes"
    writes = len(cluster.writes)
    _reconcile(cluster, body, probe, at=40)
    assert len(probe.acl) == 2 and len(cluster.writes) == writes


def test_a_rotation_redis_refuses_changes_nothing_and_says_why(cluster: FakeCluster) -> None:
    probe = FakeProbe()
    probe.refuse = "10.0.0.10: ConnectionError: refused"
    _pods(cluster, "checkout-redis", "redis", 1, labelled=0)
    _reconcile(cluster, _rotating(cluster, ""), probe)
    before = _connection_password(cluster)
    body = _rotating(cluster, "again")
    _reconcile(cluster, body, probe, at=10)
    assert _connection_password(cluster) == before
    condition = _condition(body, "SessionStoreReady")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "RotationBlocked")
    assert "10.0.0.10: ConnectionError: refused" in condition["message"]


TOKENS = st.sampled_from(["", "a", "b", "c"])


@given(st.lists(st.tuples(TOKENS, st.booleans()), max_size=12))
def test_a_rotation_never_stops_accepting_the_password_the_app_is_given(steps: list[tuple[str, bool]]) -> None:
    rotation = sessionstore.Rotation()
    for requested, rolled in steps:
        following, action = sessionstore.next_rotation(requested, rotation, rolled)
        assert following.current in following.tokens()
        if action == "remove":
            assert rolled and rotation.previous is not None and following.tokens() == (rotation.current,)
        if action == "add":
            assert following.previous == rotation.current and following.current == requested
        if not action:
            assert following == rotation
        rotation = following
