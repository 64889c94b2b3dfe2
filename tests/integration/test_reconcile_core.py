"""The reconcile core against a real API server: CRD, validation, children, status, scale,
garbage collection, restarts."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from spillway.api.crd import NAME_MESSAGE
from tests.integration.components import wait_until
from tests.integration.harness import (
    CRD, Kubectl, audit_offset, condition, operator_writes, running_operator, scalable_service,
)
from tests.unit.api.test_spec import HOSTILE_FIELDS, HOSTILE_VALUES, INVALID
from tests.unit.conftest import minimal_spec

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def k(kube: Any) -> Kubectl:
    kubectl = Kubectl(kube)
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/scalableservices.spillway.io", "--timeout=60s")
    # kubectl caches discovery; `api-resources` refreshes it once the new kind is served.
    wait_until(lambda: "ssvc" in kubectl.run("api-resources", "--api-group=spillway.io").stdout, 60,
               "ScalableService in discovery")
    # The OpenAPI document that `kubectl explain` reads is published a moment later.
    wait_until(lambda: kubectl.run("explain", "ssvc", check=False).returncode == 0, 60, "ssvc in OpenAPI")
    return kubectl


@pytest.fixture(scope="module")
def ns(k: Kubectl) -> str:
    return k.namespace("core")


def test_crd_installs_and_explain_teaches_the_fields(k: Kubectl) -> None:
    out = k.run("explain", "ssvc.spec.capacity").stdout
    assert "What one replica holds." in out
    assert "Requests one replica serves at once" in out and "queueLimit" in out


@pytest.mark.parametrize(("overrides", "message"), [(c[1], c[2]) for c in INVALID if c[3]],
                         ids=[c[0] for c in INVALID if c[3]])
def test_api_server_refuses_what_the_models_refuse(k: Kubectl, ns: str, overrides: dict[str, Any],
                                                    message: str) -> None:
    body = {"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
            "metadata": {"name": "bad", "namespace": ns}, "spec": minimal_spec(**overrides)}
    body["spec"] = {key: value for key, value in body["spec"].items() if value is not None}
    result = k.apply(body, check=False)
    assert result.returncode != 0, f"the API server accepted: {overrides}"
    field, _, text = message.partition(": ")
    assert field in result.stderr, result.stderr
    if text in _rule_messages():
        assert text in result.stderr, result.stderr
    assert k.get("ssvc", "bad", ns) is None


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_api_server_refuses_every_hostile_value_naming_the_field(kube: Any, k: Kubectl, ns: str, field: str) -> None:
    """Each value with a newline, a quote, a comment, a brace... in a field that reaches a config,
    a script, a query or another API's object: refused (server-side dry run, nothing stored), the
    field named; the same spec with a plain value is accepted."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.CustomObjectsApi(kube.api_client())

    def create(value: str) -> None:
        body = {"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
                "metadata": {"name": "hostile", "namespace": ns},
                "spec": {key: v for key, v in minimal_spec(**HOSTILE_FIELDS[field](value)).items() if v is not None}}
        api.create_namespaced_custom_object("spillway.io", "v1alpha1", ns, "scalableservices", body, dry_run="All")

    create("ab")
    accepted = []
    for value in HOSTILE_VALUES:
        try:
            create(value)
        except ApiException as err:
            assert err.status == 422 and field in str(err.body), (value, err.body)
        else:
            accepted.append(value)
    assert not accepted, f"the API server accepted {accepted!r} in {field}"


@pytest.mark.parametrize("name", ["9lives", "a" * 64, "web.shop"])
def test_api_server_refuses_a_name_no_service_can_carry(k: Kubectl, ns: str, name: str) -> None:
    result = k.apply(scalable_service(name, ns), check=False)
    assert result.returncode != 0 and NAME_MESSAGE in result.stderr, result.stderr


def _rule_messages() -> set[str]:
    from spillway.api.rules import SpecModel

    def walk(base: type) -> set[str]:
        found: set[str] = set()
        for sub in base.__subclasses__():
            found |= {r.message for r in getattr(sub, "rules", ())} | walk(sub)
        return found
    return walk(SpecModel)


def test_service_runs_scales_updates_and_is_garbage_collected(k: Kubectl, ns: str, kube: Any) -> None:
    with running_operator(kube.kubeconfig):
        k.apply(scalable_service("shop", ns, replicas={"min": 2, "max": 5}))
        deployment = k.wait_for("deployment", "shop", ns, lambda d: d["status"].get("readyReplicas") == 2,
                                what="2 ready replicas")
        assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ScalableService"
        assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "spillway"
        pods = k.items("pods", ns, "app.kubernetes.io/instance=shop")
        assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
        assert k.get("service", "shop", ns) is not None
        assert k.get("pdb", "shop", ns)["spec"]["maxUnavailable"] == 1
        ssvc = k.wait_for("ssvc", "shop", ns, lambda s: (s.get("status") or {}).get("readyReplicas") == 2)
        assert condition(ssvc, "Ready")["status"] == "True"
        assert condition(ssvc, "SpecValid")["status"] == "True"
        assert ssvc["status"]["observedGeneration"] == ssvc["metadata"]["generation"]
        assert "kopf" not in ssvc["status"]

        # A reconcile of an unchanged resource writes nothing: a label change wakes the
        # handlers (kopf sees a change) but Spillway's desired state is the same. The API
        # server's audit log shows every write Spillway's client makes; the controllers'
        # own status updates of the Deployment and PDB are theirs, so only the Service's
        # version (which nobody else writes) is compared directly.
        k.wait_for("ssvc", "shop", ns, lambda s: condition(s, "ScalingActive") is not None,
                   what="the scaling loop's first interval")
        versions = _versions(k, ns)
        status = k.get("ssvc", "shop", ns)["status"]
        offset = audit_offset(kube) if kube.audit_log else 0
        k.run("label", "ssvc", "shop", "-n", ns, "touched=yes")
        time.sleep(5)
        if kube.audit_log:
            assert operator_writes(kube, ns, offset) == []
        assert _versions(k, ns) == versions
        assert k.get("ssvc", "shop", ns)["status"] == status

        # Editing the spec updates the children.
        k.run("patch", "ssvc", "shop", "-n", ns, "--type=merge", "-p", '{"spec": {"servicePort": 8080}}')
        k.wait_for("service", "shop", ns, lambda s: s["spec"]["ports"][0]["port"] == 8080, what="new port")

        # kubectl scale goes through the scale subresource onto replicas.min.
        k.run("scale", "ssvc", "shop", "-n", ns, "--replicas=4")
        k.wait_for("deployment", "shop", ns, lambda d: d["spec"]["replicas"] == 4, what="4 replicas")
        scaled = k.run("scale", "ssvc", "shop", "-n", ns, "--replicas=9", check=False)
        assert scaled.returncode != 0 and "replicas.min must be less than or equal to replicas.max" in scaled.stderr
        ssvc = k.wait_for("ssvc", "shop", ns, lambda s: s["status"].get("readyReplicas") == 4)
        assert ssvc["status"]["selector"] == ("app.kubernetes.io/component=app,app.kubernetes.io/instance=shop,"
                                              "app.kubernetes.io/managed-by=spillway")

        # Deleting it lets the operator stop its loop (kopf's finalizer), then the garbage
        # collector removes every child.
        k.run("delete", "ssvc", "shop", "-n", ns, "--wait=true", "--timeout=60s")
        k.run("wait", "--for=delete", "deployment/shop", "service/shop", "pdb/shop", "-n", ns, "--timeout=60s",
              check=False)
    assert k.get("deployment", "shop", ns) is None
    assert k.get("service", "shop", ns) is None
    assert k.get("pdb", "shop", ns) is None


def _versions(k: Kubectl, ns: str) -> dict[str, str]:
    versions = {}
    for kind in ("service",):
        obj = k.get(kind, "shop", ns)
        assert obj is not None
        versions[kind] = obj["metadata"]["resourceVersion"]
    return versions


def test_invalid_spec_from_an_older_crd_is_reported_not_acted_on(k: Kubectl, ns: str, kube: Any) -> None:
    # A port name missing from the template is something only the operator can see.
    with running_operator(kube.kubeconfig):
        k.apply(scalable_service("typo", ns, port="web"))
        ssvc = k.wait_for("ssvc", "typo", ns, lambda s: condition(s, "SpecValid") is not None)
        spec_valid = condition(ssvc, "SpecValid")
        assert spec_valid["status"] == "False" and spec_valid["reason"] == "InvalidSpec"
        assert spec_valid["message"] == "spec: port 'web' is not the name of a port of any container in template"
        events = k.items("events.events.k8s.io", ns)
        assert any(e.get("reason") == "InvalidSpec" and e["regarding"]["name"] == "typo" for e in events)
        assert k.get("deployment", "typo", ns) is None


def test_a_name_held_by_someone_elses_object_is_never_taken_over(k: Kubectl, ns: str, kube: Any) -> None:
    """A Service of the ScalableService's name that a person made: Spillway leaves it as it is
    (no owner reference, so deleting the ScalableService cannot collect it) and says so as
    NameConflict with an Event."""
    theirs = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "taken", "namespace": ns},
              "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 8443}]}}
    k.apply(theirs)
    before = k.get("service", "taken", ns)
    with running_operator(kube.kubeconfig):
        k.apply(scalable_service("taken", ns))
        ssvc = k.wait_for("ssvc", "taken", ns, lambda s: (condition(s, "Ready") or {}).get("reason") == "NameConflict",
                          what="Ready=False NameConflict")
        assert "Service taken exists and is not this ScalableService's" in condition(ssvc, "Ready")["message"]
        events = k.items("events.events.k8s.io", ns)
        assert any(e.get("reason") == "NameConflict" and e["regarding"]["name"] == "taken" for e in events)
        after = k.get("service", "taken", ns)
        assert after["metadata"].get("ownerReferences") is None
        assert (after["spec"]["selector"], after["spec"]["ports"][0]["port"]) == ({"app": "theirs"}, 8443)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        k.run("delete", "ssvc", "taken", "-n", ns, "--wait=true", "--timeout=60s")
    assert k.get("service", "taken", ns) is not None, "deleting the ScalableService leaves their Service"


def test_what_this_cluster_or_version_cannot_honour_is_reported_and_traffic_still_flows(k: Kubectl, ns: str,
                                                                                         kube: Any) -> None:
    # This cluster has no Istio: the DestinationRule cannot exist, the rest is reconciled.
    with running_operator(kube.kubeconfig):
        k.apply(scalable_service("sticky", ns, balancing={"provider": "Istio", "affinity": {"type": "Cookie"}},
                                 sessionStore={"type": "Redis"}))
        ssvc = k.wait_for("ssvc", "sticky", ns, lambda s: condition(s, "BalancerReady") is not None)
        balancer = condition(ssvc, "BalancerReady")
        assert (balancer["status"], balancer["reason"]) == ("False", "APINotInstalled")
        assert "CRD destinationrules.networking.istio.io is not installed" in balancer["message"]
        # The session store is the operator's own: provisioned whatever the balancing provider.
        assert condition(ssvc, "SessionStoreReady") is not None
        assert k.get("statefulset", "sticky-redis", ns) is not None
        assert ssvc["status"]["balancer"]["provider"] == "Istio"
        assert k.get("service", "sticky", ns) is not None
        assert k.get("deployment", "sticky", ns) is not None
        events = k.items("events.events.k8s.io", ns)
        assert any(e.get("reason") == "APINotInstalled" and e["type"] == "Warning"
                   and e["regarding"]["name"] == "sticky" for e in events)


def test_operator_restarted_midway_converges(k: Kubectl, ns: str, kube: Any) -> None:
    with running_operator(kube.kubeconfig):
        k.apply(scalable_service("restart", ns, replicas={"min": 1, "max": 3}))
        k.wait_for("deployment", "restart", ns, lambda d: True, what="the first Deployment")
    # The operator is down: the spec changes and a child disappears.
    k.run("patch", "ssvc", "restart", "-n", ns, "--type=merge", "-p", '{"spec": {"replicas": {"min": 3}}}')
    k.run("delete", "service", "restart", "-n", ns)
    with running_operator(kube.kubeconfig):
        k.wait_for("deployment", "restart", ns, lambda d: d["spec"]["replicas"] == 3, what="3 replicas")
        k.wait_for("service", "restart", ns, lambda s: True, what="the Service recreated", timeout=90)
        k.wait_for("ssvc", "restart", ns, lambda s: (s.get("status") or {}).get("readyReplicas") == 3)


@pytest.mark.parametrize("example", sorted(p.name for p in (CRD.parents[1] / "manifests" / "examples").glob("*.yaml")))
def test_every_example_is_accepted_by_the_api_server(k: Kubectl, example: str) -> None:
    ns = k.namespace("examples")
    path = CRD.parents[1] / "manifests" / "examples" / example
    result = k.run("apply", "-n", ns, "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr
    for doc in yaml.safe_load_all(path.read_text()):
        assert k.get("ssvc", doc["metadata"]["name"], ns) is not None
