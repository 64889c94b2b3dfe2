"""`spillway render`: the objects the operator would create, without a cluster, and nothing
generated shown."""

from __future__ import annotations

import re

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from spillway.cli import main
from spillway.rendering import GENERATED, RenderError, render
from tests.unit.conftest import minimal_spec

SERVICE = {"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
           "metadata": {"name": "checkout", "namespace": "shop"},
           "spec": minimal_spec(balancing={"provider": "HAProxy", "affinity": {"type": "Cookie"}},
                                sessionStore={"type": "Redis"})}


def _kinds(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Keyed by kind and name; a content-named ConfigMap by its name without the digest."""
    return {(o["kind"], re.sub(r"-[0-9a-f]{10}$", "", o["metadata"]["name"]) if o["kind"] == "ConfigMap"
             else o["metadata"]["name"]): o for o in objects}


def test_the_balancer_the_store_and_the_app_are_rendered_with_their_configs() -> None:
    objects = _kinds(render(SERVICE))
    assert {("Deployment", "checkout"), ("Deployment", "checkout-haproxy"), ("Service", "checkout"),
            ("StatefulSet", "checkout-redis"), ("StatefulSet", "checkout-sentinel")} <= set(objects)
    config = objects[("ConfigMap", "checkout-haproxy")]["data"]["haproxy.cfg"]
    assert "cookie SPILLWAY insert indirect nocache httponly dynamic maxlife 3600s" in config
    assert "maxmemory 268435456" in objects[("ConfigMap", "checkout-redis")]["data"]["redis.conf"]
    assert all(o["metadata"]["namespace"] == "shop" for o in objects.values())


def test_no_generated_secret_value_is_shown_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generators made to return known values: none of them, nor its base64, appears."""
    made = iter(f"generated-value-{i:02d}-{'x' * 24}" for i in range(100))
    monkeypatch.setattr(secrets, "token_hex", lambda n=32: next(made))
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=32: next(made))
    objects = render(SERVICE)
    found = [o for o in objects if o["kind"] == "Secret"]
    assert len(found) == 4
    assert all(set((s.get("data") or {}).values()) | set((s.get("stringData") or {}).values()) == {GENERATED}
               for s in found)
    text = yaml.safe_dump_all(objects)
    assert "generated-value-" not in text
    assert base64.b64encode(b"generated-value-").decode()[:20] not in text


@pytest.mark.parametrize(("resource", "message"), [
    ({**SERVICE, "spec": minimal_spec(balancing={"provider": "HAProxy", "algorithm": "ConsistentHash",
                                                  "hash": {"source": "Header", "name": "a\nb"}})},
     "spec.balancing.hash.name: String should match pattern"),
    ({**SERVICE, "spec": minimal_spec(replicas={"min": 5, "max": 3})},
     "spec.replicas: replicas.min must be less than or equal to replicas.max"),
    ({**SERVICE, "kind": "Deployment"}, "kind: 'Deployment' is not ScalableService"),
    ({**SERVICE, "spec": {"targetRef": {"name": "legacy"}}}, "spec.targetRef: an adopted Deployment is read"),
])
def test_an_invalid_resource_is_refused_with_the_field_named(resource: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(resource)
    assert str(caught.value).startswith(message)


def test_the_command_prints_yaml_and_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(SERVICE))
    assert main(["render", "-f", str(good)]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert ("ConfigMap", "checkout-haproxy") in _kinds(printed)
    bad.write_text(yaml.safe_dump_all([SERVICE, {**SERVICE, "spec": minimal_spec(replicas={"min": 0})}]))
    assert main(["render", "-f", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"spillway render: {bad}: document 2 (checkout): spec.replicas.min:"), error
