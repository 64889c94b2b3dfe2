"""The end of `make demo`: one markdown report and one picture from a run's `Summary`
(`demo.summary`) and its logs. `render_markdown` and `narrative` are pure (numbers in, text out),
and the text states only what the numbers say: every sentence is conditional on them;
`write_report` is the edge: it reads the two logs and writes `demo-report.md` and `demo.png`,
drawn on matplotlib's Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from demo.summary import Row, Summary, read_lines, summarize


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
    lines += starts_section(s)
    lines += ["", "## Timeline", "", f"![load, replicas, queue, latency and errors over the run]({picture})", "",
              "## What happened", "", narrative(s), ""]
    return "\n".join(lines)


def _range(values: Sequence[float], unit: str, digits: int = 0) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f} {unit}" if round(low, digits) == round(high, digits) else \
        f"{low:.{digits}f}–{high:.{digits}f} {unit}"


def starts_section(s: Summary) -> list[str]:
    """The new replicas' starts, from the node's own figures (nothing where they were not read)."""
    if not s.starts:
        return []
    lines = ["", "## Replica starts", "",
             "Each replica created from the surge on, from the API server's times and its pod cgroup's CPU "
             "figures (`tests/cluster/cpu.py`): CPU time and run-queue wait from creation to Ready.", "",
             "| replica | created | created → Ready | CPU to Ready | waited for a CPU | throttled |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.name} | {_when(s, r.created_seconds)} | {_s(r.ready_after_seconds)} | "
              f"{'—' if r.cpu_seconds is None else f'{r.cpu_seconds:.1f} s'} | "
              f"{'—' if r.waited_seconds is None else f'{r.waited_seconds:.1f} s'} | {r.throttled_seconds:.1f} s |"
              for r in s.starts]
    ready = [r.ready_after_seconds for r in s.starts if r.ready_after_seconds is not None]
    cpu = [r.cpu_seconds for r in s.starts if r.cpu_seconds is not None]
    n = len(s.starts)
    text = f"{n} replica{'s' * (n != 1)} started"
    if ready:
        text += (", " if len(ready) == n else f"; {len(ready)} of them {'was' if len(ready) == 1 else 'were'} ") + f"Ready {_range(ready, 's')} after " \
            f"creation" + (f", on {_range(cpu, 'CPU-seconds', 1)} each" if cpu else "")
    text += "." if len(ready) == n else f"; {n - len(ready)} never became Ready while watched."
    w = s.start_window
    if w is not None:
        text += (f" While they started ({w.seconds:.0f} s) the machine was busy {w.busy_cores:.2f} cores of its "
                 f"time: the node's pods {w.node_cores:.2f}, the test bed's control plane and Prometheus "
                 f"{w.bed_cores:.2f}, everything else {max(0.0, w.busy_cores - w.node_cores - w.bed_cores):.2f}.")
    return [*lines, "", text]


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
                 objective_seconds: float, title: str, grace_seconds: float = 30.0, cpu_log: Path | None = None,
                 deployment: str | None = None) -> Path:
    """Writes `out_dir/demo-report.md` and `out_dir/demo.png`; returns the markdown's path."""
    load_rows, status_rows = read_lines(load_log), read_lines(status_log)
    summary = summarize(load_rows, status_rows, events, objective_seconds, grace_seconds=grace_seconds,
                        cpu_rows=read_lines(cpu_log) if cpu_log else (), deployment=deployment)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / "demo.png"
    report_figure(load_rows, status_rows, summary).savefig(picture, format="png", dpi=100)
    markdown = out_dir / "demo-report.md"
    markdown.write_text(render_markdown(summary, title, picture.name))
    return markdown
