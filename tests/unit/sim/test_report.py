"""The markdown report of simulated runs: the scenario, one row per policy, the ceiling."""

from __future__ import annotations

from spillway.sim import traces
from spillway.sim.distributions import exponential
from spillway.sim.model import Service
from spillway.sim.report import markdown, summary
from spillway.sim.run import Result, ScaleEvent, Scenario

SCENARIO = Scenario(traces.step(10, 40, at=30, duration=120),
                    Service(concurrency=8, queue_limit=50, timeout=5.0, service_time=exponential(0.1)), 0.5, 2, 10,
                    algorithm="LeastConnection")


def _result(policy: str, within: int, p95: float | None = 0.2) -> Result:
    return Result(policy=policy, trace="step", arrived=1000, answered=990, within_objective=within, timeouts=4,
                  refused=6, p50_seconds=0.1, p95_seconds=p95, p99_seconds=0.4, replica_seconds=321.4, seconds=126.0,
                  scale_events=(ScaleEvent(45.0, 2, 4),), timeline=())


def test_each_policy_has_a_row_with_its_numbers() -> None:
    text = markdown(SCENARIO, [_result("Spillway", 985), _result("HPA", 900, p95=None)], quantile=0.95)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "policy" not in line]
    assert rows == [
        "| Spillway | 98.50 % | met | 100ms | 200ms | 400ms | 4 | 6 | 321 | 1 | 1000 |",
        "| HPA | 90.00 % | missed | 100ms | — | 400ms | 4 | 6 | 321 | 1 | 1000 |",
    ]


def test_the_scenario_and_the_notes_are_stated() -> None:
    text = markdown(SCENARIO, [_result("Spillway", 985)], notes=["affinity Cookie is not simulated"])
    assert "**step**, 120 s, peak 40 req/s" in text
    assert "concurrency 8, queue limit 50, client timeout 5 s, mean service time 100ms (exponential)" in text
    assert "Replicas 2–10, balancer LeastConnection" in text
    assert "- affinity Cookie is not simulated" in text


def test_an_objective_the_service_alone_misses_is_called_unmeetable() -> None:
    # exponential, mean 100 ms: exp(-2) = 13.5 % of requests take longer than 200 ms on their own
    tight = Scenario(SCENARIO.trace, SCENARIO.service, 0.2, 2, 10)
    assert "cannot be met as stated" in markdown(tight, [_result("Spillway", 800)])
    assert "cannot be met as stated" not in markdown(SCENARIO, [_result("Spillway", 985)])


def test_the_summary_has_one_line_per_policy() -> None:
    lines = summary([_result("Spillway", 985), _result("Oracle", 999)], 0.95)
    assert len(lines) == 2 and lines[0].startswith("Spillway  SLO 98.50 % (met)") and lines[1].startswith("Oracle  ")


def test_nodes_sessions_and_pools_add_their_lines_and_columns() -> None:
    from dataclasses import replace

    from spillway.sim.model import Flavor, Nodes

    scenario = replace(SCENARIO, algorithm="WeightedRatio", sticky=True, sessions=500, nodes=Nodes(4, 2, 60.0, 3),
                       flavors=(Flavor(share=3, weight=3, concurrency=16), Flavor(share=1, weight=1, speed=1.5)))
    result = replace(_result("Spillway", 985), node_seconds=812.6, rebalanced=42)
    text = markdown(scenario, [result])
    assert "2 kinds of replica: 75 % of replicas with concurrency 16 at speed 1 (weight 3); 25 % of replicas " \
           "with concurrency 8 at speed 1.5 (weight 1)." in text
    assert "500 users, each request from one drawn uniformly; a session's requests stay on one replica" in text
    assert "Nodes: 2 at the start, 4 pods each, a new one ready 60 s after it is asked for; 3 headroom" in text
    assert "| refused | rebalanced | replica-seconds | node-seconds | scale events |" in text
    assert "| 6 | 42 | 321 | 813 | 1 | 1000 |" in text and "Node-seconds integrate" in text
    line = summary([result], 0.95, scenario)[0]
    assert "rebalanced 42  replica-seconds 321  node-seconds 813  scale events 1" in line
    assert "node-seconds" not in summary([result], 0.95, SCENARIO)[0] and "node-seconds" not in markdown(
        SCENARIO, [result])
