"""The markdown report of simulated runs: the scenario in a few lines, then one row per policy
with what its users got (SLO attainment, latency quantiles, timeouts, refusals, and sessions
moved off their replica in a sticky run) and what it cost (replica-seconds, node-seconds when
nodes are simulated, scale events). Pure: returns text; the caller writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from spillway.sim.run import Result, Scenario
from spillway.sim.scenarios import CEILING_DRAWS, mean_seconds, service_ceiling


def milliseconds(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}ms"


def percent(share: float) -> str:
    return f"{share * 100:.2f} %"


def _flavors_line(scenario: Scenario) -> list[str]:
    flavors = scenario.flavors
    if len(flavors) == 1 and flavors[0].speed == 1 and flavors[0].concurrency is None:
        return []
    total = sum(f.share for f in flavors)
    kinds = "; ".join(f"{f.share / total * 100:.0f} % of replicas with concurrency "
                      f"{f.concurrency or scenario.service.concurrency} at speed {f.speed:g}"
                      + (f" (weight {f.weight})" if scenario.algorithm == "WeightedRatio" else "") for f in flavors)
    plural = "s" if len(flavors) > 1 else ""
    return [f"- {len(flavors)} kind{plural} of replica: {kinds}."]


def _sessions_line(scenario: Scenario) -> list[str]:
    if not scenario.sessions:
        return []
    how = ("a session's requests stay on one replica until it drains" if scenario.sticky
           else "sessions not sticky")
    return [f"- {scenario.sessions:,} users, each request from one drawn uniformly; {how}."]


def _nodes_line(scenario: Scenario) -> list[str]:
    nodes = scenario.nodes
    if nodes is None:
        return []
    if nodes.headroom_percent is not None:
        headroom = (f"; headroom placeholder pods for {nodes.headroom_percent:g} % of the replicas asked for, "
                    f"at least {nodes.headroom_min}")
    else:
        headroom = f"; {nodes.headroom_pods} headroom placeholder pods" if nodes.headroom_pods else "; no headroom"
    return [f"- Nodes: {nodes.nodes} at the start, {nodes.pods_per_node} pods each, a new one ready "
            f"{nodes.provision_seconds:g} s after it is asked for{headroom}; idle nodes are never removed."]


def _scenario_lines(scenario: Scenario, quantile: float) -> list[str]:
    trace, service = scenario.trace, scenario.service
    return [
        f"- Trace: **{trace.name}**, {trace.duration:g} s, peak {trace.peak:.4g} req/s, mean {trace.mean():.4g} req/s.",
        f"- Each replica: concurrency {service.concurrency}"
        + (" (a mean over the kinds below)" if len(scenario.flavors) > 1 else "")
        + f", queue limit {service.queue_limit}, client timeout "
        f"{service.timeout:g} s, mean service time {milliseconds(mean_seconds(service.service_time))} "
        f"({type(service.service_time).__name__.lower()}), start-up {service.startup:g} s.",
        f"- Replicas {scenario.min_replicas}–{scenario.max_replicas}, balancer {scenario.algorithm}, "
        f"Prometheus scrape every {scenario.scrape_interval:g} s"
        + (f" missing {percent(scenario.miss_share)} of scrapes" if scenario.miss_share else "")
        + f", seed {scenario.seed}.",
        *_flavors_line(scenario),
        *_sessions_line(scenario),
        *_nodes_line(scenario),
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


def _columns(scenario: Scenario | None) -> list[str]:
    columns = ["policy", "SLO attainment", "met", "p50", "p95", "p99", "timeouts", "refused"]
    if scenario is not None and scenario.sticky:
        columns.append("rebalanced")
    columns.append("replica-seconds")
    if scenario is not None and scenario.nodes is not None:
        columns.append("node-seconds")
    return [*columns, "scale events", "arrived"]


def row(result: Result, quantile: float, scenario: Scenario | None = None) -> str:
    """One policy's row; the sticky and node columns only when `scenario` has them."""
    cells = {
        "policy": result.policy, "SLO attainment": percent(result.slo_attainment), "met": _met(result, quantile),
        "p50": milliseconds(result.p50_seconds), "p95": milliseconds(result.p95_seconds),
        "p99": milliseconds(result.p99_seconds), "timeouts": str(result.timeouts), "refused": str(result.refused),
        "rebalanced": str(result.rebalanced), "replica-seconds": f"{result.replica_seconds:.0f}",
        "node-seconds": f"{result.node_seconds:.0f}", "scale events": str(len(result.scale_events)),
        "arrived": str(result.arrived),
    }
    return "| " + " | ".join(cells[column] for column in _columns(scenario)) + " |"


def header(scenario: Scenario | None = None) -> list[str]:
    columns = _columns(scenario)
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def markdown(scenario: Scenario, results: Sequence[Result], quantile: float = 0.95,
             notes: Sequence[str] = (), title: str = "Simulation") -> str:
    """The report of `results`, each a run of `scenario` under one policy."""
    if not results:
        raise ValueError("a report needs at least one run")
    lines = [f"# {title}", "", *_scenario_lines(scenario, quantile), ""]
    if notes:
        lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    lines += [*header(scenario), *(row(r, quantile, scenario) for r in results), ""]
    explained = ("SLO attainment is the share of arrived requests answered within the objective; a request timed "
                 "out or refused never is. Latencies are of the answered requests. Replica-seconds integrate every "
                 "pod placed on a node, starting and draining ones too, over the trace and the drain after it.")
    if scenario.sticky:
        explained += (" Rebalanced counts the requests of a session sent off the replica that held it, because "
                      "that replica drained.")
    if scenario.nodes is not None:
        explained += (" Node-seconds integrate every node up or still provisioning (a cloud bills a machine "
                      "from its launch).")
    return "\n".join([*lines, explained, ""])


def summary(results: Sequence[Result], quantile: float, scenario: Scenario | None = None) -> list[str]:
    """One line per policy, for a terminal; rebalanced sessions and node-seconds when `scenario`
    is sticky or has nodes."""
    width = max((len(r.policy) for r in results), default=0)
    sticky = scenario is not None and scenario.sticky
    nodes = scenario is not None and scenario.nodes is not None
    return [f"{r.policy:<{width}}  SLO {percent(r.slo_attainment)} ({_met(r, quantile)})  "
            f"p95 {milliseconds(r.p95_seconds)}  timeouts {r.timeouts}  refused {r.refused}  "
            + (f"rebalanced {r.rebalanced}  " if sticky else "")
            + f"replica-seconds {r.replica_seconds:.0f}  "
            + (f"node-seconds {r.node_seconds:.0f}  " if nodes else "")
            + f"scale events {len(r.scale_events)}" for r in results]
