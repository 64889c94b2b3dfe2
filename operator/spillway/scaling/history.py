"""The engine's memory between decisions: recent recommendations (for the stabilization windows)
and recent changes of the count (for the step limits), kept in status so that a restarted
operator continues without a jump. Pure: no I/O, the clock is passed in.

Reading is forgiving: status is written by Spillway, but it may be edited by hand or come from
an older version, so an entry that is not a well-formed `{time, replicas}` / `{time, change}` is
skipped, never raised. Times are written as RFC 3339 with microseconds (like metav1.MicroTime),
because a window boundary is a strict comparison and whole seconds would move entries across it;
whole seconds, as older versions wrote, are read too. Writing is bounded by the CRD's maxItems
(`HISTORY_MAX_ITEMS`) whatever the windows and the interval: see `EngineState.bounded`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from spillway.api.spec import Behavior, ScalingRules
from spillway.api.status import HISTORY_MAX_ITEMS

Entry = tuple[datetime, int]

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def utc(moment: datetime) -> datetime:
    """An aware UTC time; a naive one is taken to be UTC already (never the host's zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    return utc(moment).strftime(_STAMP)


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time with or without fractional seconds, else None."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    try:
        return utc(datetime.fromisoformat(text.upper()))
    except ValueError:  # shaped right but not a date, e.g. month 13
        return None


def policy_periods(rules: ScalingRules) -> tuple[timedelta, timedelta]:
    """The periods of the pods and the percent limits; each defaults to `period`."""
    return (rules.period if rules.pods_period is None else rules.pods_period,
            rules.period if rules.percent_period is None else rules.percent_period)


@dataclass(frozen=True)
class EngineState:
    recommendations: tuple[Entry, ...] = ()
    scale_events: tuple[Entry, ...] = ()
    metrics_failures: int = 0
    last_scale_time: datetime | None = None

    def to_status(self) -> dict[str, Any]:
        return {
            "recommendations": [{"time": stamp(t), "replicas": r} for t, r in self.recommendations],
            "scaleEvents": [{"time": stamp(t), "change": c} for t, c in self.scale_events],
            "metricsFailures": self.metrics_failures,
            "lastScaleTime": stamp(self.last_scale_time) if self.last_scale_time else None,
        }

    @classmethod
    def from_status(cls, status: Any) -> EngineState:
        if not isinstance(status, dict):
            return cls()
        return cls(
            recommendations=_entries(status.get("recommendations"), "replicas", signed=False),
            scale_events=_entries(status.get("scaleEvents"), "change", signed=True),
            metrics_failures=_count(status.get("metricsFailures"), signed=False) or 0,
            last_scale_time=parse_time(status.get("lastScaleTime")),
        )

    def seeded(self, replicas: int, now: datetime) -> EngineState:
        """On first sight (no recommendation at all) the history starts with the current count,
        as the HPA does (horizontal.go, recordInitialRecommendation): a new or adopted workload
        then waits out the scale-down window before it loses replicas."""
        return self if self.recommendations else replace(self, recommendations=((now, replicas),))

    def recorded(self, now: datetime, replicas: int) -> EngineState:
        return replace(self, recommendations=_in_order((*self.recommendations, (now, replicas))))

    def changed(self, now: datetime, change: int) -> EngineState:
        return replace(self, scale_events=_in_order((*self.scale_events, (now, change))),
                       last_scale_time=now)

    def bounded(self, behavior: Behavior, now: datetime, limit: int = HISTORY_MAX_ITEMS) -> EngineState:
        """Only what a later decision can still use, and never more than `limit` entries a list.

        Recommendations answer two questions, always about a suffix in time (every entry after
        now − window): the highest within the scale-down window and the lowest within the
        scale-up window. An entry matters to the first only while it is younger than the window
        and higher than every later entry, to the second only while younger than its window and
        lower than every later entry; the rest can never decide again. Keeping those two
        staircases is exact, and they are short (each holds at most one entry per distinct
        count, and a random walk's staircases hold a handful). Only a long monotone run (one
        recommendation a second, falling steadily for an hour) can outgrow `limit`; then the
        older entries are merged per time bucket (`limit` − 1 over 2 buckets across their span),
        each bucket keeping its highest and its lowest count at its newest time. A merged count
        so counts for at most one bucket longer than it would have, never shorter: the window's
        highest is never lower than the exact one (scaling down waits slightly longer), its
        lowest never higher. The newest recommendation is always kept as it is.

        Scale events answer one question: the net change after now − period, for the longest
        policy period. Entries older than that are dropped; beyond `limit`, the older ones are
        summed per bucket (`limit` − 1 buckets) at the bucket's newest time, so a change counts
        against the step limits for at most one bucket (the period over 511) longer.
        """
        up, down = behavior.scale_up.stabilization_window, behavior.scale_down.stabilization_window
        recommendations = _staircases(self.recommendations, now, up, down)
        if len(recommendations) > limit:
            recommendations = _staircases(_merged_extremes(recommendations, (limit - 1) // 2), now, up, down)
        longest = max((*policy_periods(behavior.scale_up), *policy_periods(behavior.scale_down)))
        events = tuple(e for e in self.scale_events if now - e[0] < longest)
        if len(events) > limit:
            events = _merged_sums(events, limit - 1)
        return replace(self, recommendations=recommendations, scale_events=events)


def _in_order(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(sorted(entries, key=lambda e: e[0]))  # stable: entries of one instant keep their order


def _count(value: object, *, signed: bool) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if signed or number >= 0 else None


def _entries(raw: object, key: str, *, signed: bool) -> tuple[Entry, ...]:
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        if isinstance(item, dict):
            moment, count = parse_time(item.get("time")), _count(item.get(key), signed=signed)
            if moment is not None and count is not None:
                found.append((moment, count))
    return _in_order(found)


def _staircases(entries: tuple[Entry, ...], now: datetime, up: timedelta, down: timedelta) -> tuple[Entry, ...]:
    kept: list[Entry] = []
    later_high, later_low = -math.inf, math.inf
    for moment, count in reversed(_in_order(entries)):
        age = now - moment
        if (age < down and count > later_high) or (age < up and count < later_low):
            kept.append((moment, count))
        later_high, later_low = max(later_high, count), min(later_low, count)
    return tuple(reversed(kept))


def _buckets(entries: tuple[Entry, ...], count: int) -> list[list[Entry]]:
    """`entries` (in time order) split into at most `count` runs of equal time span."""
    first, span, count = entries[0][0], entries[-1][0] - entries[0][0], max(1, count)
    groups: dict[int, list[Entry]] = {}
    for entry in entries:
        index = min(count - 1, int((entry[0] - first) / span * count)) if span else 0
        groups.setdefault(index, []).append(entry)
    return [groups[i] for i in sorted(groups)]


def _merged_extremes(entries: tuple[Entry, ...], count: int) -> tuple[Entry, ...]:
    *older, newest = entries
    merged: list[Entry] = []
    for group in _buckets(tuple(older), count):
        latest, values = group[-1][0], [r for _, r in group]
        merged += [(latest, max(values))] + ([(latest, min(values))] if min(values) != max(values) else [])
    return (*merged, newest)


def _merged_sums(entries: tuple[Entry, ...], count: int) -> tuple[Entry, ...]:
    *older, newest = entries
    merged = [(group[-1][0], sum(c for _, c in group)) for group in _buckets(tuple(older), count)]
    return (*(e for e in merged if e[1]), newest)
