"""The markdown report of simulated runs: the scenario in a few lines, then one row per policy
with what its users got (SLO attainment, latency quantiles, timeouts, refusals, and sessions
moved off their replica in a sticky run) and what it cost (replica-seconds, node-seconds when
nodes are simulated, scale events). Over several seeds, each figure is a mean with its 95 %
interval and the first policy is set against each other one seed by seed (`seeded_markdown`,
`seeded_summary`). Pure: returns text; the caller writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from spillway.sim.compare import paired
from spillway.sim.run import Result, Scenario
from spillway.sim.scenarios import CEILING_DRAWS, mean_seconds, service_ceiling
from spillway.sim.stats import CONFIDENCE, Estimate, estimate


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


# --- over several seeds ------------------------------------------------------------------------


def _interval(found: Estimate, text: Callable[[float], str]) -> str:
    if found.n == 1:
        return text(found.mean)
    return f"{text(found.mean)} ({text(found.low)} to {text(found.high)})"


def _points(share: float) -> str:
    return f"{share * 100:+.2f}"


def _times(ratio: float) -> str:
    return f"{ratio:.3f}×"


def _mean_ms(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    return milliseconds(sum(known) / len(known)) if known else "—"


def _seeded_figures(runs: Sequence[Result], quantile: float) -> tuple[str, str, str, str]:
    attainment = estimate([r.slo_attainment for r in runs])
    cost = estimate([r.replica_seconds for r in runs])
    met = sum(1 for r in runs if r.slo_attainment >= quantile)
    return (_interval(attainment, percent), f"{met} of {len(runs)}", _mean_ms([r.p95_seconds for r in runs]),
            _interval(cost, lambda v: f"{v:,.0f}"))


def _versus(subject: Sequence[Result], other: Sequence[Result]) -> tuple[str, str, str]:
    found = paired(subject, other)
    return (_interval(found.attainment, _points), _interval(found.cost, _times), found.verdict)


def seeded_summary(runs: Sequence[Sequence[Result]], quantile: float) -> list[str]:
    """`runs[k]` is one policy's runs, one per seed in the same seed order for every policy; the
    first policy is the subject set against each other one. For a terminal."""
    if not runs or not runs[0]:
        raise ValueError("a summary over seeds needs at least one policy run on one seed")
    width = max(len(r[0].policy) for r in runs)
    level = f"{CONFIDENCE * 100:g} %"
    lines = [f"{len(runs[0])} seeds; each figure a mean, with its {level} interval in parentheses"]
    for policy_runs in runs:
        attainment, met, p95, cost = _seeded_figures(policy_runs, quantile)
        lines.append(f"{policy_runs[0].policy:<{width}}  SLO {attainment}  met on {met} seeds  "
                     f"mean p95 {p95}  replica-seconds {cost}")
    subject = runs[0][0].policy
    for other in runs[1:]:
        points, ratio, verdict = _versus(runs[0], other)
        lines.append(f"{subject} vs {other[0].policy}: attainment {points} points, cost {ratio}: {verdict}")
    return lines


def seeded_markdown(scenario: Scenario, runs: Sequence[Sequence[Result]], quantile: float = 0.95,
                    notes: Sequence[str] = (), title: str = "Simulation") -> str:
    """The report of `runs` (as `seeded_summary` takes them) on `scenario` under its seed and the
    ones after it."""
    if not runs or not runs[0]:
        raise ValueError("a report over seeds needs at least one policy run on one seed")
    seeds = len(runs[0])
    level = f"{CONFIDENCE * 100:g} %"
    seeded = f"{seeds} seeds ({scenario.seed} to {scenario.seed + seeds - 1})."
    lines = [f"# {title}", "",
             *(line.replace(f"seed {scenario.seed}.", seeded) if line.startswith("- Replicas") else line
               for line in _scenario_lines(scenario, quantile)), ""]
    if notes:
        lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    subject = runs[0][0].policy
    lines += [f"| policy | SLO attainment | seeds meeting the objective | mean p95 | replica-seconds | "
              f"{subject}: attainment difference | {subject}: cost ratio | {subject} vs it |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for index, policy_runs in enumerate(runs):
        attainment, met, p95, cost = _seeded_figures(policy_runs, quantile)
        versus = ("", "", "") if index == 0 else _versus(runs[0], policy_runs)
        points, ratio, verdict = versus
        lines.append(f"| {policy_runs[0].policy} | {attainment} | {met} | {p95} | {cost} | "
                     f"{points + ' points' if points else ''} | {ratio} | {verdict} |")
    lines += ["", f"Each figure is a mean over the {seeds} seeds with its {level} interval (Student's t) in "
              "parentheses. Every seed draws its own arrivals, each request's work and where the scrapes and "
              "decisions fall, the same for every policy, so each policy is set against the first seed by seed: "
              f"a verdict says {subject} dominates (or is dominated) only where a paired interval excludes no "
              "change and the other does not go the other way; 'no difference' where both hold it. SLO "
              "attainment is the share of arrived requests answered within the objective; replica-seconds "
              "integrate every pod placed on a node over the trace and the drain after it.", ""]
    return "\n".join(lines)
