"""What a `make demo` run did, in numbers: `summarize` reads the load's lines (`demo.load`), the
orchestrator's status samples and the events it caused or saw, and returns a `Summary` (phases,
errors, timings of the scale-out, the recovery and the scale-in, users logged out). Pure: plain
rows in, numbers out, so that the orchestrator, the report (`demo.report`) and the tests assert on
the same figures.

Times are seconds from the load's start (its first phase), the origin of the picture's axis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = Mapping[str, Any]
DRAIN = "drain"  # demo.load's name for the seconds after the last phase


@dataclass(frozen=True)
class PhaseResult:
    name: str
    start_seconds: float
    seconds: float
    target_rps: float
    sent: int
    ok: int
    errors: int
    p95_seconds: float | None  # of the phase's OK answers (estimated from per-second p95s without a summary line)


@dataclass(frozen=True)
class Event:
    seconds: float
    what: str


@dataclass(frozen=True)
class ReplicaStart:
    """A replica of the app created during or after the surge, from the node's own accounts (the
    API server's times, the kernel's CPU figures of its cgroup: `tests.cluster.cpu`)."""

    name: str
    created_seconds: float  # from the load's start
    ready_after_seconds: float | None  # created -> Ready (None: never Ready while watched)
    cpu_seconds: float | None  # the pod's CPU time from creation to Ready
    waited_seconds: float | None  # its threads' time runnable but waiting for a CPU, to Ready
    throttled_seconds: float  # its CFS quota's hold-backs in that time


@dataclass(frozen=True)
class StartWindow:
    """The machine's CPU in the seconds when a new replica was starting (created, not yet Ready)."""

    seconds: float
    busy_cores: float  # the machine's busy CPU-seconds a second
    node_cores: float  # of which the node's pods
    bed_cores: float  # of which the test bed's own group (control plane, Prometheus)


@dataclass(frozen=True)
class Summary:
    started_at: float  # unix time of the load's start: the origin of every `*_seconds` below
    duration_seconds: float
    objective_seconds: float
    users: int | None
    work_ms: int | None
    phases: tuple[PhaseResult, ...]
    sent: int
    ok: int
    errors: int
    error_rate: float  # errors / sent, 0 with nothing sent
    error_kinds: Mapping[str, int]
    p95_seconds: float | None  # the whole run's
    surge: str | None  # the phase of the highest target rate (None when all rates are equal)
    calm: str | None  # the phase after the surge
    grace_seconds: float
    errors_outside_surge_onset: int  # errors except those completed in the surge's first grace_seconds
    baseline_replicas: int | None  # desired when the surge began
    first_scale_up_to: int | None  # desired at the first sample above the baseline in or after the surge
    min_replicas: int | None  # the fewest desired in any sample
    peak_replicas: int | None  # the most desired, and when first reached
    peak_replicas_at: float | None
    scaled_in: bool  # a sample after the peak asked for fewer replicas than the peak
    scale_up_seconds: float | None  # surge start -> the first sample with desired above the baseline
    ready_seconds: float | None  # surge start -> ready reaches first_scale_up_to
    seconds_over_objective: int  # seconds whose client p95 was over the objective (or all failed)
    p95_recovered_seconds: float | None  # surge start -> p95 under the objective for settle seconds running
    scale_in_seconds: float | None  # calm start -> the first sample with fewer desired than then
    back_to_baseline_seconds: float | None  # calm start -> desired back at baseline_replicas
    logged_out: int  # distinct users ever logged out: must be 0
    logins: int
    events: tuple[Event, ...]
    starts: tuple[ReplicaStart, ...] = ()  # empty where the node's CPU could not be watched
    start_window: StartWindow | None = None

    def phase(self, name: str | None) -> PhaseResult | None:
        return next((p for p in self.phases if p.name == name), None)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file's objects; a missing file, blank lines and a torn last line are skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _weighted_p95(rows: Sequence[Row]) -> float | None:
    """The OK-weighted 95th percentile of per-second p95s: an estimate when no summary line says."""
    weighted = sorted((row["p95"], row["ok"]) for row in rows if row.get("p95") is not None and row.get("ok"))
    total = sum(weight for _, weight in weighted)
    running = 0
    for value, weight in weighted:
        running += weight
        if running >= 0.95 * total:
            return float(value)
    return None


def _phases(seconds_rows: Sequence[Row], final: Row | None, origin: float) -> tuple[PhaseResult, ...]:
    if final and final.get("phases"):
        return tuple(PhaseResult(p["name"], p["start"] - origin, p["seconds"], p["target_rps"], p["sent"], p["ok"],
                                 p["errors"], p.get("p95")) for p in final["phases"])
    groups: list[list[Row]] = []
    for row in seconds_rows:
        if row["phase"] == DRAIN:
            continue
        if groups and groups[-1][0]["phase"] == row["phase"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return tuple(PhaseResult(g[0]["phase"], g[0]["t"] - 1 - origin, float(len(g)), g[0]["target_rps"],
                             sum(r["sent"] for r in g), sum(r["ok"] for r in g), sum(r["errors"] for r in g),
                             _weighted_p95(g)) for g in groups)


def _origin(seconds_rows: Sequence[Row], final: Row | None, status_rows: Sequence[Row]) -> float:
    if final and final.get("phases"):
        return float(final["phases"][0]["start"])
    if seconds_rows:
        return float(seconds_rows[0]["t"]) - 1
    return float(status_rows[0]["t"]) if status_rows else 0.0


def _samples(status_rows: Sequence[Row], origin: float) -> list[tuple[float, int, int]]:
    """(seconds, desired, ready) of the samples that have both, in time order."""
    return sorted((row["t"] - origin, int(row["desired"]), int(row.get("ready") or 0))
                  for row in status_rows if isinstance(row.get("desired"), int | float))


def _at(samples: Sequence[tuple[float, int, int]], when: float) -> int | None:
    """Desired at `when`: the last sample at or before it, else the first after it."""
    before = [desired for t, desired, _ in samples if t <= when]
    return before[-1] if before else (samples[0][1] if samples else None)


def _first(samples: Sequence[tuple[float, int, int]], after: float,
           test: Callable[[int, int], bool]) -> tuple[float, int, int] | None:
    return next((s for s in samples if s[0] >= after and test(s[1], s[2])), None)


def _latency_timing(seconds_rows: Sequence[Row], origin: float, objective: float, surge_start: float | None,
                    settle_seconds: float) -> tuple[int, float | None]:
    """Seconds over the objective, and surge start -> the start of the first `settle_seconds` run
    of seconds not over it after the first one over it in or after the surge (0 if none was)."""
    def over(row: Row) -> bool:
        return (row["p95"] > objective) if row.get("p95") is not None else bool(row.get("errors"))

    timed = [(row["t"] - 1 - origin, over(row)) for row in seconds_rows]
    seconds_over = sum(is_over for _, is_over in timed)
    if surge_start is None:
        return seconds_over, None
    first_over = next((i for i, (t, is_over) in enumerate(timed) if t >= surge_start and is_over), None)
    if first_over is None:
        return seconds_over, 0.0
    run = max(1, math.ceil(settle_seconds))
    for i in range(first_over + 1, len(timed) - run + 1):
        if not any(is_over for _, is_over in timed[i:i + run]):
            return seconds_over, timed[i][0] - surge_start
    return seconds_over, None


def _at_time(series: Sequence[tuple[float, Sequence[float]]], when: float) -> Sequence[float] | None:
    """The values at `when`, linearly between the samples around it (the last one past the end)."""
    if not series or when < series[0][0]:
        return None
    for (t0, v0), (t1, v1) in zip(series, series[1:], strict=False):
        if t0 <= when <= t1:
            f = (when - t0) / (t1 - t0) if t1 > t0 else 1.0
            return [a + (b - a) * f for a, b in zip(v0, v1, strict=True)]
    return series[-1][1]


def replica_starts(cpu_rows: Sequence[Row], deployment: str, since: float,
                   origin: float) -> tuple[tuple[ReplicaStart, ...], StartWindow | None]:
    """Each replica of `deployment` (its pods' owner is a ReplicaSet `deployment-<hash>`) created at
    or after `since` (unix time), and the machine's CPU while they started. `cpu_rows` are
    `tests.cluster.cpu.Watch`'s lines: pod rows (`pod`) and samples (`t`)."""
    pods: dict[str, Row] = {}
    series: dict[str, list[tuple[float, Sequence[float]]]] = {}
    machine: list[tuple[float, Sequence[float]]] = []
    for row in cpu_rows:
        if "pod" in row:
            pods[row["pod"]] = {**pods.get(row["pod"], {}), **{k: v for k, v in row.items() if v is not None}}
        elif "t" in row:
            machine.append((row["t"], (row["host"], row["node"], row["bed"])))
            for uid, values in row.get("pods", {}).items():
                series.setdefault(uid, []).append((row["t"], values))
    ours = sorted((p for p in pods.values() if str(p.get("owner", "")).startswith("ReplicaSet/")
                   and str(p["owner"]).removeprefix("ReplicaSet/").rsplit("-", 1)[0] == deployment
                   and p.get("created", 0) >= since), key=lambda p: (p["created"], p["name"]))
    starts = []
    for pod in ours:
        ready = pod.get("ready")
        at_ready = _at_time(series.get(pod["pod"], []), ready) if ready is not None else None
        starts.append(ReplicaStart(
            name=str(pod["name"]).split("/", 1)[-1], created_seconds=pod["created"] - origin,
            ready_after_seconds=ready - pod["created"] if ready is not None else None,
            cpu_seconds=at_ready[0] if at_ready else None, waited_seconds=at_ready[1] if at_ready else None,
            throttled_seconds=at_ready[2] if at_ready else 0.0))
    # The seconds in which some replica was starting: the union of their [created, Ready].
    spans: list[list[float]] = []
    for start, end in sorted((p["created"], p["ready"]) for p in ours if p.get("ready") is not None):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    seconds, used = 0.0, [0.0, 0.0, 0.0]
    for start, end in spans:
        a, b = _at_time(machine, start), _at_time(machine, end)
        if a is not None and b is not None and end > start:
            seconds += end - start
            used = [u + (y - x) for u, x, y in zip(used, a, b, strict=True)]
    window = StartWindow(seconds=seconds, busy_cores=used[0] / seconds, node_cores=used[1] / seconds,
                         bed_cores=used[2] / seconds) if seconds > 0 else None
    return tuple(starts), window


def summarize(load_rows: Sequence[Row], status_rows: Sequence[Row], events: Sequence[Row], objective: float, *,
              surge_phase: str | None = None, grace_seconds: float = 30.0, settle_seconds: float = 10.0,
              cpu_rows: Sequence[Row] = (), deployment: str | None = None) -> Summary:
    """The run's numbers. The surge is `surge_phase`, else the phase of the highest target rate."""
    seconds_rows = sorted((r for r in load_rows if not r.get("summary")), key=lambda r: r["t"])
    final = next((r for r in reversed(load_rows) if r.get("summary")), None)
    origin = _origin(seconds_rows, final, status_rows)
    phases = _phases(seconds_rows, final, origin)
    totals = final or {"sent": sum(r["sent"] for r in seconds_rows), "ok": sum(r["ok"] for r in seconds_rows),
                       "errors": sum(r["errors"] for r in seconds_rows),
                       "logged_out": seconds_rows[-1]["logged_out"] if seconds_rows else 0,
                       "logins": seconds_rows[-1]["logins"] if seconds_rows else 0,
                       "duration": len(seconds_rows), "p95": _weighted_p95(seconds_rows)}
    kinds: dict[str, int] = {}
    for row in seconds_rows:
        for kind, count in row.get("error_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + count

    rates = {p.target_rps for p in phases}
    surge = next((p for p in phases if p.name == surge_phase), None) if surge_phase else (
        max(phases, key=lambda p: p.target_rps) if len(rates) > 1 else None)
    calm = phases[phases.index(surge) + 1] if surge and phases.index(surge) + 1 < len(phases) else None
    surge_start = surge.start_seconds if surge else None

    onset = [r for r in seconds_rows if surge_start is not None and 0 <= r["t"] - 1 - origin - surge_start < grace_seconds]
    samples = _samples(status_rows, origin)
    peak = max(samples, key=lambda s: s[1], default=None)
    baseline = _at(samples, surge_start) if surge_start is not None else None
    up = ready = down = back = None
    if surge_start is not None and baseline is not None:
        up = _first(samples, surge_start, lambda d, _: d > baseline)
        ready = _first(samples, up[0], lambda _, r: r >= up[1]) if up else None
    level = _at(samples, calm.start_seconds) if calm else None
    if calm and level is not None and baseline is not None and level > baseline:  # there is something to scale in
        down = _first(samples, calm.start_seconds, lambda d, _: d < level)
        back = _first(samples, calm.start_seconds, lambda d, _: d <= baseline)
    over, recovered = _latency_timing(seconds_rows, origin, objective, surge_start, settle_seconds)
    sent = int(totals["sent"])
    starts, window = (replica_starts(cpu_rows, deployment, origin + surge_start, origin)
                      if cpu_rows and deployment and surge_start is not None else ((), None))
    return Summary(
        started_at=origin, duration_seconds=float(totals["duration"]), objective_seconds=objective,
        users=final.get("users") if final else None, work_ms=final.get("work_ms") if final else None,
        phases=phases, sent=sent, ok=int(totals["ok"]), errors=int(totals["errors"]),
        error_rate=totals["errors"] / sent if sent else 0.0, error_kinds=dict(sorted(kinds.items())),
        p95_seconds=totals.get("p95"), surge=surge.name if surge else None, calm=calm.name if calm else None,
        grace_seconds=grace_seconds, errors_outside_surge_onset=sum(r["errors"] for r in seconds_rows)
        - sum(r["errors"] for r in onset),
        baseline_replicas=baseline, first_scale_up_to=up[1] if up else None,
        min_replicas=min(d for _, d, _ in samples) if samples else None,
        peak_replicas=peak[1] if peak else None, peak_replicas_at=peak[0] if peak else None,
        scaled_in=peak is not None and any(t > peak[0] and d < peak[1] for t, d, _ in samples),
        scale_up_seconds=up[0] - surge_start if up and surge_start is not None else None,
        ready_seconds=ready[0] - surge_start if ready and surge_start is not None else None,
        seconds_over_objective=over, p95_recovered_seconds=recovered,
        scale_in_seconds=down[0] - calm.start_seconds if down and calm else None,
        back_to_baseline_seconds=back[0] - calm.start_seconds if back and calm else None,
        logged_out=int(totals["logged_out"]), logins=int(totals["logins"]),
        events=tuple(sorted((Event(e["t"] - origin, str(e["what"])) for e in events), key=lambda e: e.seconds)),
        starts=starts, start_window=window)
