"""Conditions, status and Events of a ScalableService, written only when they change.

Shared by the reconcile and the scaling loop: each collects its condition changes, then
publishes once; status is patched only when it differs and an Event is posted for each
condition whose status or reason moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spillway.api.status import find_condition, set_condition
from spillway.ports import Cluster
from spillway.resources.balancing.base import NOT_HONOURED as BALANCING_NOT_HONOURED

Conditions = list[dict[str, object]]
# Reasons that mean a person must act; the others are progress and get Normal events.
WARNING_REASONS = {"InvalidSpec", "TargetNotFound", "TargetUnsupported", "TargetTaken", "ApplyFailed", "NameConflict",
                   "MetricsUnavailable",
                   "SecretUnavailable", "SecretNotLabelled", "PrometheusNotAllowed", *BALANCING_NOT_HONOURED,
                   # the session store's reasons that need a person (sessionstore.state)
                   "SecretNotFound", "SecretKeyNotFound", "InvalidURL", "InvalidSettings", "NoQuorum", "CredentialsLost",
                   # a spec filled in with defaults, and what the cluster cannot give (spillway.reconcile,
                   # spillway.autoscale)
                   "DefaultRequests", "Unschedulable", "PriorityClassNotFound", "PriorityNotLower",
                   "APINotInstalled", "InvalidRequests"}


@dataclass(frozen=True)
class Outcome:
    writes: int
    ready: bool
    message: str


class Report:
    """Collects condition changes, writes status only when it differs, and posts an Event for
    each condition that moved.

    `observes`: whether this writer advances status.observedGeneration. Only the reconcile does,
    since it is what applies a generation's children; the reconcile of a new generation keys its
    removal of objects no longer wanted on it. A scaling interval that advanced it first (it
    runs on the same new spec, often before the update event's reconcile) would hide the new
    generation from that reconcile, and a switched provider's objects would stay."""

    def __init__(self, cluster: Cluster, body: dict[str, Any], generation: int | None, now: datetime,
                 *, observes: bool = True) -> None:
        self.cluster, self.body, self.generation, self.now = cluster, body, generation, now
        self.observes = observes
        self.writes = 0
        self.moved: list[dict[str, object]] = []

    def set(self, conditions: Conditions, type_: Any, status: bool, reason: str, message: str) -> Conditions:
        before = find_condition(conditions, type_)
        after = set_condition(conditions, type_, status, reason, message, generation=self.generation, now=self.now)
        condition = find_condition(after, type_)
        assert condition is not None
        if before is None or (before.get("status"), before.get("reason")) != (condition["status"], reason):
            self.moved.append(condition)
        return after

    def drop(self, conditions: Conditions, type_: str) -> Conditions:
        """Conditions without `type_`: the part it spoke of is no longer asked for."""
        return [c for c in conditions if c.get("type") != type_]

    def publish(self, fields: dict[str, Any], *, ready: bool, message: str) -> Outcome:
        status = {**fields, "observedGeneration": self.generation} if self.observes else dict(fields)
        live = self.body.get("status") or {}
        if any(live.get(k) != v for k, v in status.items()):
            self.cluster.patch_status(self.body, status)
            self.writes += 1
            # Whoever reads this body next (the reconcile after the scaling loop) sees it.
            self.body["status"] = {**live, **status}
        for condition in self.moved:
            if condition["type"] == "SpecValid" and condition["reason"] == "Valid" and not live:
                continue  # a new valid resource: its Ready event says enough
            # A True condition may still say that part of the spec is not honoured.
            warning = condition["reason"] in WARNING_REASONS
            self.cluster.event(self.body, "Warning" if warning else "Normal", str(condition["reason"]),
                               str(condition["message"]))
        return Outcome(writes=self.writes, ready=ready, message=message)
