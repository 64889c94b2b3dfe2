"""Several `make demo` runs side by side: `python -m demo.spread OUT.md RUN_DIR...` reads each run's
logs (a copy of its `demo-out/`: load.jsonl, status.jsonl, cpu.jsonl) and writes one markdown
table of their headline numbers and each number's range, every figure computed here from those
logs by `demo.summary`. `make fresh-check` keeps each run's logs for it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from demo.scenario import NAME, plan
from demo.summary import Summary, read_lines, summarize

Column = tuple[str, str]


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def _range(values: Sequence[float], digits: int = 0) -> str:
    if not values:
        return "—"
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}–{high}"


def load(run: Path, duration: float) -> Summary:
    the_plan = plan(duration)
    return summarize(read_lines(run / "load.jsonl"), read_lines(run / "status.jsonl"), [], the_plan.objective_seconds,
                     grace_seconds=the_plan.grace_seconds, cpu_rows=read_lines(run / "cpu.jsonl"), deployment=NAME)


def row(name: str, s: Summary) -> list[str]:
    ready = [r.ready_after_seconds for r in s.starts if r.ready_after_seconds is not None]
    cpu = [r.cpu_seconds for r in s.starts if r.cpu_seconds is not None]
    return [name, f"{s.errors} ({s.error_rate * 100:.1f} %)", str(s.errors_outside_surge_onset),
            _s(s.scale_up_seconds) + (f" (→ {s.first_scale_up_to})" if s.first_scale_up_to else ""),
            _s(s.ready_seconds), _s(s.p95_recovered_seconds),
            f"{len(s.starts)}: {_range(ready)} s" if ready else f"{len(s.starts)}: —",
            f"{_range(cpu, 1)} s" if cpu else "—", str(s.logged_out)]


HEADER = ["run", "errors", "errors after the surge's first 45 s", "surge → first scale-up",
          "surge → those replicas ready", "surge → p95 back under 500 ms", "new replicas: created → Ready",
          "CPU to Ready", "logged out"]


def render(runs: Sequence[tuple[str, Summary]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(name, s)) + " |" for name, s in runs]
    summaries = [s for _, s in runs]

    def spread(values: Sequence[float | None], unit: str, digits: int = 0) -> str:
        known = [v for v in values if v is not None]
        missing = len(values) - len(known)
        return (f"{_range(known, digits)} {unit}".rstrip() if known else "—") + \
            (f" ({missing} without)" if missing else "")

    said = [f"{len(runs)} runs.",
            f"Errors: {spread([s.error_rate * 100 for s in summaries], '%', 1)} of the requests, "
            f"{spread([float(s.errors_outside_surge_onset) for s in summaries], '')} of them after the surge's "
            "first 45 s.",
            f"Those replicas ready {spread([s.ready_seconds for s in summaries], 's')} after the surge began; "
            f"p95 back under the objective after {spread([s.p95_recovered_seconds for s in summaries], 's')}.",
            f"Each new replica Ready {spread([r.ready_after_seconds for s in summaries for r in s.starts], 's')} "
            f"after its creation, on {spread([r.cpu_seconds for s in summaries for r in s.starts], 'CPU-seconds', 1)}.",
            f"Users logged out: {sum(s.logged_out for s in summaries)}."]
    return "\n".join([*lines, "", " ".join(said), ""])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.spread")
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", type=Path, nargs="+", help="copies of demo-out/ from each run")
    parser.add_argument("--duration", type=float, default=300.0, help="the runs' DURATION (make demo's default: 300)")
    parser.add_argument("--title", default="make demo, run after run")
    args = parser.parse_args(argv)
    runs = [(run.name, load(run, args.duration)) for run in args.runs]
    args.out.write_text(f"# {args.title}\n\n" + render(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
