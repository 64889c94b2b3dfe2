"""The demo's in-cluster Prometheus and load (`make demo CLUSTER=current`): what the objects grant
and run. The API server's restricted Pod Security admission checks them for real in
tests/integration/test_demo.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from demo import incluster
from demo.__main__ import image_names

PLACEMENT = {"nodeSelector": {"spillway.io/real-node": "true"},
             "tolerations": [{"key": "spillway.io/real-node", "value": "true", "effect": "NoSchedule",
                              "operator": "Equal"}]}


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds))
    return {o["kind"]: o for o in objects}


def _assert_restricted(pod_spec: dict[str, Any]) -> None:
    pod = pod_spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["readOnlyRootFilesystem"] is True
        assert "memory" in container["resources"]["limits"]


def test_prometheus_may_only_watch_pods_of_the_demos_namespace_and_discovers_only_there() -> None:
    objects = _by_kind(incluster.prometheus_objects("shop", "reg/prometheus:dev", PLACEMENT, "IfNotPresent"))
    assert set(objects) == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"}
    assert all(o["metadata"]["namespace"] == "shop" for o in objects.values())  # no cluster-wide object
    assert objects["Role"]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert objects["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "shop"}]

    config = yaml.safe_load(objects["ConfigMap"]["data"]["prometheus.yml"])
    assert config["global"]["scrape_interval"] == "1s"
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["shop"]}}]
    assert "kubeconfig_file" not in job["kubernetes_sd_configs"][0]  # its service account, in the cluster

    pod = objects["Deployment"]["spec"]["template"]["spec"]
    _assert_restricted(pod)
    assert pod["serviceAccountName"] == "prometheus"
    assert pod["nodeSelector"] == PLACEMENT["nodeSelector"] and pod["tolerations"] == PLACEMENT["tolerations"]
    (container,) = pod["containers"]
    assert container["image"] == "reg/prometheus:dev" and container["imagePullPolicy"] == "IfNotPresent"
    assert "--config.file=/etc/prometheus/prometheus.yml" in container["args"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/prometheus", "/prometheus"}
    selector = objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objects["Service"]["spec"]["selector"] == selector
    assert incluster.prometheus_url("shop") == "http://prometheus.shop.svc:9090"
    assert incluster.proxy_path("shop", "/api/v1/query?query=up") == \
        "/api/v1/namespaces/shop/services/prometheus:9090/proxy/api/v1/query?query=up"


def test_the_load_pod_runs_the_load_file_once_bounded_writing_to_stdout_without_a_token() -> None:
    arguments = ["--url", "http://34.118.224.10:80", "--phase", "a:60:10", "--allow", "34.118.224.10"]
    objects = _by_kind(incluster.load_objects("shop", "op:dev", {}, arguments, 420))
    assert objects["ConfigMap"]["data"]["load.py"] == incluster.LOAD_FILE.read_text()
    pod = objects["Pod"]["spec"]
    _assert_restricted(pod)
    assert pod["restartPolicy"] == "Never" and pod["activeDeadlineSeconds"] == 420
    assert pod["automountServiceAccountToken"] is False  # it talks to the Service, never to the API
    (container,) = pod["containers"]
    assert container["command"] == ["python", "/demo/load.py"]
    assert container["args"] == [*arguments, "--log", "/dev/stdout"]
    assert container["imagePullPolicy"] == "Never"


@pytest.mark.parametrize("registry, operator", [
    (None, "localhost/spillway/operator:dev"),
    ("ghcr.io/me", "ghcr.io/me/spillway/operator:dev"),
    ("ghcr.io/me/", "ghcr.io/me/spillway/operator:dev"),
])
def test_image_names_move_under_a_registry(registry: str | None, operator: str) -> None:
    names = image_names(registry)
    assert names["operator"] == operator
    assert set(names) >= {"operator", "session-app", "base", "redis", "prometheus"}


def test_an_unreachable_current_cluster_is_a_clear_error_not_a_traceback(tmp_path: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from demo import __main__ as cli

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("kubectl", "helm"):  # a kubectl that fails as a real one does without a context
        (fake / tool).write_text("#!/bin/sh\necho 'error: current-context is not set' >&2\nexit 1\n")
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    with pytest.raises(ValueError, match="current-context is not set"):
        cli.current_bed(None)


def test_no_kubeconfig_is_a_clear_error(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo import __main__ as cli

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no kubeconfig at"):
        cli.current_bed(None)


def test_on_kind_only_the_images_are_built_and_each_is_loaded(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind cluster brings its own control plane: the demo builds the images' parts alone
    (not the test bed's Kubernetes) and loads each image it uses into that cluster."""
    from demo import __main__ as cli

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    fake, calls = tmp_path / "bin", tmp_path / "calls"
    fake.mkdir()
    scripts = {"kubectl": 'case "$2" in config) echo kind-shop ;; *) : ;; esac\n',  # no labelled node
               "helm": "", "kind": f'echo "$@" >> {calls}\n'}
    for tool, body in scripts.items():
        (fake / tool).write_text(f"#!/bin/sh\n{body}")
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    built: list[tuple[str, ...]] = []
    monkeypatch.setattr(cli, "build", lambda *parts: built.append(parts) or {})
    monkeypatch.setattr(cli, "build_images", lambda bins: {name: tmp_path / f"{name}.oci.tar" for name in
                                                           cli.DEMO_IMAGES})
    bed, context = cli.current_bed(None)
    assert context == "kind-shop" and bed.pull_policy == "Never" and bed.in_cluster
    assert built == [("pause", "prometheus")]
    assert calls.read_text().splitlines() == [
        f"load image-archive {tmp_path / f'{name}.oci.tar'} --name shop" for name in cli.DEMO_IMAGES]
