"""Pictures of simulated runs: one PNG of stacked panels over time (offered load, replicas asked
and ready, queue, p95 latency against the objective, errors), one line per policy. An edge
module: it imports matplotlib (the `sim` extra) and writes files; the operator never imports it.

It draws on a bare `Figure` rendered by the Agg canvas, so it needs no display and leaves
pyplot's global state alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spillway.sim.run import Result


def timeline_figure(results: Sequence[Result], objective_seconds: float) -> Figure:
    if not results:
        raise ValueError("a timeline needs at least one run")
    figure = Figure(figsize=(10, 11), layout="constrained")
    FigureCanvasAgg(figure)
    load, replicas, queue, latency, errors = figure.subplots(5, 1, sharex=True)
    first = results[0].timeline
    load.plot([p.time for p in first], [p.offered_rps for p in first], color="black", lw=1)
    load.set_ylabel("offered req/s")
    load.set_title(f"{results[0].trace}: " + ", ".join(r.policy for r in results))
    for index, result in enumerate(results):
        color = f"C{index}"
        times = [p.time for p in result.timeline]
        replicas.step(times, [p.replicas for p in result.timeline], where="post", color=color, label=result.policy)
        replicas.step(times, [p.ready for p in result.timeline], where="post", color=color, ls="--", alpha=0.7)
        queue.plot(times, [p.queue for p in result.timeline], color=color)
        answered = [p for p in result.timeline if p.p95_seconds is not None]
        latency.plot([p.time for p in answered], [(p.p95_seconds or 0.0) * 1000 for p in answered], color=color)
        errors.plot(times, [p.errors for p in result.timeline], color=color)
    latency.axhline(objective_seconds * 1000, color="grey", ls=":", label="objective")
    replicas.set_ylabel("replicas\n(asked, - - ready)")
    replicas.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    queue.set_ylabel("queued requests")
    latency.set_ylabel("p95 ms\n(per sample)")
    latency.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    errors.set_ylabel("timeouts + refused\nper sample")
    errors.set_xlabel("simulated seconds")
    for axes in (load, replicas, queue, latency, errors):
        axes.grid(alpha=0.3)
    return figure


def write_timeline(results: Sequence[Result], objective_seconds: float, path: Path) -> Path:
    figure = timeline_figure(results, objective_seconds)
    figure.savefig(path, format="png", dpi=100)
    return path
