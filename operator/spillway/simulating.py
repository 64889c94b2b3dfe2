"""The `spillway simulate` and `spillway plan` commands: their flags' types, the files they read
(a ScalableService, a trace CSV, measured service times), the progress bar, and the text, report
and picture they write. `spillway.cli` builds the parser from these types and dispatches here.

Only edges live here: what a command decides (the scenario, the runs, the plan, the report's
words) is `spillway.sim`'s, pure. It must never import matplotlib, tqdm or `spillway.plots` at
module level: the parser of `spillway run` imports this module, and the operator never loads
them (the sim extra); those imports sit inside the commands that use them."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spillway.api.spec import Headroom, ScalableServiceSpec
    from spillway.sim.plan import Plan
    from spillway.sim.policy import Policy
    from spillway.sim.run import Progress, Result, Scenario
    from spillway.sim.traces import Trace


# --- flags -------------------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _ranged(test: Callable[[float], bool], words: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {words}")
        return value
    return parse


positive_number = _ranged(lambda v: v > 0, "greater than 0")
nonnegative_number = _ranged(lambda v: v >= 0, "0 or more")
share_number = _ranged(lambda v: 0 <= v < 1, "a share in [0, 1)")
quantile_number = _ranged(lambda v: 0 < v < 1, "strictly between 0 and 1")


def whole_number(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
        return value
    return parse


def pool_speed(text: str) -> tuple[str, float]:
    """`NAME=FACTOR`: the pool NAME serves its requests FACTOR times as fast as --service-time."""
    name, sign, factor = text.partition("=")
    if not sign or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FACTOR")
    try:
        return name.strip(), positive_number(factor)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: the factor {err}") from None


def node_capacity(text: str) -> tuple[int, int, float]:
    """`PODS_PER_NODE,COUNT,PROVISION_SECONDS`: pod slots per node (1 or more), nodes at the start
    (0 or more), and seconds a new node takes to be ready (0 or more)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not PODS_PER_NODE,COUNT,PROVISION_SECONDS")
    try:
        return (whole_number(1)(parts[0].strip()), whole_number(0)(parts[1].strip()),
                nonnegative_number(parts[2].strip()))
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{text!r} (PODS_PER_NODE,COUNT,PROVISION_SECONDS): {err}") from None


def headroom_amount(text: str) -> Headroom:
    """`PODS`, `PERCENT%` or `PERCENT%,MIN`: room as spec.headroom states it (replicas, or
    percent with its minReplicas floor, default 1), and checked by the same rules."""
    from spillway.api.spec import Headroom

    amount, _, floor = text.partition(",")
    amount = amount.strip()
    try:
        if amount.endswith("%"):
            percent = whole_number(1)(amount[:-1].strip())
            return Headroom(percent=percent, min_replicas=whole_number(0)(floor.strip()) if floor else None)
        if floor:
            raise argparse.ArgumentTypeError("a floor goes with a percent only (PERCENT%,MIN)")
        return Headroom(replicas=whole_number(0)(amount))
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{text!r} (PODS, PERCENT% or PERCENT%,MIN): {err}") from None
    except ValueError as err:  # the spec's own bounds (pydantic's ValidationError)
        reason = err.errors()[0]["msg"] if hasattr(err, "errors") else str(err)
        raise argparse.ArgumentTypeError(f"{text!r} (PODS, PERCENT% or PERCENT%,MIN): {reason}") from None


def duration_seconds(text: str) -> float:
    """A duration as `300ms`, `1.5s`, `2m`, or a bare number of seconds; greater than 0."""
    from spillway.api.units import parse_duration

    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text).total_seconds()
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a duration greater than 0")
    return value


# --- input -------------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _duration(seconds: float | None) -> str | None:
    from spillway.api.units import format_duration

    return None if seconds is None else format_duration(timedelta(seconds=seconds))


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else _one_line(err)
        raise ValueError(f"cannot read {what} {path}: {reason}") from None


def _spec(args: argparse.Namespace) -> ScalableServiceSpec:
    """The -f file's spec (or a bare one) with the flags given laid over it."""
    from spillway.sim.scenarios import spec_document, stated_spec

    document = spec_document(_read(args.filename, "file"), args.filename) if args.filename else None
    return stated_spec(document, {
        ("capacity", "concurrency"): args.concurrency,
        ("capacity", "queueLimit"): getattr(args, "queue_limit", None),
        ("capacity", "timeout"): _duration(getattr(args, "timeout", None)),
        ("replicas", "min"): getattr(args, "min", None),
        ("replicas", "max"): getattr(args, "max", None),
        ("scaling", "targets", "latency", "objective"): _duration(args.objective),
        ("scaling", "targets", "latency", "quantile"): args.quantile,
    })


def _trace(args: argparse.Namespace) -> Trace:
    from spillway.sim import scenarios
    from spillway.sim.traces import from_csv

    if args.trace.endswith(".csv") or Path(args.trace).is_file():
        trace = from_csv(Path(args.trace).name, _read(args.trace, "trace"))
        if args.peak is not None:
            trace = trace.scaled_to(args.peak)
        return scenarios.truncated(trace, args.duration) if args.duration is not None else trace
    if args.trace not in scenarios.SHAPES:
        raise ValueError(f"--trace must be one of {', '.join(scenarios.SHAPES)} or a .csv file, not {args.trace!r}")
    if args.peak is None:
        raise ValueError(f"--peak RPS is needed with the synthetic trace {args.trace} (its highest rate)")
    return scenarios.synthetic(args.trace, args.peak, args.duration if args.duration is not None else 600.0)


def simulation_inputs(args: argparse.Namespace) -> tuple[Scenario, list[Policy], float, tuple[str, ...]]:
    """The scenario, the policies to run on it, the objective's quantile, and notes on what the
    spec declares that is not simulated; ValueError (SpecError among them) on bad input."""
    from spillway.sim import scenarios
    from spillway.sim.run import Scenario
    from spillway.sim.spillway import SpillwayPolicy

    spec = _spec(args)
    kind, _, path = args.service_time.partition(":")
    empirical = _read(path, "service times") if kind == "empirical" else None
    speeds: dict[str, float] = {}
    for name, factor in args.pool_speed or ():
        if name in speeds:
            raise ValueError(f"--pool-speed gives pool {name!r} twice")
        speeds[name] = factor
    # The file's spec.headroom applies unless --headroom says otherwise.
    stated = spec.headroom if spec.headroom.replicas is not None or spec.headroom.percent is not None else None
    nodes = scenarios.stated_nodes(args.nodes, args.headroom, stated)
    declared = scenarios.declared(spec, scenarios.service_time(args.service_time, empirical), args.startup,
                                  sessions=args.sessions, pool_speeds=speeds, nodes=nodes)
    if declared.objective_seconds is None:
        raise ValueError("no latency objective: set scaling.targets.latency in the spec or pass --objective")
    compared = scenarios.peers(args.compare)
    scenario = Scenario(_trace(args), declared.service, declared.objective_seconds, spec.replicas.min,
                        spec.replicas.max, algorithm=declared.algorithm, scrape_interval=args.scrape_interval,
                        miss_share=args.miss_share, seed=args.seed, flavors=declared.flavors,
                        sticky=declared.sticky, sessions=declared.sessions, nodes=nodes)
    policies: list[Policy] = [SpillwayPolicy(spec)]
    policies += [scenarios.peer(name, scenario, declared.quantile) for name in compared]
    notes = declared.notes
    if stated is not None and args.nodes is None:
        notes += ("spec.headroom is simulated only with --nodes: without them every replica finds a node",)
    if args.filename and args.objective is not None:
        notes += ("--objective replaces the file's scaling.targets.latency.objective: Spillway scales toward it",)
    return scenario, policies, declared.quantile, notes


def plan_inputs(args: argparse.Namespace) -> Plan:
    from spillway.sim.plan import plan

    concurrency, most, objective, quantile = args.concurrency or 200, args.max_replicas, args.objective, args.quantile
    if args.filename:
        from spillway.scaling.proposals import replica_capacity

        spec = _spec(args)
        concurrency, most = replica_capacity(spec).concurrency, most or spec.replicas.max
        target = spec.scaling.targets.latency
        if target is None:
            raise ValueError(f"{args.filename} sets no scaling.targets.latency: pass --objective")
        objective, quantile = target.objective.total_seconds(), target.quantile
    if objective is None:
        raise ValueError("--objective is needed (or -f with scaling.targets.latency)")
    return plan(args.rate, args.service_time, objective, concurrency, quantile=quantile or 0.95,
                kind="mean" if args.mean else "quantile", max_replicas=most)


# --- output ------------------------------------------------------------------------------------


@contextmanager
def _progress(label: str, total: float, shown: bool) -> Iterator[Progress | None]:
    """A bar of simulated seconds on stderr, fed by run()'s progress callback."""
    if not shown:
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=label, total=total, unit="s", file=sys.stderr, leave=False) as bar:
        def advance(done: float, _total: float) -> None:
            bar.update(done - bar.n)

        yield advance


def simulate_command(args: argparse.Namespace) -> int:
    from spillway.sim.report import ceiling_sentence, markdown, milliseconds, seeded_markdown, seeded_summary, summary
    from spillway.sim.run import run

    try:
        scenario, policies, quantile, notes = simulation_inputs(args)
        for needed, wanted in (("matplotlib", args.out), ("tqdm", args.progress), ("scipy", args.seeds > 1)):
            if wanted and importlib.util.find_spec(needed) is None:
                raise ValueError(f"{needed} is not installed: pip install 'spillway[sim]'")
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as err:
        print(f"spillway simulate: error: {_one_line(err)}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    bar = args.progress or (sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None)
    seeds = [dataclasses.replace(scenario, seed=scenario.seed + k) for k in range(args.seeds)]
    runs: list[list[Result]] = [[] for _ in policies]
    for seeded in seeds:
        for runs_of, policy in zip(runs, policies, strict=True):
            label = policy.name if len(seeds) == 1 else f"{policy.name}, seed {seeded.seed}"
            with _progress(label, math.ceil(scenario.trace.duration), bar) as progress:
                runs_of.append(run(seeded, policy, progress))
    results = [runs_of[0] for runs_of in runs]  # the first seed's: its rows and its picture
    trace = scenario.trace
    print(f"{trace.name} trace, {trace.duration:g} s, peak {trace.peak:.4g} req/s; objective: "
          f"p{quantile * 100:g} within {milliseconds(scenario.objective_seconds)}")
    print(ceiling_sentence(scenario, quantile))
    print("\n".join(summary(results, quantile, scenario) if len(seeds) == 1 else seeded_summary(runs, quantile)))
    if args.out:
        from spillway.plots import write_timeline

        report, picture = Path(args.out) / "report.md", Path(args.out) / "simulation.png"
        report.write_text(markdown(scenario, results, quantile, notes) if len(seeds) == 1
                          else seeded_markdown(scenario, runs, quantile, notes))
        write_timeline(results, scenario.objective_seconds, picture)
        print(f"wrote {report} and {picture}" + (f" (the picture: seed {scenario.seed})" if len(seeds) > 1 else ""))
    return 0


def _share_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f} %"


def plan_command(args: argparse.Namespace) -> int:
    from spillway.sim.plan import MOST_REPLICAS

    try:
        result = plan_inputs(args)
    except ValueError as err:
        print(f"spillway plan: error: {_one_line(err)}", file=sys.stderr)
        return 2
    read = "a mean response time (--mean)" if result.kind == "mean" else "a quantile of response time"
    print(f"Objective: {result.aim} ({read}).")
    print(f"{result.rate_rps:g} req/s at {result.service_seconds * 1000:g}ms mean service time keep "
          f"{result.rate_rps * result.service_seconds:.4g} workers busy on average. By Erlang C (M/M/k):")
    if result.unreachable:
        print(f"  Unreachable: {result.unreachable}.")
        return 1
    c = result.concurrency
    if result.replicas is None:
        print(f"  no count up to {MOST_REPLICAS} replicas of concurrency {c} meets it.")
    else:
        bound = "" if result.max_replicas is None else (
            f", within max {result.max_replicas}" if result.within_max else f", MORE than max {result.max_replicas}")
        busy = _share_text(result.utilization)
        print(f"  {result.replicas} replicas of concurrency {c} meet it, {busy} busy{bound}.")
    if result.caveat:
        print(f"  Caution: {result.caveat}.")
    print("\n  concurrency  replicas   busy")
    for row in result.rows:
        replicas = "—" if row.replicas is None else str(row.replicas)
        mark = "  <- given" if row.concurrency == c else ""
        print(f"  {row.concurrency:>11}  {replicas:>8}  {_share_text(row.utilization):>5}{mark}")
    if result.saturation_rps is not None:
        print(f"\nWith {result.replicas} replicas x {c} workers the pools are 100 % busy at "
              f"{result.saturation_rps:.4g} req/s (replicas x concurrency / service time).")
    if result.objective_limit_rps is not None:
        print(f"The objective stops being met above {result.objective_limit_rps:.4g} req/s.")
    return 0 if result.within_max else 1

