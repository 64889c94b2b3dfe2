"""The Helm chart, rendered by the real helm binary (built by tests/cluster/build.sh)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.cluster.localcluster import build

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "spillway"
# Kinds the Kubernetes schemas do not know: CRDs' own objects.
NO_SCHEMA = {"ServiceMonitor"}


@cache
def helm() -> str:
    return str(build()["helm"] / "helm")


def template(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), "template", "spillway", str(CHART), "--namespace", "spillway-system",
                           "--kube-version", "1.36.3", *args], capture_output=True, text=True, check=check)


def objects(*args: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(template(*args).stdout) if o]


def test_lint_strict_passes() -> None:
    result = subprocess.run([helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={team-a,team-b}", "--set", "serviceMonitor.enabled=true"]])
def test_rendered_objects_are_valid_kubernetes(values: list[str]) -> None:
    rendered = objects(*values)
    assert {"Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"} <= {o["kind"] for o in rendered}
    for obj in rendered:
        if obj["kind"] not in NO_SCHEMA:
            kubernetes_validate.validate(obj, "1.36.0", strict=True)


def test_rbac_has_no_wildcards_and_never_lists_watches_or_deletes_secrets() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a}"]):
        rules = [r for o in objects(*values) if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
        assert rules
        for rule in rules:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
            if "secrets" in rule["resources"]:
                # Read one by name (Prometheus credentials, an External store's URL), create the
                # balancer's cookie key and the session store's password once, patch the session
                # store's derived Secrets; nothing that reads every Secret or removes one.
                assert (rule["resources"], rule["verbs"]) == (["secrets"], ["get", "create", "patch"])


def test_watch_namespaces_gives_roles_only_in_those_namespaces() -> None:
    rendered = objects("--set", "watchNamespaces={team-a,team-b}")
    roles = [o for o in rendered if o["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    cluster_rules = [r for o in rendered if o["kind"] == "ClusterRole" for r in o["rules"]]
    assert all("secrets" not in r["resources"] and "deployments" not in r["resources"] for r in cluster_rules)
    args = next(o for o in rendered if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_operator_pod_meets_the_restricted_profile() -> None:
    pod = next(o for o in objects() if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                         "capabilities": {"drop": ["ALL"]}}
    assert pod["topologySpreadConstraints"]


def test_two_replicas_with_peering_by_default() -> None:
    deployment = next(o for o in objects() if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "--peering=spillway" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(("values", "message"), [
    (["--set", "replicaCount=two"], "at '/replicaCount': got string, want integer"),
    (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
    (["--set", "logFormat=xml"], "at '/logFormat'"),
    (["--set", "watchNamespaces={Bad_Name}"], "at '/watchNamespaces/0'"),
    # 0 would rank the placeholders with the app pods (none could preempt them); below -10 the
    # Cluster Autoscaler's expendable cutoff ignores them and never adds a node for them.
    (["--set", "headroom.priorityClass.value=0"], "at '/headroom/priorityClass/value'"),
    (["--set", "headroom.pauseImage="], "at '/headroom/pauseImage'"),
])
def test_bad_values_fail_with_a_clear_message(values: list[str], message: str) -> None:
    result = template(*values, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_chart_crd_is_the_generated_one() -> None:
    assert (CHART / "crds" / "scalableservices.spillway.io.yaml").read_bytes() == (
        ROOT / "crds" / "scalableservices.spillway.io.yaml").read_bytes()


def test_install_manifest_is_fresh(tmp_path: Path) -> None:
    fresh = tmp_path / "install.yaml"
    subprocess.run(["bash", str(CHART / "render-install.sh")], check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "HELM": helm(), "HOME": str(Path.home()), "OUT": str(fresh)})
    assert fresh.read_text() == (ROOT / "manifests" / "install.yaml").read_text(), (
        "manifests/install.yaml is stale: run charts/spillway/render-install.sh")


def test_the_test_beds_helm_behaves_like_the_released_binary() -> None:
    """helm assumes a Kubernetes version for `helm template` without a cluster; a plain `go install`
    leaves it at v1.20, where our chart's `kubeVersion: >=1.30` fails. build.sh stamps it as helm's
    own release build does."""
    version = subprocess.run([helm(), "version", "--template", "{{.Version}}"], capture_output=True, text=True,
                             check=True).stdout
    assert version == "v3.22.0"
    rendered = subprocess.run([helm(), "template", "spillway", str(CHART)], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr


def _priority_classes(*values: str) -> list[dict[str, Any]]:
    return [o for o in objects(*values) if o["kind"] == "PriorityClass"]


def test_the_headroom_priority_class_ranks_below_every_pod_and_preempts_no_one() -> None:
    [found] = _priority_classes()
    assert found["metadata"]["name"] == "spillway-headroom"
    assert (found["value"], found["preemptionPolicy"], found["globalDefault"]) == (-1, "Never", False)
    [named] = _priority_classes("--set", "headroom.priorityClass.name=spare", "--set",
                                "headroom.priorityClass.value=-5")
    assert (named["metadata"]["name"], named["value"]) == ("spare", -5)
    assert _priority_classes("--set", "headroom.priorityClass.create=false") == []


def test_the_operator_is_told_the_pause_image_and_the_priority_class() -> None:
    def env(*values: str) -> dict[str, str]:
        deployment = next(o for o in objects(*values) if o["kind"] == "Deployment")
        return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert env()["SPILLWAY_PAUSE_IMAGE"] == "registry.k8s.io/pause:3.10.1"
    assert env()["SPILLWAY_HEADROOM_PRIORITY_CLASS"] == "spillway-headroom"
    mirrored = env("--set", "headroom.pauseImage=mirror.example/pause:3.10.1", "--set",
                   "headroom.priorityClass.create=false", "--set", "headroom.priorityClass.name=shop-spare")
    assert (mirrored["SPILLWAY_PAUSE_IMAGE"], mirrored["SPILLWAY_HEADROOM_PRIORITY_CLASS"]) == (
        "mirror.example/pause:3.10.1", "shop-spare")


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={team-a}"]])
def test_rbac_for_headroom_is_as_narrow_as_its_use(values: list[str]) -> None:
    rendered = objects(*values)
    cluster_wide = [r for o in rendered if o["kind"] == "ClusterRole" for r in o["rules"]]
    namespaced = [r for o in rendered if o["kind"] == ("Role" if values else "ClusterRole") for r in o["rules"]]

    def granted(rules: list[dict[str, Any]], group: str, resource: str) -> list[str]:
        return sorted(v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"])

    # Read one by name (the placeholders' class and the app's), never list or change one.
    assert granted(cluster_wide, "scheduling.k8s.io", "priorityclasses") == ["get"]
    assert granted(cluster_wide, "autoscaling.x-k8s.io", "capacitybuffers") == (
        [] if values else ["create", "delete", "get", "list", "patch"])
    assert granted(namespaced, "autoscaling.x-k8s.io", "capacitybuffers") == [
        "create", "delete", "get", "list", "patch"]
    assert "list" in granted(namespaced, "", "pods"), "the app's Unschedulable pods are counted"
    assert all(r["apiGroups"] != ["scheduling.k8s.io"] for o in rendered if o["kind"] == "Role" for r in o["rules"])


# What each call through the Cluster port asks of the API server: server-side apply is a patch
# that creates the object when it is missing; a label is a patch; scale patches the subresource.
_VERBS = {"get": ("get",), "list": ("list",), "apply": ("patch", "create"), "create": ("create",),
          "delete": ("delete",), "label": ("patch",)}


def _resource(api_version: str, kind: str) -> tuple[str, str]:
    group = api_version.rpartition("/")[0]
    plural = {"NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets",
              "BackendTrafficPolicy": "backendtrafficpolicies", "UpstreamSettingsPolicy": "upstreamsettingspolicies",
              }.get(kind, kind.lower() + "s")
    return group, plural


def _granted(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={shop}"]])
def test_every_call_of_a_session_store_through_a_failover_is_granted_by_the_chart(values: list[str]) -> None:
    """The reconcile of a Sentinel store from creation through a failover (the role label moved),
    and the daemon's follower beside it, every call recorded: each one's verb on its resource is in
    the chart's rules. (The follower's read of the primary by name was once missing: 403 under the
    chart's account, the primary never recorded.)"""
    from spillway.resources.sessionstore import SentinelView
    from spillway.sessions import Follower
    from tests.unit import test_sessions as scenario
    from tests.unit.fakes import FakeCluster

    cluster, calls = FakeCluster(), set()

    def recorder(method: str, verbs: tuple[str, ...]) -> Any:
        original = getattr(cluster, method)

        def recording(*args: Any) -> Any:
            api_version, kind = (args[0]["apiVersion"], args[0]["kind"]) if method in ("apply", "create") else args[:2]
            calls.update((*_resource(api_version, kind), verb) for verb in verbs)
            return original(*args)
        return recording

    for method, verbs in _VERBS.items():
        setattr(cluster, method, recorder(method, verbs))
    probe = scenario.FakeProbe((scenario._host("checkout-redis-0"),) * 3, (True,) * 3)
    body = scenario._sentinel_store(cluster, probe)
    scenario._reconcile(cluster, body, probe, at=10)
    # The daemon's follower sees the failover, the reconcile moves the label, the follower settles.
    follower = Follower()
    assert follower.changed(cluster, probe, scenario.OWNER) == "checkout-redis-0"
    assert follower.settle(cluster, scenario.OWNER, "checkout-redis-0")
    probe.view = SentinelView((scenario._host("checkout-redis-2"),) * 3, (True,) * 3)
    assert follower.changed(cluster, probe, scenario.OWNER) == "checkout-redis-2"
    scenario._reconcile(cluster, body, probe, at=20)
    assert follower.settle(cluster, scenario.OWNER, "checkout-redis-2")
    assert body["status"]["sessionStore"]["primary"] == "checkout-redis-2"
    assert ("", "pods", "get") in calls and ("", "pods", "patch") in calls  # settle reads the primary by name

    rendered = objects(*values)
    rules = [r for o in rendered if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
    missing = sorted(c for c in calls if not _granted(rules, *c))
    assert not missing, f"the chart does not grant: {missing}"
