"""The `ScalableService` status: what Spillway observed and decided, written only by Spillway.

Also the condition helpers in `metav1.Condition` shape. Pure: no I/O; the clock is passed in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from spillway.api.rules import SpecModel

ConditionType = Literal[
    "Ready", "SpecValid", "ScalingActive", "ScalingLimited", "MetricsAvailable",
    "BalancerReady", "SessionStoreReady", "HeadroomReady", "CapacityPending",
]

# Cap of status.recommendations and status.scaleEvents (maxItems in the CRD); the scaling engine
# bounds its history to it, whatever the windows and the interval.
HISTORY_MAX_ITEMS = 512


class Condition(SpecModel):
    type: str = Field(max_length=316, description="Condition type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                        description="CamelCase reason.")
    message: str = Field("", max_length=32768, description="What a person should know.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, ge=0, description="Generation the condition describes.")


class Decision(SpecModel):
    replicas: int = Field(description="Replica count decided.")
    signal: str = Field(description="Signal whose proposal won, e.g. queue.")
    reason: str = Field(description="One line a person understands.")
    time: str | None = Field(None, description="When the decision was taken (RFC 3339).")


class Signals(SpecModel):
    queue_depth: float | None = Field(None, description="Requests waiting, all replicas.")
    in_flight: float | None = Field(None, description="Requests being served, all replicas.")
    arrival_rate: float | None = Field(None, description="Requests per second arriving.")
    latency_seconds: float | None = Field(None, description="Latency at the target quantile, seconds.")
    time: str | None = Field(None, description="When the signals were read (RFC 3339).")


class Recommendation(SpecModel):
    time: str = Field(description="When the recommendation was made (RFC 3339).")
    replicas: int = Field(description=(
        "Replicas recommended (after tolerance, within min..max), before the windows and step limits."))


class ScaleEvent(SpecModel):
    time: str = Field(description="When the replica count changed (RFC 3339).")
    change: int = Field(description="Replicas added (positive) or removed (negative).")


class BalancerStatus(SpecModel):
    provider: str | None = Field(None, description="Provider in use.")
    algorithm: str | None = Field(None, description="Algorithm in effect.")
    endpoint: str | None = Field(None, description="Address clients use.")


class SessionStoreStatus(SpecModel):
    type: str | None = Field(None, description="Redis (provisioned) or External.")
    mode: str | None = Field(None, description="Standalone or Sentinel (provisioned only).")
    endpoint: str | None = Field(None, description="host:port of the write endpoint (provisioned only).")
    secret_name: str | None = Field(None, description="Secret holding the connection (never the value).")
    primary: str | None = Field(None, description="The pod the sentinels name primary (Sentinel mode).")
    persistence: str | None = Field(None, description="Where data lives: a PersistentVolumeClaim or an emptyDir.")


class ScalableServiceStatus(SpecModel):
    observed_generation: int | None = Field(None, description="Generation of the spec last reconciled.")
    replicas: int | None = Field(None, description="Replicas that exist (scale subresource).")
    ready_replicas: int | None = Field(None, description="Replicas that are ready.")
    desired_replicas: int | None = Field(None, description="Replicas Spillway wants.")
    unschedulable_replicas: int | None = Field(None, ge=0, description=(
        "Replicas waiting for a node: the scheduler found none with room (PodScheduled=False, Unschedulable)."))
    selector: str | None = Field(None, description="Label selector of the replicas (scale subresource).")
    last_scale_time: str | None = Field(None, description="When the replica count last changed (RFC 3339).")
    last_decision: Decision | None = Field(None, description="The last scaling decision and why.")
    signals: Signals | None = Field(None, description="Signals read at the last interval.")
    recommendations: list[Recommendation] = Field(default_factory=list, max_length=HISTORY_MAX_ITEMS, description=(
        "Recent recommendations, kept for the stabilization windows across operator restarts."))
    scale_events: list[ScaleEvent] = Field(default_factory=list, max_length=HISTORY_MAX_ITEMS, description=(
        "Recent changes of the replica count, kept for the step limits across operator restarts."))
    metrics_failures: int = Field(0, ge=0, description="Consecutive intervals whose signals could not be read.")
    balancer: BalancerStatus | None = Field(None, description="The balancer in effect.")
    session_store: SessionStoreStatus | None = Field(None, description="The session store in effect.")
    conditions: list[Condition] = Field(default_factory=list, max_length=32, description=(
        "Ready, SpecValid, ScalingActive, ScalingLimited, MetricsAvailable, BalancerReady, SessionStoreReady, "
        "HeadroomReady, CapacityPending."),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, object]],
    type_: ConditionType,
    status: bool | None,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, object]]:
    """Conditions with `type_` set; lastTransitionTime moves only when the status changes."""
    text = "Unknown" if status is None else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), None)
    moved = previous is None or previous.get("status") != text
    condition: dict[str, object] = {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now) if moved or previous is None
        else previous.get("lastTransitionTime") or rfc3339(now),
        "observedGeneration": generation,
    }
    if previous is None:
        return [*conditions, condition]
    return [condition if c.get("type") == type_ else c for c in conditions]

def find_condition(conditions: list[dict[str, object]], type_: str) -> dict[str, object] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
