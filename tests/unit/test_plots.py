"""The simulation's picture: a real PNG drawn without a display."""

from __future__ import annotations

from pathlib import Path

import pytest

from spillway.plots import timeline_figure, write_timeline
from spillway.sim import traces
from spillway.sim.distributions import exponential
from spillway.sim.model import Service
from spillway.sim.policy import Observatory
from spillway.sim.run import Result, Scenario, run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Fixed:
    def __init__(self, count: int) -> None:
        self.count, self.name, self.tick_seconds = count, f"fixed {count}", 15.0

    def decide(self, observatory: Observatory, current: int) -> int:
        return self.count


def _results() -> list[Result]:
    scenario = Scenario(traces.step(20, 80, at=20, duration=60),
                        Service(concurrency=4, queue_limit=10, timeout=2.0, service_time=exponential(0.05)), 0.3, 1, 4)
    return [run(scenario, Fixed(1)), run(scenario, Fixed(3))]


def test_the_timeline_is_written_as_a_png(tmp_path: Path) -> None:
    path = write_timeline(_results(), 0.3, tmp_path / "simulation.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000  # five panels of lines, not an empty canvas


def test_the_figure_has_five_panels_and_a_line_per_policy() -> None:
    figure = timeline_figure(_results(), 0.3)
    load, replicas, queue, latency, errors = figure.axes
    assert len(load.lines) == 1 and len(queue.lines) == 2 and len(errors.lines) == 2
    assert len(replicas.lines) == 4  # asked and ready per policy
    assert len(latency.lines) == 3  # a p95 line per policy and the objective


def test_no_run_draws_no_picture() -> None:
    with pytest.raises(ValueError):
        timeline_figure([], 0.3)
