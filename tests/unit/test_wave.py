"""The demo's traffic wave: quiet, a surge, a calm long enough for the scale-down window."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spillway.api import parse_spec

from tests.cluster.wave import CALM_SECONDS, CYCLE_SECONDS, QUIET_SECONDS, SURGE_SECONDS, queue_at

DEMO = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "demo.yaml"


@pytest.mark.parametrize(("elapsed", "queue"), [
    (0, 0), (QUIET_SECONDS - 0.1, 0), (QUIET_SECONDS, 60), (QUIET_SECONDS + SURGE_SECONDS - 0.1, 60),
    (QUIET_SECONDS + SURGE_SECONDS, 0), (CYCLE_SECONDS - 0.1, 0), (CYCLE_SECONDS + QUIET_SECONDS, 60),
])
def test_wave_surges_once_per_cycle(elapsed: float, queue: float) -> None:
    assert queue_at(elapsed, 60) == queue


def test_calm_outlasts_the_demo_samples_scale_down_window_and_steps() -> None:
    spec = parse_spec(yaml.safe_load(DEMO.read_text())["spec"])
    down = spec.scaling.behavior.scale_down
    steps = 2  # 6 -> 3 -> 2 at 50% per period
    assert CALM_SECONDS > (down.stabilization_window + steps * down.period + spec.scaling.interval).total_seconds()
