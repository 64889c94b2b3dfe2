"""Spillway as the policy under test: `spillway.scaling.decide` itself, unchanged, reading the
HAProxy preset's signals from the simulated Prometheus once per `scaling.interval`, and keeping
its engine state between intervals as the operator keeps it in memory. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.sim.policy import Observatory

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simulated second 0 as the engine's clock


class SpillwayPolicy:
    def __init__(self, spec: ScalableServiceSpec, name: str = "Spillway") -> None:
        self.spec, self.name = spec, name
        self.tick_seconds = spec.scaling.interval.total_seconds()
        self.state = EngineState()
        self.last_reason = ""

    def decide(self, observatory: Observatory, current: int) -> int:
        now = EPOCH + timedelta(seconds=observatory.now)
        decision = decide(self.spec, observatory.spillway_signals(), current, self.state, now)
        self.state, self.last_reason = decision.state, decision.reason
        return decision.replicas
