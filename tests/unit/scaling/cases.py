"""Specs and a clock shared by the scaling tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from tests.unit.conftest import minimal_spec

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# No windows, no step limits, no tolerance, no panic: the proposals alone decide.
FREE: dict[str, Any] = {"tolerance": 0, "panic": False,
                        "scaleUp": {"stabilizationWindow": "0s", "maxStepPercent": None, "maxStepPods": None},
                        "scaleDown": {"stabilizationWindow": "0s", "maxStepPercent": None}}


def spec(**overrides: Any) -> ScalableServiceSpec:
    base: dict[str, Any] = {"replicas": {"min": 2, "max": 40}, "capacity": {"concurrency": 200}}
    base.update(overrides)
    return parse_spec(minimal_spec(**base))


def free(**scaling: Any) -> ScalableServiceSpec:
    return spec(scaling={"behavior": FREE, **scaling})


def behaving(up: dict[str, Any] | None = None, down: dict[str, Any] | None = None, *, low: int = 1,
             high: int = 100, targets: dict[str, Any] | None = None, **behavior: Any) -> ScalableServiceSpec:
    """FREE with some rules switched on: one row of a table of HPA rules."""
    merged = {**FREE, **behavior, "scaleUp": {**FREE["scaleUp"], **(up or {})},
              "scaleDown": {**FREE["scaleDown"], **(down or {})}}
    scaling: dict[str, Any] = {"behavior": merged}
    if targets is not None:
        scaling["targets"] = targets
    return spec(replicas={"min": low, "max": high}, scaling=scaling)
