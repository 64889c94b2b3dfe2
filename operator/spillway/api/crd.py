"""The ScalableService CRD, generated from the models.

pydantic emits JSON Schema 2020-12 with `$ref`s; Kubernetes wants a structural OpenAPI v3.0
schema: every node typed, no `$ref`, `anyOf` only beside int-or-string, no `additionalProperties:
false`, exclusive bounds as booleans. `structural()` does that translation; everything the
schema says (descriptions, defaults, enums, CEL rules) comes from `spec.py` and `status.py`.
Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from spillway import GROUP, KIND, PLURAL, VERSION
from spillway.api.spec import ScalableServiceSpec
from spillway.api.status import ScalableServiceStatus

_DROP = {"title", "$defs", "additionalProperties"}

# How `kubectl scale ssvc NAME --replicas=N` maps onto the spec: it sets the floor.
SPEC_REPLICAS_PATH = ".spec.replicas.min"


class _WithFactoryDefaults(GenerateJsonSchema):
    """Shows `default_factory` defaults too: the CRD must state every default."""

    def get_default_value(self, schema: Any) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()
            return value.model_dump(by_alias=True, mode="json") if isinstance(value, BaseModel) else value
        return super().get_default_value(schema)


def structural(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="serialization", schema_generator=_WithFactoryDefaults)
    schema: dict[str, Any] = _translate(raw, raw.get("$defs", {}))
    _settle_defaults(schema)
    return schema


def _translate(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_translate(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "anyOf" in node:
        node = _collapse_optional(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**copy.deepcopy(target), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
        return _translate(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP and not (key == "additionalProperties" and isinstance(value, dict)):
            continue
        if key == "properties":
            out[key] = {name: _translate(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _translate(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "default":
            out[key] = _strip_none(value)
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "default" in out and out["default"] is None:
        del out["default"]
    if "maxItems" in out or "minItems" in out:
        out.setdefault("type", "array")
    return out


def _collapse_optional(node: dict[str, Any]) -> dict[str, Any]:
    """`X | None` becomes X; an omitted field is how a user says None."""
    options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"a schema may have anyOf only for int-or-string, got {options}")
    return {**options[0], **node}


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    return value


def _filled(value: Any, schema: dict[str, Any]) -> Any:
    """`value` as the API server stores it: missing fields get their defaults, all the way down."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for name, sub in schema["properties"].items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
        if name in out:
            out[name] = _filled(out[name], sub)
    return out


def _settle_defaults(schema: dict[str, Any]) -> None:
    """Object defaults hold every nested default: the API server checks a default against the
    CEL rules as written, without filling the nested defaults first."""
    for sub in schema.get("properties", {}).values():
        _settle_defaults(sub)
    if isinstance(schema.get("items"), dict):
        _settle_defaults(schema["items"])
    if isinstance(schema.get("default"), dict) and "properties" in schema:
        schema["default"] = _filled(schema["default"], schema)


def _without_defaults(node: Any) -> Any:
    """Status is written whole by Spillway; defaults there would only add empty fields."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    return node


# The Service, the labels and the pods are named after the ScalableService: a Service name is a
# DNS-1035 label and a label value holds at most 63 characters.
NAME_RULE = "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63"
NAME_MESSAGE = ("metadata.name must be a DNS-1035 label: at most 63 lower-case letters, digits and '-', "
                "starting with a letter (the Service and the labels carry it)")


def crd() -> dict[str, Any]:
    spec_schema = structural(ScalableServiceSpec)
    status_schema = _without_defaults(structural(ScalableServiceStatus))
    spec_schema["description"] = "What the team declares: the service, its capacity and how to scale and balance it."
    status_schema["description"] = "What Spillway observed and decided. Written only by Spillway."
    columns = [
        ("Min", "integer", ".spec.replicas.min", "Fewest replicas"),
        ("Max", "integer", ".spec.replicas.max", "Most replicas"),
        ("Desired", "integer", ".status.desiredReplicas", "Replicas Spillway wants"),
        ("Ready", "integer", ".status.readyReplicas", "Ready replicas"),
        ("Unschedulable", "integer", ".status.unschedulableReplicas", "Replicas waiting for a node"),
        ("Queue", "number", ".status.signals.queueDepth", "Requests waiting"),
        ("Latency", "number", ".status.signals.latencySeconds", "Latency at the target quantile (s)"),
        ("Provider", "string", ".spec.balancing.provider", "Balancer"),
        ("Balancer", "string", '.status.conditions[?(@.type=="BalancerReady")].reason',
         "The balancer's state (BalancerReady reason)"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "spillway", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["ssvc"],
                "categories": ["spillway"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": SPEC_REPLICAS_PATH,
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": n, "type": t, "jsonPath": p, "description": d} for n, t, p, d in columns
                ] + [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": (
                        "A web service Spillway runs, scales on queue depth and latency, balances, "
                        "and gives a shared session store."),
                    "required": ["spec"],
                    "x-kubernetes-validations": [{"rule": NAME_RULE, "message": NAME_MESSAGE}],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema,
                        "status": status_schema,
                    },
                }},
            }],
        },
    }
