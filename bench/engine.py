"""CPU cost of one scaling decision of the pure engine; writes bench/engine.md.

Target: under 1 ms of CPU per decision. Run: .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from spillway.api import parse_spec  # noqa: E402
from spillway.scaling.behavior import EngineState  # noqa: E402
from spillway.scaling.engine import decide  # noqa: E402
from spillway.scaling.proposals import Signals  # noqa: E402

TARGET_MS = 1.0
CALLS = 5000
CONTAINER = {"name": "app", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}


def spec(**overrides: Any) -> Any:
    return parse_spec({"template": {"spec": {"containers": [CONTAINER]}}, **overrides})


CASES = [
    ("queue + utilization, 40 replicas", spec(replicas={"min": 2, "max": 40}),
     Signals(queue_depth=340, in_flight=5000, arrival_rate=20000, latency_seconds=0.2), 30),
    ("latency model, 40 x 200 workers", spec(replicas={"min": 2, "max": 40}, capacity={"concurrency": 200},
                                             scaling={"targets": {"latency": {"quantile": 0.95,
                                                                              "objective": "250ms"}}}),
     Signals(queue_depth=10, in_flight=5800, arrival_rate=29000, latency_seconds=0.22), 30),
    ("latency model, 400 x 200 workers", spec(replicas={"min": 2, "max": 400}, capacity={"concurrency": 200},
                                              scaling={"targets": {"latency": {"quantile": 0.99,
                                                                               "objective": "300ms"}}}),
     Signals(queue_depth=10, in_flight=60000, arrival_rate=300000, latency_seconds=0.25), 300),
    ("missing signals (hold)", spec(), Signals(missing=frozenset({"queue_depth"})), 5),
]


def measure(case: tuple[str, Any, Signals, int]) -> float:
    _, s, signals, current = case
    now = datetime(2026, 1, 1, tzinfo=UTC)
    state = EngineState()
    for i in range(100):  # a realistic history for the windows and step limits
        state = decide(s, signals, current, state, now + timedelta(seconds=15 * i)).state
    later = now + timedelta(seconds=1500)
    started = time.process_time()
    for _ in range(CALLS):
        decide(s, signals, current, state, later)
    return (time.process_time() - started) / CALLS * 1000


def main() -> None:
    rows = [(case[0], measure(case)) for case in CASES]
    lines = [
        "# Scaling engine: CPU per decision",
        "",
        f"`bench/engine.py`, {CALLS} calls per case after a 100-interval history, "
        f"`time.process_time`, Python {platform.python_version()} on {platform.machine()}.",
        f"Target: under {TARGET_MS:g} ms of CPU per decision.",
        "",
        "| case | CPU per decision | target |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {ms * 1000:.0f} µs | {'met' if ms < TARGET_MS else 'MISSED'} |" for name, ms in rows]
    (ROOT / "bench" / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
