"""The end of `make demo`: one markdown report and one picture from the load's log (`demo.load`),
the orchestrator's status samples and the events it caused or saw. `summarize`, `render_markdown`
and `narrative` are pure (plain rows in, numbers and text out) so that the orchestrator and the
tests can assert on them; `write_report` is the edge: it reads the two logs and writes
`demo-report.md` and `demo.png`, drawn on matplotlib's Agg canvas (no display, no pyplot state).
The text states only what the numbers say: every sentence is conditional on them.

Times are seconds from the load's start (its first phase), the origin of the picture's axis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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


def summarize(load_rows: Sequence[Row], status_rows: Sequence[Row], events: Sequence[Row], objective: float, *,
              surge_phase: str | None = None, grace_seconds: float = 30.0, settle_seconds: float = 10.0) -> Summary:
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
        events=tuple(sorted((Event(e["t"] - origin, str(e["what"])) for e in events), key=lambda e: e.seconds)))


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.0f} s"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"


def _when(summary: Summary, seconds: float) -> str:
    """`75 s (surge + 15 s)`: a time and where it fell in the profile."""
    phase = next((p for p in reversed(summary.phases) if p.start_seconds <= seconds), None)
    return f"{seconds:.0f} s" + (f" ({phase.name} + {seconds - phase.start_seconds:.0f} s)" if phase else "")


def _kinds(kinds: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]))


def narrative(summary: Summary) -> str:
    """'What happened', in sentences each of which one number supports."""
    s, said = summary, []
    surge, calm = s.phase(s.surge), s.phase(s.calm)
    objective = _ms(s.objective_seconds)
    if surge:
        before = s.phases[s.phases.index(surge) - 1] if s.phases.index(surge) else None
        said.append(f"The load rose {f'from {before.target_rps:g} ' if before else ''}to {surge.target_rps:g} "
                    f"requests/s at {surge.start_seconds:.0f} s ({surge.name}, {surge.seconds:.0f} s).")
        if s.scale_up_seconds is not None:
            said.append(f"Spillway asked for more replicas {s.scale_up_seconds:.0f} s later "
                        f"({s.baseline_replicas} → {s.first_scale_up_to})"
                        + (f"; they were ready {s.ready_seconds:.0f} s after the surge began" if s.ready_seconds
                           is not None else "; they were not all ready by the end")
                        + f", and the count peaked at {s.peak_replicas} at {s.peak_replicas_at:.0f} s.")
        else:
            said.append("Spillway did not scale up during or after the surge." if s.peak_replicas is not None
                        else "No status samples were recorded, so scaling cannot be told.")
    if s.seconds_over_objective == 0:
        said.append(f"Client p95 stayed under the {objective} objective in every second.")
    else:
        said.append(f"Client p95 was over the {objective} objective in {s.seconds_over_objective} seconds of the run"
                    + ("" if not surge else f" and back under it to stay {s.p95_recovered_seconds:.0f} s after the "
                       "surge began" if s.p95_recovered_seconds is not None else " and not back under it to stay "
                       "by the end") + ".")
    if s.errors:
        said.append(f"{s.errors} of {s.sent} requests failed ({s.error_rate * 100:.2f} %: {_kinds(s.error_kinds)})"
                    + (f", {s.errors_outside_surge_onset} of them outside the surge's first {s.grace_seconds:.0f} s"
                       if surge else "") + ".")
    else:
        said.append(f"None of the {s.sent} requests failed.")
    if calm and s.scale_in_seconds is not None:
        said.append(f"Once the calm began, Spillway scaled in after {s.scale_in_seconds:.0f} s"
                    + (f" and was back at {s.baseline_replicas} replicas after {s.back_to_baseline_seconds:.0f} s."
                       if s.back_to_baseline_seconds is not None else f", not back at {s.baseline_replicas} by the end."))
    elif calm and s.scale_up_seconds is not None:
        said.append("Spillway had not scaled in by the end of the run.")
    deletions = sum("deleted" in e.what for e in s.events)
    had = f"; the run had {deletions} deletion{'s' * (deletions != 1)}" if deletions else ""
    said.append(f"No user was logged out{had}." if s.logged_out == 0 else
                f"{s.logged_out} user{'s were' if s.logged_out != 1 else ' was'} logged out: sessions were lost{had}.")
    return " ".join(said)


def render_markdown(summary: Summary, title: str, picture: str) -> str:
    s = summary
    surge, calm = s.phase(s.surge), s.phase(s.calm)
    profile = " → ".join(f"`{p.name}` {p.seconds:.0f} s at {p.target_rps:g} req/s" for p in s.phases) or "—"
    work = f"`GET /whoami?ms={s.work_ms}` (holds a server thread {s.work_ms} ms)" if s.work_ms is not None else "—"
    results = [("requests sent", f"{s.sent}"), ("answered OK", f"{s.ok}"),
               ("errors", f"{s.errors} ({s.error_rate * 100:.2f} %)" + (f": {_kinds(s.error_kinds)}" if s.errors
                                                                          else "")),
               (f"errors outside the surge's first {s.grace_seconds:.0f} s",
                f"{s.errors_outside_surge_onset}" if surge else "— (no surge)"),
               ("p95, whole run", _ms(s.p95_seconds)),
               *((f"p95 in {p.name}", _ms(p.p95_seconds)) for p in s.phases),
               ("peak replicas (desired)", "—" if s.peak_replicas is None or s.peak_replicas_at is None
                else f"{s.peak_replicas}, at {_when(s, s.peak_replicas_at)}"),
               ("surge start → first scale-up", _s(s.scale_up_seconds) + (
                   f" ({s.baseline_replicas} → {s.first_scale_up_to} replicas)" if s.first_scale_up_to else "")),
               ("surge start → those replicas ready", _s(s.ready_seconds)),
               (f"surge start → p95 back under {_ms(s.objective_seconds)}", _s(s.p95_recovered_seconds)
                + f" (over it in {s.seconds_over_objective} s of the run)"),
               ("calm start → first scale-in", _s(s.scale_in_seconds) if calm else "— (no calm)"),
               (f"calm start → back to {s.baseline_replicas} replicas", _s(s.back_to_baseline_seconds)),
               ("logged-out users (must be 0)", f"**{s.logged_out}**" + (" — sessions were lost" if s.logged_out
                                                                          else "")),
               ("logins", f"{s.logins}")]
    lines = [f"# {title}", "",
             f"Load: {profile}; {s.users if s.users is not None else '—'} users logged in, each request {work}. "
             f"Objective: p95 under {_ms(s.objective_seconds)}. The run lasted {s.duration_seconds:.0f} s.", "",
             "## Results", "", "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in results), "",
             "| phase | start | length | target req/s | sent | OK | errors | p95 |", "|---|---|---|---|---|---|---|---|",
             *(f"| {p.name} | {p.start_seconds:.0f} s | {p.seconds:.0f} s | {p.target_rps:g} | {p.sent} | {p.ok} | "
               f"{p.errors} | {_ms(p.p95_seconds)} |" for p in s.phases), "",
             "## Events", ""]
    lines += ["| time | what |", "|---|---|", *(f"| {_when(s, e.seconds)} | {e.what} |" for e in s.events)] \
        if s.events else ["None recorded."]
    lines += ["", "## Timeline", "", f"![load, replicas, queue, latency and errors over the run]({picture})", "",
              "## What happened", "", narrative(s), ""]
    return "\n".join(lines)


def _series(rows: Sequence[Row], origin: float, key: str, shift: float = 0.0,
            scale: float = 1.0) -> tuple[list[float], list[float]]:
    """x (seconds from the origin) and y, a missing or null value as NaN (a gap in the line)."""
    xs = [row["t"] - origin - shift for row in rows]
    return xs, [math.nan if row.get(key) is None else float(row[key]) * scale for row in rows]


def _twos_and_fives(value: float, _: object) -> str:
    """Labels for a log axis's minor ticks at 2 and 5 times a power of ten, so that less than a
    decade still has numbers and several decades are not crowded."""
    return f"{value:g}" if value > 0 and round(value / 10 ** math.floor(math.log10(value))) in (2, 5) else ""


def report_figure(load_rows: Sequence[Row], status_rows: Sequence[Row], summary: Summary) -> Figure:
    """Five panels over one time axis: load, replicas, queue, latency, errors and logged-out users;
    phases shaded and named, events as vertical lines labelled on the top panel."""
    seconds_rows = sorted((r for r in load_rows if not r.get("summary")), key=lambda r: r["t"])
    status = sorted(status_rows, key=lambda r: r["t"])
    origin = summary.started_at
    figure = Figure(figsize=(11, 13), layout="constrained")
    FigureCanvasAgg(figure)
    load, replicas, queue, latency, errors = panels = figure.subplots(5, 1, sharex=True)
    load.step(*_series(seconds_rows, origin, "ok", shift=1), where="post", color="C2", label="OK answers/s")
    load.step(*_series(seconds_rows, origin, "target_rps", shift=1), where="post", color="black", ls="--",
              label="target req/s")
    load.set_ylabel("requests/s")
    for key, style in (("desired", {"color": "C0"}), ("ready", {"color": "C1", "ls": "--"}),
                       ("replicas", {"color": "grey", "ls": ":"})):
        replicas.step(*_series(status, origin, key), where="post", label=key, **style)
    replicas.set_ylabel("replicas")
    queue.plot(*_series(status, origin, "queue"), color="C4", label="Spillway's queue depth")
    queue.set_ylabel("queued requests")
    latency.step(*_series(seconds_rows, origin, "p95", shift=1, scale=1000), where="post", color="C3",
                 label="client p95 (per second)")
    latency.plot(*_series(status, origin, "latency", scale=1000), color="C0", label="Spillway's latency signal")
    latency.axhline(summary.objective_seconds * 1000, color="grey", ls="--", label="objective")
    latency.set_yscale("log")
    latency.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    latency.yaxis.set_minor_formatter(FuncFormatter(_twos_and_fives))
    latency.set_ylabel("ms (log)")
    errors.step(*_series(seconds_rows, origin, "errors", shift=1), where="post", color="C3", label="errors/s")
    errors.set_ylabel("errors/s")
    logged_out = errors.twinx()
    logged_out.step(*_series(seconds_rows, origin, "logged_out", shift=1), where="post", color="C5",
                    label="logged-out users (total)")
    logged_out.set_ylabel("logged-out users")
    logged_out.set_ylim(bottom=0, top=max([1.0, *(_series(seconds_rows, origin, "logged_out")[1])]) * 1.2)
    errors.set_xlabel("seconds from the load's start")
    for index, phase in enumerate(summary.phases):
        for axes in panels:
            axes.axvspan(phase.start_seconds, phase.start_seconds + phase.seconds, color="C0" if index % 2 else "C1",
                         alpha=0.07, lw=0)
        load.text(phase.start_seconds, 1.01, phase.name, transform=load.get_xaxis_transform(), fontsize=9)
    for event in summary.events:
        for axes in panels:
            axes.axvline(event.seconds, color="C6", lw=0.8, ls=":")
        label = event.what if len(event.what) <= 28 else event.what[:27] + "…"
        replicas.text(event.seconds, 0.97, label, transform=replicas.get_xaxis_transform(), rotation=90, va="top",
                      ha="right", fontsize=7, color="C6")
    for axes in panels:
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    logged_out.legend(fontsize="small", loc="lower left", bbox_to_anchor=(1.01, 0.0))
    return figure


def write_report(load_log: Path, status_log: Path, events: list[dict[str, Any]], out_dir: Path,
                 objective_seconds: float, title: str, grace_seconds: float = 30.0) -> Path:
    """Writes `out_dir/demo-report.md` and `out_dir/demo.png`; returns the markdown's path."""
    load_rows, status_rows = read_lines(load_log), read_lines(status_log)
    summary = summarize(load_rows, status_rows, events, objective_seconds, grace_seconds=grace_seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / "demo.png"
    report_figure(load_rows, status_rows, summary).savefig(picture, format="png", dpi=100)
    markdown = out_dir / "demo-report.md"
    markdown.write_text(render_markdown(summary, title, picture.name))
    return markdown
