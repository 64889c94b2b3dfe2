"""Policies for the simulator's tests: a count that never moves."""

from __future__ import annotations

from dataclasses import dataclass

from spillway.sim.policy import Observatory


@dataclass
class Fixed:
    """Always asks for `count` replicas."""

    count: int
    name: str = "fixed"
    tick_seconds: float = 15.0

    def decide(self, observatory: Observatory, current: int) -> int:
        return self.count
