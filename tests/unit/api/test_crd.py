from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spillway.api.crd import NAME_MESSAGE, NAME_RULE, crd
from spillway.api.rules import SpecModel
from spillway.cli import DEFAULT_CRD_PATH, render_crd

ROOT = Path(__file__).resolve().parents[3]


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _nodes(node["additionalProperties"], f"{path}{{}}")
    return found


def test_committed_crd_is_what_the_models_generate() -> None:
    committed = (ROOT / DEFAULT_CRD_PATH).read_text()
    assert committed == render_crd(), "crds/ is stale: run `make crd`"


def test_schema_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert "$ref" not in node and "$defs" not in node, path
        assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), f"{path}.{bound} must be a boolean in OpenAPI v3.0"


def test_only_the_pod_template_keeps_unknown_fields() -> None:
    keeping = [path for path, node in _nodes(_schema()) if node.get("x-kubernetes-preserve-unknown-fields")]
    # The pod template and the core/v1 objects the balancer and Redis pods take as they are.
    assert sorted(keeping) == [".spec.balancing.haproxy.resources", ".spec.balancing.haproxy.tolerations[]",
                               ".spec.sessionStore.redis.tolerations[]", ".spec.template"]


def test_every_rule_of_every_model_is_in_the_schema() -> None:
    in_schema = {v["rule"] for _, node in _nodes(_schema()) for v in node.get("x-kubernetes-validations", [])}
    in_models = {rule.cel for model in _models(SpecModel) for rule in model.rules}
    assert in_models and in_models | {NAME_RULE} == in_schema


def _models(base: type) -> set[type[SpecModel]]:
    found = set()
    for sub in base.__subclasses__():
        found.add(sub)
        found |= _models(sub)
    return found


def test_every_spec_field_is_described() -> None:
    spec = _schema()["properties"]["spec"]
    missing = [path for path, node in _nodes(spec) if path and not path.endswith(("[]", "{}"))
               and not node.get("description")]
    assert missing == []


def test_object_defaults_are_complete_so_the_api_server_can_check_them_against_cel() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    assert spec["capacity"]["default"] == {"concurrency": 200, "queueLimit": 100, "timeout": "30s"}
    scale_down = spec["scaling"]["properties"]["behavior"]["properties"]["scaleDown"]
    assert scale_down["default"] == {"stabilizationWindow": "5m", "maxStepPercent": 10, "period": "1m",
                                     "selectPolicy": "Max"}
    for path, node in _nodes(_schema()):
        if isinstance(node.get("default"), dict) and "properties" in node:
            for name, sub in node["properties"].items():
                if "default" in sub:
                    assert name in node["default"], f"{path}.default lacks {name}"


def test_scale_subresource_maps_onto_the_replica_floor() -> None:
    version = crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas.min",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert version["subresources"]["status"] == {}


def test_names_printer_columns_and_categories() -> None:
    spec = crd()["spec"]
    assert spec["names"]["shortNames"] == ["ssvc"] and spec["names"]["categories"] == ["spillway"]
    columns = [c["name"] for c in spec["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Min", "Max", "Desired", "Ready", "Unschedulable", "Queue", "Latency", "Provider", "Balancer",
                       "Age"]


def test_list_maps_have_required_keys() -> None:
    for path, node in _nodes(_schema()):
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), path


def test_crd_yaml_loads_back() -> None:
    assert yaml.safe_load(render_crd()) == crd()


def test_name_must_fit_a_service_and_a_label() -> None:
    root = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["x-kubernetes-validations"] == [{"rule": NAME_RULE, "message": NAME_MESSAGE}]
