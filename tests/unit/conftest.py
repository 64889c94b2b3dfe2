from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import settings

from tests.unit.fakes import FakeCluster

# No per-example deadline: a property test states what must hold, not how fast (speed lives in
# bench/). On a loaded 2-core machine an example that takes 3 ms alone took 426 ms, and
# hypothesis reported the invariant as failing.
settings.register_profile("spillway", deadline=None)
settings.load_profile("spillway")

CONTAINER = {"name": "app", "image": "ghcr.io/acme/checkout:1.4", "ports": [{"name": "http", "containerPort": 8080}]}


def minimal_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [copy.deepcopy(CONTAINER)]}}}
    spec.update(overrides)
    return spec


def resource(spec: dict[str, Any], name: str = "checkout", generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "spillway.io/v1alpha1",
        "kind": "ScalableService",
        "metadata": {"name": name, "namespace": "shop", "uid": "ssvc-uid", "generation": generation},
        "spec": spec,
    }


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()
