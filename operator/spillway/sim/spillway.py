"""Spillway as the policy under test: `spillway.scaling.decide` itself, unchanged, reading the
HAProxy preset's signals from the simulated Prometheus once per `scaling.interval`, and the count
of its replicas Pending for want of a node (while there are any, the engine raises the count no
further on the queue, only as far as demand asks), and keeping its engine state between
intervals as the operator keeps it in memory. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.behavior import EngineState
from spillway.scaling.engine import decide
from spillway.sim.policy import Observatory

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simulated second 0 as the engine's clock


class SpillwayPolicy:
    def __init__(self, spec: ScalableServiceSpec, name: str = "Spillway", *, reads_unschedulable: bool = True) -> None:
        """`reads_unschedulable=False` is the control: the engine as if no pod ever waited for a node."""
        self.spec, self.name, self.reads_unschedulable = spec, name, reads_unschedulable
        self.tick_seconds = spec.scaling.interval.total_seconds()
        self.state = EngineState()
        self.last_reason = ""
        self.last_limited: str | None = None

    def decide(self, observatory: Observatory, current: int) -> int:
        now = EPOCH + timedelta(seconds=observatory.now)
        decision = decide(self.spec, observatory.spillway_signals(), current, self.state, now,
                          unschedulable=observatory.unschedulable_pods() if self.reads_unschedulable else 0)
        self.state, self.last_reason, self.last_limited = decision.state, decision.reason, decision.limited
        return decision.replicas
