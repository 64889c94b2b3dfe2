"""bench/autoscalers.py's judgement and its Findings, on made-up runs whose answer is known: the
report's sentences come from the numbers, not from text written beforehand."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from spillway.sim.run import Result

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import autoscalers as bench  # noqa: E402

SEEDS = [1, 2, 3, 4, 5, 6]


def _run(policy: str, attainment: float, cost: float, seed: int) -> Result:
    arrived = 100_000 + seed  # one seed's arrivals, the same for every policy of it
    within = round(attainment * arrived)
    return Result(policy=policy, trace="t", arrived=arrived, answered=within, within_objective=within, timeouts=0,
                  refused=arrived - within, p50_seconds=0.1, p95_seconds=0.3, p99_seconds=0.6,
                  replica_seconds=cost, seconds=100.0, scale_events=(), timeline=())


def _runs(key: str, points: dict[str, tuple[float, float]]) -> dict[tuple[str, str, int], Result]:
    """Every configuration at (attainment, cost), with a small spread from seed to seed alike
    for all (what common random numbers give)."""
    found = {}
    for config in bench.CONFIGS:
        attainment, cost = points.get(config.family, (0.97, 10_000.0))
        for seed in SEEDS:
            wobble = (seed % 3 - 1) * 0.001
            step = 1 + 0.002 * (seed % 2) + config.label.count("%") * 0.05  # configurations differ in cost
            found[(key, config.key, seed)] = _run(config.key, attainment + wobble, cost * step, seed)
    return found


def test_a_peer_cheaper_and_better_on_every_configuration_is_reported_as_winning() -> None:
    runs = _runs("made-up", {"Spillway": (0.95, 20_000.0), "HPA": (0.98, 10_000.0), "KEDA": (0.90, 40_000.0),
                             "Knative": (0.95, 20_000.0)})
    bounds = {("made-up", s): (runs[("made-up", "Spillway: defaults and the objective", s)].slo_attainment, 8_000.0)
              for s in SEEDS}
    found = bench.analyse("made-up", SEEDS, runs, bounds)
    assert found.versus["HPA"].verdict == "dominated"
    assert found.versus["KEDA"].verdict == "dominates"
    assert found.over_bound.mean > 2.4 and found.over_bound.low > 2.3
    text = "\n".join(bench.findings([found]))
    assert "**Against HPA's frontier** (5 configurations): Spillway dominated on 1 (made-up)." in text
    assert ("Where HPA wins: made-up (every configuration attains more, the cheapest for 0.50× Spillway's cost, "
            "attains +3.00 points more at Spillway's cost)") in text
    assert "**Against KEDA's frontier** (4 configurations): Spillway dominates on 1 (made-up)." in text
    assert "wholly below it on 1 (made-up (95.00 %))" in text
    assert f"over {len(SEEDS)} seeds" in text
    table = "\n".join(bench.headline([found]))
    assert "| made-up | 95.00 % [" in table and "**dominated**" in table and "**dominates**" in table


def test_every_configuration_is_cited_and_every_peer_has_a_grid() -> None:
    assert all(config.source for config in bench.CONFIGS)
    assert {config.family for config in bench.CONFIGS} >= {*bench.PEERS, "Spillway", *bench.REFERENCES}
    assert all(sum(1 for c in bench.CONFIGS if c.family == peer) >= 3 for peer in bench.PEERS)
    assert len({config.key for config in bench.CONFIGS}) == len(bench.CONFIGS)


def test_a_configuration_added_to_a_grid_runs_alone_the_rest_comes_from_the_cache(tmp_path: Path,
                                                                                  monkeypatch: Any) -> None:
    ran: list[tuple[str, str, int]] = []

    def job(key: str, config_key: str, seed: int) -> tuple[str, str, int, tuple[Result, float]]:
        ran.append((key, config_key, seed))
        return key, config_key, seed, (_run(config_key, 0.97, 1_000.0, seed), 0.5)

    def bound_job(key: str, seed: int, attainment: float) -> tuple[str, int, tuple[float, float]]:
        ran.append((key, "bound", seed))
        return key, seed, (500.0, 0.25)

    def serial(name: str, work: Any, function: Any, jobs: int, done: dict[Any, Any], key_of: Any, value_of: Any,
               save: Any) -> float:
        for w in work:
            answer = function(*w)
            done[key_of(answer)] = value_of(answer)
        save(0.0)
        return 0.0

    monkeypatch.setenv("SPILLWAY_CACHE", str(tmp_path))
    monkeypatch.setattr(bench, "job", job)
    monkeypatch.setattr(bench, "bound_job", bound_job)
    monkeypatch.setattr(bench, "_pool", serial)
    monkeypatch.setattr(bench, "seeds_for", lambda key, seeds: list(range(1, seeds + 1)))
    first = bench.CONFIGS[:4]
    monkeypatch.setattr(bench, "CONFIGS", first)
    found = bench.results(["step"], 2, 1, report_only=False)
    assert found is not None and len(ran) == 4 * 2 + 2  # every run and a bound per seed
    assert found[2] == 4 * 2 * 0.5 + 2 * 0.25  # one core's seconds, summed

    added = bench.Config("Knative", "made-up", (("target_utilization", 0.6),), "a test")
    monkeypatch.setattr(bench, "CONFIGS", (*first, added))
    monkeypatch.setitem(bench.BY_KEY, added.key, added)
    ran.clear()
    found = bench.results(["step"], 2, 1, report_only=True)  # the new configuration's runs are missing
    assert found is None and ran == []
    found = bench.results(["step"], 2, 1, report_only=False)
    assert found is not None and ran == [("step", added.key, 1), ("step", added.key, 2)]
    assert set(found[0]) == {("step", c.key, s) for c in (*first, added) for s in (1, 2)}

    changed = dataclasses.replace(added, knobs=(("target_utilization", 0.5),))
    monkeypatch.setattr(bench, "CONFIGS", (*first, changed))
    ran.clear()
    bench.results(["step"], 2, 1, report_only=False)
    assert ran == [("step", added.key, 1), ("step", added.key, 2)]  # its knobs changed: it runs again
