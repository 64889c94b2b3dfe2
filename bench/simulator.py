"""Simulated requests per CPU-minute of the discrete-event simulator; writes bench/simulator.md.

Poisson arrivals at 70 % of the replicas' capacity (concurrency 8, exponential service of
100 ms), 1, 10 and 40 replicas behind each balancing algorithm, then a few 40-replica runs with
the costlier features on (sticky sessions, flavors, nodes with headroom while scaling). The
clock is `time.process_time` around `arrive_at` and `run_until` (the arrival times are drawn
before it starts); each case runs three times and the median counts.
Target: at least 1,000,000 simulated requests per CPU-minute on one core.
Run: .venv/bin/python bench/simulator.py
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from spillway.sim.model import ALGORITHMS, Flavor, Nodes, Service, Simulation, exponential, poisson_arrivals  # noqa: E402

TARGET_PER_MINUTE = 1_000_000
REQUESTS = 100_000
REPEATS = 3
LOAD = 0.7
SERVICE = Service(concurrency=8, queue_limit=100, timeout=30.0, service_time=exponential(0.1), startup=5.0)
Drive = Callable[[Simulation, list[float], float], None]


def _plain(simulation: Simulation, times: list[float], end: float) -> None:
    simulation.arrive_at(times)
    simulation.run_until(end)


def _with_sessions(sessions: int) -> Drive:
    def drive(simulation: Simulation, times: list[float], end: float) -> None:
        ids = random.Random(3)
        simulation.arrive_at(times, [ids.randrange(sessions) for _ in times])
        simulation.run_until(end)
    return drive


def _scaling_between(low: int, high: int, every_seconds: float) -> Drive:
    def drive(simulation: Simulation, times: list[float], end: float) -> None:
        simulation.arrive_at(times)
        step, high_now = 0, False
        while step * every_seconds < end:
            step += 1
            simulation.run_until(min(step * every_seconds, end))
            high_now = not high_now
            simulation.scale_to(high if high_now else low)
        simulation.run_until(end)
    return drive


def measure(replicas: int, algorithm: str, drive: Drive = _plain, **options: object) -> tuple[float, float]:
    """Median requests per CPU-minute, and the share of them answered."""
    rate = LOAD * replicas * SERVICE.concurrency / 0.1
    seconds = REQUESTS / rate
    times = poisson_arrivals(lambda _: rate, 0.0, seconds, rate, random.Random(2))
    speeds, answered = [], 0.0
    for repeat in range(REPEATS):
        simulation = Simulation(SERVICE, replicas, algorithm, seed=repeat, **options)
        started = time.process_time()
        drive(simulation, times, seconds + 60.0)
        spent = time.process_time() - started
        speeds.append(simulation.outcome.arrived / spent * 60)
        answered = simulation.outcome.answered / simulation.outcome.arrived
    return statistics.median(speeds), answered


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for algorithm in ALGORITHMS:
        for replicas in (1, 10, 40):
            rows.append((algorithm, f"{replicas}", *measure(replicas, algorithm)))
    extras: list[tuple[str, str, Drive, dict[str, object]]] = [
        ("LeastConnection", "40, sticky, 10,000 sessions", _with_sessions(10_000), {"sticky": True}),
        ("WeightedRatio", "40, flavors 3:1 (speed 1 and 0.5)", _plain,
         {"flavors": (Flavor(share=3, weight=2), Flavor(share=1, speed=0.5, weight=1))}),
        ("LeastConnection", "40, scaled 40 ↔ 60 every 5 s", _scaling_between(40, 60, 5.0), {}),
        ("LeastConnection", "40 on nodes of 8, 4 headroom pods, scaled 40 ↔ 60 every 5 s",
         _scaling_between(40, 60, 5.0),
         {"nodes": Nodes(pods_per_node=8, nodes=5, provision_seconds=20.0, headroom_pods=4)}),
    ]
    for algorithm, label, drive, options in extras:
        rows.append((algorithm, label, *measure(40, algorithm, drive, **options)))
    lines = [
        "# Simulator: simulated requests per CPU-minute",
        "",
        f"`bench/simulator.py`: Poisson arrivals at {LOAD:.0%} of capacity (concurrency "
        f"{SERVICE.concurrency}, exponential service of 100 ms, queue {SERVICE.queue_limit}), "
        f"{REQUESTS:,} requests per case, `time.process_time` around `arrive_at` and `run_until`, "
        f"median of {REPEATS} runs.",
        f"Machine: {_cpu()}, {os.cpu_count()} cores (the simulator uses one), Python "
        f"{platform.python_version()} on {platform.machine()}; load average {load_before:.1f} when it "
        "started (CPU time counts this process only, but a busy neighbour still shares caches).",
        f"Target: at least {TARGET_PER_MINUTE:,} simulated requests per CPU-minute on one core; "
        "results are compared as ratios to that target, since absolute speeds move with the machine.",
        "",
        "| algorithm | replicas | requests per CPU-minute | vs target | answered |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {algorithm} | {label} | {speed / 1e6:.1f} M | {speed / TARGET_PER_MINUTE:.1f}× "
              f"{'met' if speed >= TARGET_PER_MINUTE else 'MISSED'} | {answered:.1%} |"
              for algorithm, label, speed, answered in rows]
    (ROOT / "bench" / "simulator.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
