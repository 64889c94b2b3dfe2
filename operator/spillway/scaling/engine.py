"""One scaling decision: signals in, a replica count and its reason out. Pure and
deterministic: the same spec, signals, count, state and clock give the same Decision.

Order, as the HPA's (horizontal.go, reconcileAutoscaler and normalizeDesiredReplicasWithBehaviors):
a first sight seeds the history with the current count; each signal proposes a count, held at the
current one when its ratio to its target is within tolerance; the largest proposal wins and is
clamped to [min, max]; that recommendation is recorded; the stabilization windows and the step
limits shape it. Spillway's own additions: NaN, infinite or negative readings are missing signals;
in panic, when a queue the current replicas can never drain within capacity.timeout builds up,
the proposal is taken at once (within max). Missing data never lowers the count below
min(current, max): with some signals missing, proposals may raise it but not lower it; with none
readable, Hold keeps it and Fallback raises it to fallbackReplicas after `after` failed intervals.
While replicas asked for earlier wait for a node (`unschedulable`, the pods the scheduler marked
Unschedulable), the queue raises the count no further: it still reads the backlog they have not
yet served, and more Pending pods would only wait beside them; the demand signals still may. The
recommendation is still recorded, so the count resumes from it once they are scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from spillway.api.spec import Replicas, ScalableServiceSpec
from spillway.api.units import format_duration
from spillway.scaling.behavior import EngineState, limit_steps, stabilize, tolerances, tolerate
from spillway.scaling.bounds import clamp
from spillway.scaling.history import utc
from spillway.scaling.proposals import (
    SIGNAL_NAMES,
    Proposal,
    Proposed,
    Signals,
    normalized,
    panic_threshold,
    propose,
    without_idle_latency,
)


@dataclass(frozen=True)
class Decision:
    replicas: int
    signal: str
    reason: str
    direction: Literal["up", "down", "none"]
    proposals: tuple[Proposal, ...]
    limited: str | None
    metrics_available: bool
    state: EngineState
    # Why the latency objective cannot be met by any count (it is at or below the service time),
    # with the numbers; None when it can. The loop reports it as ScalingLimited/ObjectiveUnreachable.
    objective_unreachable: str | None = None


def decide(spec: ScalableServiceSpec, signals: Signals, current: int, state: EngineState, now: datetime,
           unschedulable: int = 0) -> Decision:
    now = utc(now)
    behavior = spec.scaling.behavior
    bounds = spec.replicas
    signals = without_idle_latency(normalized(signals))
    available = not signals.missing
    state = state.seeded(clamp(current, bounds), now)
    proposed = propose(spec, signals, current)
    within = tolerances(behavior)
    proposals = tuple(tolerate(p, current, within) for p in proposed.proposals)
    if not proposals:
        return _without_proposals(spec, signals, current, state, now, proposed)

    best = max(proposals, key=lambda p: p.replicas)
    raw = clamp(best.replicas, bounds)
    notes: list[str] = []
    limited = None
    if best.held_by_tolerance and best.ratio is not None:
        notes.append(f"ratio {best.ratio:.3g} within tolerance {within} of {current}")
    if best.replicas > bounds.max:
        limited, notes = "AtMax", [*notes, f"at max {bounds.max}"]
    elif best.replicas < bounds.min:
        limited, notes = "AtMin", [*notes, f"at min {bounds.min}"]

    history = state.recommendations
    # horizontal.go stores prenormalizedDesiredReplicas: the recommendation after tolerance.
    state = replace(state.recorded(now, _sustained(proposals, best, raw, bounds)), metrics_failures=0)
    signal, reason = best.signal, best.reason

    queue = signals.queue_depth
    if behavior.panic and queue is not None and raw > current and queue > panic_threshold(spec, signals, current):
        final = raw
        signal = "panic"
        timeout = format_duration(spec.capacity.timeout)
        reason = f"panic: {reason}; {current} replicas cannot drain the queue within {timeout}"
    else:
        held = stabilize(raw, current, history, behavior, now)
        stepped = limit_steps(held.replicas, current, state.scale_events, behavior, now)
        final = clamp(stepped.replicas, bounds)
        notes += held.notes + stepped.notes
        if stepped.notes:
            limited = "StepLimit"
        elif held.notes:
            limited = "Stabilizing"

    floor = clamp(current, bounds)
    allowed = _while_pending(proposals, floor, bounds)
    if unschedulable > 0 and final > allowed:  # held within bounds: min stands even then
        notes.append(f"{unschedulable} of the replicas asked for wait for a node: not scaling up to {final} "
                     "on the queue until they are scheduled")
        final, limited = allowed, "CapacityPending"
    if not available and final < floor:
        below = "scaling down" if floor == current else f"scaling below max {floor}"
        notes.append(f"{', '.join(sorted(signals.missing))} missing: not {below}")
        final = floor
    if notes:
        reason = f"{reason} ({'; '.join(notes)})"
    return _decision(spec, final, signal, reason, current, proposals, limited, available, state, now,
                     proposed.objective_unreachable)


def _while_pending(proposals: tuple[Proposal, ...], floor: int, bounds: Replicas) -> int:
    """The most a scale-up may reach while replicas wait for a node. The queue grows while they
    wait, since they serve nothing yet, so its proposal would ask again for what is already asked;
    the demand signals (arrival rate, in-flight, latency) read the load itself, which Pending pods
    do not change, so a rise in load is still followed. Measured in the simulator (bench/autoscalers.md,
    "Nodes and headroom"): holding every signal cost attainment on bursty traces."""
    demand = [p.replicas for p in proposals if p.signal != "queue"]
    return max(floor, clamp(max(demand), bounds)) if demand else floor


def _sustained(proposals: tuple[Proposal, ...], best: Proposal, raw: int, bounds: Replicas) -> int:
    """The recommendation the scale-down window remembers. A queue is a stock, not a rate: the
    replicas it asks for drain it once and are not needed after, so when the queue wins and
    another signal proposes too, the window keeps the highest of the others (the demand the
    rate, in-flight and latency signals measure). Without that, one backlog held its count for
    the whole window: a flash crowd in the simulator kept 80 replicas for 5 minutes where 27
    served it. The scale-up itself is the queue's, as it proposed."""
    others = [p.replicas for p in proposals if p.signal != "queue"]
    if best.signal != "queue" or not others:
        return raw
    return min(raw, clamp(max(others), bounds))


def _without_proposals(spec: ScalableServiceSpec, signals: Signals, current: int, state: EngineState,
                       now: datetime, proposed: Proposed) -> Decision:
    hold = clamp(current, spec.replicas)
    if not signals.missing and any(getattr(signals, name) is not None for name in SIGNAL_NAMES):
        # Every configured signal was read, yet none proposes (the latency model abstained):
        # nothing argues for a change, and nothing failed.
        why = "; ".join(proposed.abstained) or "no signal read proposes a count"
        return _decision(spec, hold, "hold", f"{why}: holding {hold}", current, (), None, True,
                         replace(state, metrics_failures=0), now, proposed.objective_unreachable)
    policy = spec.scaling.on_metrics_unavailable
    failures = state.metrics_failures + 1
    state = replace(state, metrics_failures=failures)
    missing = ", ".join(sorted(signals.missing)) or "no signal is configured"
    if policy.action == "Fallback" and policy.fallback_replicas is not None and failures >= policy.after:
        target = max(hold, policy.fallback_replicas)
        reason = f"signals unavailable for {failures} intervals ({missing}): fallback to {target}"
        return _decision(spec, target, "fallback", reason, current, (), None, False, state, now,
                         proposed.objective_unreachable)
    reason = f"signals unavailable ({missing}): holding {hold}"
    return _decision(spec, hold, "hold", reason, current, (), None, False, state, now, proposed.objective_unreachable)


def _decision(spec: ScalableServiceSpec, final: int, signal: str, reason: str, current: int,
              proposals: tuple[Proposal, ...], limited: str | None, available: bool, state: EngineState,
              now: datetime, unreachable: str | None) -> Decision:
    direction: Literal["up", "down", "none"] = "up" if final > current else "down" if final < current else "none"
    if final != current:
        state = state.changed(now, final - current)
    return Decision(replicas=final, signal=signal, reason=reason, direction=direction, proposals=proposals,
                    limited=limited, metrics_available=available, state=state.bounded(spec.scaling.behavior, now),
                    objective_unreachable=unreachable)
