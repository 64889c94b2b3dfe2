"""One scaling decision: signals in, a replica count and its reason out. Pure and
deterministic: the same spec, signals, count, state and clock give the same Decision.

Order: proposals (largest wins) -> bounds -> tolerance -> stabilization windows -> step
limits, except in panic, when a queue the current replicas can never drain within
capacity.timeout takes the proposal at once (within max). Missing data never lowers the count:
with some signals missing, proposals may raise it but not lower it; with none readable, Hold
keeps it and Fallback raises it to fallbackReplicas after `after` failed intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import format_duration
from spillway.scaling.behavior import EngineState, limit_steps, stabilize, within_tolerance
from spillway.scaling.bounds import clamp
from spillway.scaling.proposals import Proposal, Signals, panic_threshold, propose


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


def decide(spec: ScalableServiceSpec, signals: Signals, current: int, state: EngineState, now: datetime) -> Decision:
    behavior = spec.scaling.behavior
    bounds = spec.replicas
    state = state.pruned(behavior, now)
    proposals = tuple(propose(spec, signals))
    available = not signals.missing

    if not proposals:
        return _without_signals(spec, signals, current, state, now)

    best = max(proposals, key=lambda p: p.replicas)
    raw = clamp(best.replicas, bounds)
    notes: list[str] = []
    limited = None
    if best.replicas > bounds.max:
        limited, notes = "AtMax", [f"at max {bounds.max}"]
    elif best.replicas < bounds.min:
        limited, notes = "AtMin", [f"at min {bounds.min}"]

    state = replace(state, metrics_failures=0, recommendations=(*state.recommendations, (now, raw)))
    signal, reason = best.signal, best.reason

    queue = signals.queue_depth
    if behavior.panic and queue is not None and raw > current and queue > panic_threshold(spec, signals, current):
        final = raw
        signal = "panic"
        reason = f"panic: {reason}; {current} replicas cannot drain the queue within {format_duration(spec.capacity.timeout)}"
    else:
        target = raw
        if within_tolerance(raw, current, behavior.tolerance) and raw != current:
            target = current
            notes.append(f"within tolerance {behavior.tolerance:g} of {current}")
        held = stabilize(target, current, state.recommendations[:-1], behavior, now)
        stepped = limit_steps(held.replicas, current, state.scale_events, behavior, now)
        final = clamp(stepped.replicas, bounds)
        notes += held.notes + stepped.notes
        if stepped.notes:
            limited = "StepLimit"
        elif held.notes and limited is None:
            limited = "Stabilizing"

    if not available and final < current:
        notes.append(f"{', '.join(sorted(signals.missing))} missing: not scaling down")
        final = current
    if notes:
        reason = f"{reason} ({'; '.join(notes)})"
    return _decision(final, signal, reason, current, proposals, limited, available, state, now)


def _without_signals(spec: ScalableServiceSpec, signals: Signals, current: int, state: EngineState,
                     now: datetime) -> Decision:
    policy = spec.scaling.on_metrics_unavailable
    failures = state.metrics_failures + 1
    state = replace(state, metrics_failures=failures)
    missing = ", ".join(sorted(signals.missing)) or "no signal is configured"
    hold = clamp(current, spec.replicas)
    if policy.action == "Fallback" and policy.fallback_replicas is not None and failures >= policy.after:
        target = max(hold, policy.fallback_replicas)
        reason = f"signals unavailable for {failures} intervals ({missing}): fallback to {target}"
        return _decision(target, "fallback", reason, current, (), None, False, state, now)
    reason = f"signals unavailable ({missing}): holding {hold}"
    return _decision(hold, "hold", reason, current, (), None, False, state, now)


def _decision(final: int, signal: str, reason: str, current: int, proposals: tuple[Proposal, ...],
              limited: str | None, available: bool, state: EngineState, now: datetime) -> Decision:
    direction: Literal["up", "down", "none"] = "up" if final > current else "down" if final < current else "none"
    if final != current:
        state = replace(state, scale_events=(*state.scale_events, (now, final - current)), last_scale_time=now)
    return Decision(replicas=final, signal=signal, reason=reason, direction=direction, proposals=proposals,
                    limited=limited, metrics_available=available, state=state)
