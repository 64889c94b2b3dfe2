"""The markdown report of simulated runs: the scenario in a few lines, then one row per policy
with what its users got (SLO attainment, latency quantiles, timeouts, refusals) and what it
cost (replica-seconds, scale events). Pure: returns text; the caller writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from spillway.sim.run import Result, Scenario
from spillway.sim.scenarios import CEILING_DRAWS, mean_seconds, service_ceiling


def milliseconds(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}ms"


def percent(share: float) -> str:
    return f"{share * 100:.2f} %"


def _scenario_lines(scenario: Scenario, quantile: float) -> list[str]:
    trace, service = scenario.trace, scenario.service
    return [
        f"- Trace: **{trace.name}**, {trace.duration:g} s, peak {trace.peak:.4g} req/s, mean {trace.mean():.4g} req/s.",
        f"- Each replica: concurrency {service.concurrency}, queue limit {service.queue_limit}, client timeout "
        f"{service.timeout:g} s, mean service time {milliseconds(mean_seconds(service.service_time))} "
        f"({type(service.service_time).__name__.lower()}), start-up {service.startup:g} s.",
        f"- Replicas {scenario.min_replicas}–{scenario.max_replicas}, balancer {scenario.algorithm}, "
        f"Prometheus scrape every {scenario.scrape_interval:g} s"
        + (f" missing {percent(scenario.miss_share)} of scrapes" if scenario.miss_share else "")
        + f", seed {scenario.seed}.",
        f"- Objective: answered within {milliseconds(scenario.objective_seconds)}; met when at least "
        f"{percent(quantile)} of arrived requests are (p{quantile * 100:g}).",
        f"- {ceiling_sentence(scenario, quantile)}",
    ]


def ceiling_sentence(scenario: Scenario, quantile: float) -> str:
    ceiling = service_ceiling(scenario.service.service_time, scenario.objective_seconds, scenario.seed)
    sentence = (f"The service alone, with no wait at all, answers {percent(ceiling)} of requests within the objective "
                f"(from {CEILING_DRAWS:,} draws of its service time): no policy attains more")
    return sentence + (", so the objective cannot be met as stated." if ceiling < quantile else ".")


def _met(result: Result, quantile: float) -> str:
    return "met" if result.slo_attainment >= quantile else "missed"


def row(result: Result, quantile: float) -> str:
    cells = [
        result.policy, percent(result.slo_attainment), _met(result, quantile), milliseconds(result.p50_seconds),
        milliseconds(result.p95_seconds), milliseconds(result.p99_seconds), str(result.timeouts), str(result.refused),
        f"{result.replica_seconds:.0f}", str(len(result.scale_events)), str(result.arrived),
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| policy | SLO attainment | met | p50 | p95 | p99 | timeouts | refused | replica-seconds | scale events "
          "| arrived |")


def markdown(scenario: Scenario, results: Sequence[Result], quantile: float = 0.95,
             notes: Sequence[str] = (), title: str = "Simulation") -> str:
    """The report of `results`, each a run of `scenario` under one policy."""
    if not results:
        raise ValueError("a report needs at least one run")
    lines = [f"# {title}", "", *_scenario_lines(scenario, quantile), ""]
    if notes:
        lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    lines += [HEADER, "|" + "---|" * 11, *(row(r, quantile) for r in results), ""]
    lines += [
        "SLO attainment is the share of arrived requests answered within the objective; a request timed out "
        "or refused never is. Latencies are of the answered requests. Replica-seconds integrate every pod that "
        "exists, starting and draining ones too, over the trace and the drain after it.",
        "",
    ]
    return "\n".join(lines)


def summary(results: Sequence[Result], quantile: float) -> list[str]:
    """One line per policy, for a terminal."""
    width = max((len(r.policy) for r in results), default=0)
    return [f"{r.policy:<{width}}  SLO {percent(r.slo_attainment)} ({_met(r, quantile)})  "
            f"p95 {milliseconds(r.p95_seconds)}  timeouts {r.timeouts}  refused {r.refused}  "
            f"replica-seconds {r.replica_seconds:.0f}  scale events {len(r.scale_events)}" for r in results]
