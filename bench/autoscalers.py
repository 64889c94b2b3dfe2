"""Spillway's scaling against the HPA, KEDA and Knative, on every trace, in the simulator, over
several seeds.

Every trace (five synthetic shapes, and the six real windows of ../shared/traces, smoothed and
scaled to one peak) is offered to the same service under every policy: Spillway's engine as
configured below, each peer under every configuration of its grid (each cited to the peer's
docs), the reactive reference (the present rate known exactly, no metric delay) and look-ahead
sizing (the future rate known one start-up ahead). Every policy sees the same requests on a
seed (common random numbers: `spillway.sim.run`); each figure is a mean over the seeds with its
95 % interval, and Spillway is held against each peer's cost-attainment frontier seed by seed
(`spillway.sim.frontier`). A lower bound on replica-seconds (`spillway.sim.bound`) is computed
for each run of Spillway at its own attainment. Writes bench/autoscalers.md and
bench/autoscalers/*.png; results are cached by the sources' digest in ~/.cache/spillway.

    python bench/autoscalers.py                         # everything (10 seeds, 15 on short traces)
    python bench/autoscalers.py --quick                 # synthetic traces only, 3 seeds
    python bench/autoscalers.py --seeds 20 --traces step spike
    python bench/autoscalers.py --report-only           # the report from the cached runs
    python bench/autoscalers.py --experiment headroom   # nodes that take minutes to come
                                                        # (bench/autoscalers-headroom.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import math
import os
import pickle
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from spillway import sim as sim_package
from spillway.api import parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.scaling.queueing import replicas_for_latency
from spillway.sim import frontier, stats, traces
from spillway.sim.bound import lower_bound, workload
from spillway.sim.distributions import bimodal, lognormal
from spillway.sim.model import Flavor, Nodes, Service, Simulation, poisson_arrivals
from spillway.sim.peers import hpa, keda, knative, oracle
from spillway.sim.policy import Foresight, Policy
from spillway.sim.run import Result, Scenario, quantile, run
from spillway.sim.spillway import SpillwayPolicy
from spillway.sim.traces import Trace

ROOT = Path(__file__).resolve().parent
TRACES_DIR = ROOT.parent.parent / "shared" / "traces"

# The service every policy scales: replicas of 4 workers (a small web service: a few threads or
# processes per pod), 50 queued requests each, log-normal work (mean 250 ms, p99 about 700 ms),
# 30 s from a pod's creation to its readiness. A replica serves 16 req/s with every worker busy,
# so the 150 req/s peak needs about 13 replicas at 75 % busy, with a quarter of the first rounds'
# requests to simulate (600 req/s on 8 workers): what lets every trace run on ten seeds within
# the hour on 2 cores (about 11 µs of CPU per request, 17 configurations).
CONCURRENCY, QUEUE_LIMIT, TIMEOUT_SECONDS, STARTUP_SECONDS = 4, 50, 10.0, 30.0
SERVICE_TIME = lognormal(0.25, 0.5)
OBJECTIVE_SECONDS, QUANTILE = 1.0, 0.99
MIN_REPLICAS, MAX_REPLICAS = 2, 60
PEAK_RPS = 150.0
PER_REPLICA_RPS = CONCURRENCY / SERVICE_TIME.mean_seconds  # every worker busy
SEEDS = 10
# A short trace holds fewer requests, so its figures spread more from seed to seed: traces of at
# most SHORT_MINUTES get half as many seeds again.
SHORT_MINUTES = 30.0


def seeds_for(key: str, seeds: int) -> list[int]:
    """The seeds a trace runs on: `seeds`, and half as many again for a short trace."""
    extra = seeds // 2 if trace(key).duration <= SHORT_MINUTES * 60 else 0
    return list(range(1, seeds + extra + 1))
# Each real trace's per-second rate is averaged over this centred window before it is scaled:
# a source's per-second counts hold the noise of its own arrivals, which replaying them as a
# Poisson rate would add a second time (and multiply by the scale factor).
SMOOTH_SECONDS = 60
SYNTHETIC_MINUTES = 30.0  # the synthetic shapes' time unit (a step at 1/4, a diurnal period of 4/3)

SPILLWAY: dict[str, Any] = {
    "template": {"spec": {"containers": [{"name": "app", "image": "app",
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}},
    "replicas": {"min": MIN_REPLICAS, "max": MAX_REPLICAS},
    "capacity": {"concurrency": CONCURRENCY, "queueLimit": QUEUE_LIMIT, "timeout": f"{TIMEOUT_SECONDS:g}s"},
    "scaling": {"prometheus": {"url": "http://prometheus:9090"}, "metricsSource": "HAProxy",
                "targets": {"latency": {"objective": f"{OBJECTIVE_SECONDS * 1000:g}ms", "quantile": QUANTILE}}},
}

REAL = {
    "azure-llm-conv": "Azure Public Dataset, AzureLLMInferenceTrace_conv (CC-BY 4.0)",
    "azure-llm-code": "Azure Public Dataset, AzureLLMInferenceTrace_code (CC-BY 4.0)",
    "nasa-surge": "NASA Kennedy Space Center WWW logs, July 1995 (Internet Traffic Archive)",
    "nasa-morning-ramp": "NASA Kennedy Space Center WWW logs, 7 July 1995 (Internet Traffic Archive)",
    "twitter-surge": "Twitter event-rate series (reconfigurable-ml-pipeline/web-service-datasets)",
    "twitter-double-spike": "Twitter event-rate series (reconfigurable-ml-pipeline/web-service-datasets)",
}

# Development against evaluation: the traces whose runs shaped Spillway's engine (the fixes
# `git log` lists for the simulator's findings came from runs on all of these, and the first
# regression guard locked in relations on three of the synthetic ones). No trace is held out yet.
DEVELOPMENT = ("step", "spike", "diurnal", "ramp", "on-off", *REAL)


def spillway_spec() -> ScalableServiceSpec:
    return parse_spec(SPILLWAY)


def service() -> Service:
    return Service(concurrency=CONCURRENCY, queue_limit=QUEUE_LIMIT, timeout=TIMEOUT_SECONDS,
                   service_time=SERVICE_TIME, startup=STARTUP_SECONDS)


def synthetic() -> dict[str, Trace]:
    unit = SYNTHETIC_MINUTES * 60
    return {
        "step": traces.step(PEAK_RPS / 5, PEAK_RPS, at=unit / 4, duration=unit),
        "spike": traces.spike(PEAK_RPS / 10, 10.0, at=unit / 4, rise=10.0, hold=unit / 4, duration=unit),
        "diurnal": traces.diurnal(PEAK_RPS / 8, PEAK_RPS, period=unit, duration=2 * unit),
        "ramp": traces.ramp(PEAK_RPS / 10, PEAK_RPS, duration=unit * 3 / 4),
        "on-off": traces.on_off(PEAK_RPS, on=120.0, off=240.0, duration=unit),
    }


def source(key: str) -> Trace:
    return traces.from_csv(key, (TRACES_DIR / f"{key}.csv").read_text())


def trace(key: str) -> Trace:
    if key in REAL:
        return traces.smoothed(source(key), SMOOTH_SECONDS).scaled_to(PEAK_RPS)
    return synthetic()[key]


def scenario(key: str, seed: int) -> Scenario:
    """Every run starts where a service already running before the window would stand: at the
    count the first minute's highest rate needs (never a cold start at `min`)."""
    t = trace(key)
    first = replicas_for_latency(t.peak_between(0, 60), SERVICE_TIME.mean_seconds, CONCURRENCY, OBJECTIVE_SECONDS,
                                 QUANTILE, MAX_REPLICAS)
    return Scenario(t, service(), OBJECTIVE_SECONDS, MIN_REPLICAS, MAX_REPLICAS,
                    initial_replicas=first or MAX_REPLICAS, algorithm="LeastConnection", seed=seed)


# --- the configurations ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration of one policy: `label` in the report, `knobs` for its constructor, and
    where its docs advise it (`source`)."""

    family: str
    label: str
    knobs: tuple[tuple[str, Any], ...] = ()
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.family}: {self.label}"


def _triggers(utilization: float) -> tuple[keda.Trigger, ...]:
    """A ScaledObject's three Prometheus triggers at `utilization` of a replica: the request rate
    and the requests in flight per replica, and the queue at one replica's workers."""
    return (keda.Trigger("rate", round(PER_REPLICA_RPS * utilization, 3)),
            keda.Trigger("inflight", round(CONCURRENCY * utilization, 3)),
            keda.Trigger("queue", float(CONCURRENCY)))


HPA_WALKTHROUGH = "kubernetes.io HorizontalPodAutoscaler walkthrough"
HPA_CUSTOM = ("kubernetes.io HPA walkthrough, 'Autoscaling on multiple metrics and custom metrics' (a Pods "
              "metric, AverageValue, through prometheus-adapter)")
KEDA_DOCS = ("keda.sh Prometheus scaler (threshold per replica, AverageValue) and ScaledObject spec "
             "(pollingInterval 30 s, advanced.horizontalPodAutoscalerConfig.behavior)")
KNATIVE_DOCS = ("knative.dev Serving autoscaling docs (config-autoscaler defaults; target utilization, stable and "
                "panic windows, panic threshold)")

CONFIGS: tuple[Config, ...] = (
    Config("Spillway", "defaults and the objective", source="the CRD's defaults; the latency objective set"),
    Config("Reactive reference", "present rate, no delay",
           source="reference: the true rate of the present second, Erlang C at the objective, no metric delay"),
    Config("Look-ahead sizing", "rate one start-up ahead",
           source="reference: Spillway's Erlang C sizing for the true future rate one start-up ahead"),
    # The HPA on CPU: the container's request at half a busy replica's use, so utilization reads
    # up to 200 % and a surge is seen in full (a request at full use caps it at 100 %).
    Config("HPA", "CPU 80 %", (("request_share", 0.5),),
           HPA_WALKTHROUGH + " (`kubectl autoscale --cpu-percent=80`), request half of peak use"),
    Config("HPA", "CPU 60 %", (("target", 0.6), ("request_share", 0.5)), HPA_WALKTHROUGH),
    Config("HPA", f"in-flight {CONCURRENCY * 0.7:g}/pod", (("in_flight_per_pod", CONCURRENCY * 0.7),), HPA_CUSTOM),
    Config("HPA", f"in-flight {CONCURRENCY * 0.5:g}/pod", (("in_flight_per_pod", CONCURRENCY * 0.5),), HPA_CUSTOM),
    Config("HPA", f"in-flight {CONCURRENCY * 0.7:g}/pod, scale-down window 60 s",
           (("in_flight_per_pod", CONCURRENCY * 0.7), ("with_behavior", True),
            ("downscale_stabilization_seconds", 60.0)),
           HPA_CUSTOM + "; behavior.scaleDown.stabilizationWindowSeconds (kubernetes.io HPA 'Configurable scaling "
           "behavior')"),
    Config("KEDA", "rate, in-flight and queue at 70 %", (("triggers", _triggers(0.7)),), KEDA_DOCS),
    Config("KEDA", "rate, in-flight and queue at 50 %", (("triggers", _triggers(0.5)),), KEDA_DOCS),
    Config("KEDA", "rate, in-flight and queue at 85 %", (("triggers", _triggers(0.85)),), KEDA_DOCS),
    Config("KEDA", "70 %, polling 15 s, scale-down window 60 s",
           (("triggers", _triggers(0.7)), ("polling_interval_seconds", 15.0), ("with_behavior", True),
            ("downscale_stabilization_seconds", 60.0)), KEDA_DOCS),
    Config("Knative", "defaults (70 % of 4, 60 s window, panic 200 %)", source=KNATIVE_DOCS),
    Config("Knative", "target utilization 50 %", (("target_utilization", 0.5),), KNATIVE_DOCS),
    Config("Knative", "target utilization 90 %", (("target_utilization", 0.9),), KNATIVE_DOCS),
    Config("Knative", "stable window 30 s", (("stable_window_seconds", 30.0),),
           KNATIVE_DOCS + "; `autoscaling.knative.dev/window` (6 s to 1 h)"),
    Config("Knative", "panic threshold 150 %", (("panic_threshold_percentage", 150.0),),
           KNATIVE_DOCS + "; `autoscaling.knative.dev/panic-threshold-percentage` (110 % to 1000 %)"),
)
PEERS = ("HPA", "KEDA", "Knative")
REFERENCES = ("Reactive reference", "Look-ahead sizing")
BY_KEY = {c.key: c for c in CONFIGS}


def policy(config: Config, s: Scenario) -> Policy:
    knobs = dict(config.knobs)
    if config.family == "Spillway":
        return SpillwayPolicy(spillway_spec())
    if config.family in REFERENCES:
        foresight = Foresight(s.trace.rate, SERVICE_TIME.mean_seconds, CONCURRENCY, STARTUP_SECONDS)
        return oracle.Oracle(foresight, OBJECTIVE_SECONDS, QUANTILE, MIN_REPLICAS, MAX_REPLICAS,
                             ahead=config.family == "Look-ahead sizing")
    if config.family == "HPA":
        return hpa.HPA(MIN_REPLICAS, MAX_REPLICAS, **knobs)
    if config.family == "KEDA":
        return keda.KEDA(MIN_REPLICAS, MAX_REPLICAS, **knobs)
    if config.family == "Knative":
        return knative.Knative(MIN_REPLICAS, MAX_REPLICAS, container_concurrency=CONCURRENCY, **knobs)
    raise ValueError(f"no policy family {config.family!r}")


PLOTTED = frozenset({"Spillway: defaults and the objective", "Reactive reference: present rate, no delay",
                     *(next(c.key for c in CONFIGS if c.family == f) for f in PEERS)})


def job(key: str, config_key: str, seed: int) -> tuple[str, str, int, tuple[Result, float]]:
    """One run, and the seconds of one core it took."""
    began = time.process_time()
    s = scenario(key, seed)
    result = run(s, policy(BY_KEY[config_key], s))
    if seed != 1 or config_key not in PLOTTED:  # only the first seed's runs of these are plotted
        result = dataclasses.replace(result, timeline=())
    return key, config_key, seed, (result, time.process_time() - began)


def bound_job(key: str, seed: int, attainment: float) -> tuple[str, int, tuple[float, float]]:
    """The lower bound at `attainment` on one seed's requests, and the seconds of one core it took."""
    began = time.process_time()
    s = scenario(key, seed)
    drain = math.ceil(TIMEOUT_SECONDS) + 1  # every run drains at least this long after the trace
    return key, seed, (lower_bound(s, workload(s), attainment, drain), time.process_time() - began)


def sources_digest() -> str:
    """What every run depends on: the simulator, the engine and the API models, this benchmark's
    scenarios and the service (not its report, which can change without a new run, nor the
    configurations: each run is kept under its own configuration's digest, `run_digest`)."""
    package = Path(sim_package.__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*package.glob("sim/**/*.py"), *package.glob("scaling/*.py"), *package.glob("api/*.py")]):
        digest.update(path.read_bytes())
    for part in (synthetic, source, trace, scenario, policy, job, bound_job, _triggers):
        digest.update(inspect.getsource(part).encode())
    digest.update(repr((SPILLWAY, CONCURRENCY, QUEUE_LIMIT, TIMEOUT_SECONDS, STARTUP_SECONDS, SERVICE_TIME,
                        OBJECTIVE_SECONDS, QUANTILE, MIN_REPLICAS, MAX_REPLICAS, PEAK_RPS, SMOOTH_SECONDS,
                        SYNTHETIC_MINUTES)).encode())
    if TRACES_DIR.is_dir():
        for path in sorted(TRACES_DIR.glob("*.csv")):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_digest(common: str, config: Config) -> str:
    """What one configuration's runs depend on: the common sources and the configuration itself
    (its knobs, and whether its first seed's timeline is plotted), so that adding a configuration
    to a grid or changing one reruns only that configuration's runs."""
    return hashlib.sha256(repr((common, config.family, config.knobs, config.key in PLOTTED)).encode()).hexdigest()


# --- running, cached -------------------------------------------------------------------------------

def _cache(name: str) -> Path:
    return Path(os.environ.get("SPILLWAY_CACHE", Path.home() / ".cache" / "spillway")) / f"{name}.pickle"


def _cached(path: Path, version: str) -> tuple[dict[Any, Any], float]:
    """The results kept at `path` and the seconds they took, if the same code gave them."""
    try:
        cached_version, cached, cached_elapsed = pickle.loads(path.read_bytes())
    except (OSError, ValueError, TypeError, pickle.UnpicklingError, AttributeError, EOFError):
        return {}, 0.0  # none yet, or another version's
    return (cached, cached_elapsed) if cached_version == version else ({}, 0.0)


def _store(path: Path, version: str, done: dict[Any, Any], elapsed: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(pickle.dumps((version, done, elapsed)))
    temporary.replace(path)


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


def _pool(name: str, work: Sequence[tuple[Any, ...]], function: Callable[..., Any], jobs: int,
          done: dict[Any, Any], key_of: Callable[[Any], Any], value_of: Callable[[Any], Any],
          save: Callable[[float], None]) -> float:
    """Runs `function(*w)` for each of `work` on `jobs` processes, keeping each answer in `done`
    as it comes and saving every 20 answers, so that an interrupted run keeps what it finished."""
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(function, *w) for w in work]
        for count, future in enumerate(futures, 1):
            answer = future.result()
            done[key_of(answer)] = value_of(answer)
            print(f"[{name} {count}/{len(futures)}] {key_of(answer)}", file=sys.stderr)
            if count % 20 == 0:
                save(time.monotonic() - started)
    elapsed = time.monotonic() - started
    save(elapsed)
    return elapsed


CACHE_LAYOUT = "v2: runs by (trace, configuration, seed) with their configuration's run_digest and CPU seconds"


def results(keys: list[str], seeds: int, jobs: int, report_only: bool
            ) -> tuple[dict[tuple[str, str, int], Result], dict[tuple[str, int], tuple[float, float]], float] | None:
    """Every configuration on every trace and seed, the lower bound at each of Spillway's runs,
    and the seconds of one core they took together, from the cache where the same code ran them
    (a run is reused while its configuration's `run_digest` holds, a bound while the common
    sources do); None when `report_only` and some are missing."""
    path, common = _cache("bench-autoscalers-seeded"), sources_digest()
    stored, _ = _cached(path, CACHE_LAYOUT)
    digests = {c.key: run_digest(common, c) for c in CONFIGS}
    kept: dict[tuple[str, str, int], tuple[str, tuple[Result, float]]] = stored.get("runs", {})
    runs = {k: timed for k, (digest, timed) in kept.items() if digests.get(k[1]) == digest}
    bounds: dict[tuple[str, int], tuple[float, tuple[float, float]]] = (
        stored.get("bounds", {}) if stored.get("common") == common else {})
    work = [(k, c.key, s) for k in keys for s in seeds_for(k, seeds) for c in CONFIGS if (k, c.key, s) not in runs]
    if work:
        print(f"{len(runs)} runs of this code cached, {len(work)} to run", file=sys.stderr)

    def save(seconds: float) -> None:
        kept.update({k: (digests[k[1]], timed) for k, timed in runs.items()})
        _store(path, CACHE_LAYOUT, {"runs": kept, "bounds": bounds, "common": common}, 0.0)

    if work and report_only:
        print(f"no results of this code for {len(work)} runs in {path}: run without --report-only", file=sys.stderr)
        return None
    if work:
        _pool("runs", work, job, jobs, runs, lambda a: a[:3], lambda a: a[3], save)
    subject = BY_KEY["Spillway: defaults and the objective"].key
    wanted = [(k, s, runs[(k, subject, s)][0].slo_attainment) for k in keys for s in seeds_for(k, seeds)
              if bounds.get((k, s), (None,))[0] != runs[(k, subject, s)][0].slo_attainment]
    if wanted and report_only:
        print(f"no lower bounds of this code for {len(wanted)} runs in {path}", file=sys.stderr)
        return None
    if wanted:
        found: dict[tuple[str, int], tuple[float, float]] = {}

        def keep(seconds: float) -> None:
            for (k, s), timed in found.items():
                bounds[(k, s)] = (runs[(k, subject, s)][0].slo_attainment, timed)
            save(seconds)

        _pool("bounds", wanted, bound_job, jobs, found, lambda a: a[:2], lambda a: a[2], keep)
    used = {(k, c.key, s) for k in keys for s in seeds_for(k, seeds) for c in CONFIGS}
    cpu = math.fsum(runs[u][1] for u in used) + math.fsum(bounds[(k, s)][1][1] for k in keys
                                                          for s in seeds_for(k, seeds))
    return ({u: runs[u][0] for u in used},
            {(k, s): (bounds[(k, s)][0], bounds[(k, s)][1][0]) for k in keys for s in seeds_for(k, seeds)}, cpu)


# --- the analysis ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Figures:
    """One configuration on one trace over the seeds."""

    config: Config
    runs: tuple[Result, ...]
    attainment: stats.Estimate
    cost: stats.Estimate
    p99_ms: float | None  # the mean of the runs' p99, where every run answered some


def figures(config: Config, runs: Sequence[Result]) -> Figures:
    p99s = [r.p99_seconds for r in runs]
    p99 = None if any(p is None for p in p99s) else 1000 * math.fsum(p for p in p99s if p is not None) / len(p99s)
    return Figures(config, tuple(runs), stats.estimate([r.slo_attainment for r in runs]),
                   stats.estimate([r.replica_seconds for r in runs]), p99)


@dataclasses.dataclass(frozen=True)
class TraceFindings:
    key: str
    spillway: Figures
    configs: tuple[Figures, ...]
    versus: dict[str, frontier.Matched]  # per peer family: Spillway against its frontier
    reactive: Any  # compare.Paired: Spillway against the reactive reference
    over_bound: stats.Estimate  # Spillway's replica-seconds over the lower bound at its attainment, per seed
    bound: float  # the bound's mean


def analyse(key: str, seeds: list[int], runs: dict[tuple[str, str, int], Result],
            bounds: dict[tuple[str, int], tuple[float, float]]) -> TraceFindings:
    from spillway.sim.compare import paired

    every = {c.key: figures(c, [runs[(key, c.key, s)] for s in seeds]) for c in CONFIGS}
    spill = every["Spillway: defaults and the objective"]
    versus = {family: frontier.matched(spill.runs, {c.label: every[c.key].runs for c in CONFIGS if c.family == family})
              for family in PEERS}
    reactive = paired(spill.runs, every["Reactive reference: present rate, no delay"].runs)
    lows = [bounds[(key, s)][1] for s in seeds]
    over = stats.paired_ratio([max(r.replica_seconds, 1e-9) for r in spill.runs], [max(b, 1e-9) for b in lows])
    return TraceFindings(key, spill, tuple(every.values()), versus, reactive, over, math.fsum(lows) / len(lows))


def _interval(found: stats.Estimate, text: Callable[[float], str], within: tuple[float, float] | None = None) -> str:
    """The mean and its interval; `within` clips the interval to what the quantity can be (a
    share's t-interval over few seeds can pass 100 %)."""
    if found.n < 2:
        return text(found.mean)
    low, high = (found.low, found.high) if within is None else (max(within[0], found.low), min(within[1], found.high))
    return f"{text(found.mean)} [{text(low)}, {text(high)}]"


SHARE = (0.0, 1.0)


def _points(share: float) -> str:
    return f"{share * 100:+.2f}"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def _inverse(found: stats.Estimate) -> stats.Estimate:
    """A ratio's estimate the other way round (the peer's over Spillway's)."""
    return stats.Estimate(1 / found.mean, 1 / found.high, 1 / found.low, found.n, null=1.0)


def _negated(found: stats.Estimate) -> stats.Estimate:
    return stats.Estimate(-found.mean, -found.high, -found.low, found.n)


def versus_cell(matched: frontier.Matched) -> str:
    """The verdict, then the peer's frontier at Spillway's attainment (its cost over Spillway's)
    and at Spillway's cost (Spillway's attainment over it, in points)."""
    if matched.cost is not None:
        cost = f"cost {_interval(_inverse(matched.cost), _times)}"
    elif matched.attainment_side == "above":
        cost = "no configuration attains as much" + ("" if matched.better_cost > 0 else " (not significantly)")
    else:
        cost = "every configuration attains more"
    if matched.attainment is not None:
        against = " against its best" if matched.cost_side == "above" else ""
        points = f"Spillway {_interval(matched.attainment, _points)} pts{against}"
    else:
        points = "Spillway cheaper than every configuration"
    return f"**{matched.verdict}**: {cost}; {points}"


def headline(found: list[TraceFindings]) -> list[str]:
    lines = ["| trace | Spillway's SLO attainment | its cost ÷ lower bound | "
             + " | ".join(f"vs {p}'s frontier" for p in PEERS) + " | vs the reactive reference |",
             "|---|---:|---:|" + "---|" * len(PEERS) + "---|"]
    for f in found:
        reactive = f"**{f.reactive.verdict}**: {_interval(f.reactive.attainment, _points)} pts, " \
                   f"cost {_interval(f.reactive.cost, _times)}"
        lines.append(f"| {f.key} | {_interval(f.spillway.attainment, _pct, SHARE)} | {_interval(f.over_bound, _times)} | "
                     + " | ".join(versus_cell(f.versus[p]) for p in PEERS) + f" | {reactive} |")
    return lines


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


def findings(found: list[TraceFindings]) -> list[str]:
    """What the tables say; every list and number below is computed from this run."""
    lines = ["## Findings", ""]
    for peer in PEERS:
        by: dict[str, list[str]] = {}
        for f in found:
            by.setdefault(f.versus[peer].verdict, []).append(f.key)
        parts = [f"{verdict} on {len(keys)} ({_listed(keys)})" for verdict, keys in sorted(by.items())]
        lines.append(f"- **Against {peer}'s frontier** ({sum(1 for c in CONFIGS if c.family == peer)} "
                     f"configurations): Spillway {'; '.join(parts)}.")
        losses = []
        for f in found:
            m = f.versus[peer]
            if m.verdict != "dominated":
                continue
            detail = []
            if m.cost is not None and m.cost.sign > 0:
                detail.append(f"{peer} reaches Spillway's attainment for {_times(1 / m.cost.mean)} its cost")
            elif m.cost is None and m.attainment_side == "below" and m.peer_cost is not None:
                detail.append(f"every configuration attains more, the cheapest for "
                              f"{_times(m.peer_cost / f.spillway.cost.mean)} Spillway's cost")
            if m.attainment is not None and m.attainment.sign < 0:
                detail.append(f"attains {_points(-m.attainment.mean)} points more at Spillway's cost")
            losses.append(f"{f.key} ({', '.join(detail) or 'inside the frontier'})")
        if losses:
            lines.append(f"  - Where {peer} wins: {'; '.join(losses)}.")
    goal = 0.99
    met = [f.key for f in found if f.spillway.attainment.low >= goal]
    missed = [f"{f.key} ({_pct(f.spillway.attainment.mean)})" for f in found if f.spillway.attainment.high < goal]
    lines.append(f"- **99 % of requests within {OBJECTIVE_SECONDS:g} s**: Spillway's interval lies at or above it on "
                 f"{len(met)} of {len(found)} traces ({_listed(met)}) and wholly below it on {len(missed)} "
                 f"({_listed(missed)}).")
    by_reactive: dict[str, list[str]] = {}
    for f in found:
        by_reactive.setdefault(f.reactive.verdict, []).append(f.key)
    lines.append("- **Against the reactive reference** (the true present rate, sized by Erlang C, no metric delay, the "
                 "same start-up): Spillway "
                 + "; ".join(f"{verdict} on {len(keys)} ({_listed(keys)})" for verdict, keys in sorted(by_reactive.items()))
                 + ". Where it is dominated, a policy reading fresher or truer signals could do better without "
                 "foresight.")
    ratios = sorted(found, key=lambda f: f.over_bound.mean)
    if ratios:
        lines.append(f"- **Cost over the lower bound**: from {_times(ratios[0].over_bound.mean)} ({ratios[0].key}) to "
                     f"{_times(ratios[-1].over_bound.mean)} ({ratios[-1].key}). The bound knows every request in "
                     "advance and leaves out queueing, whole pods and the balancer, so the ratio bounds what any "
                     "policy could save from above; it is not a target.")
    widths = [(f.spillway.attainment.high - f.spillway.attainment.low) / 2 for f in found if f.spillway.attainment.n > 1]
    if widths:
        counts = sorted({f.spillway.attainment.n for f in found})
        lines.append(f"- **Noise**: over {' or '.join(map(str, counts))} seeds the half-width of Spillway's "
                     "attainment interval is "
                     f"{min(widths) * 100:.2f}–{max(widths) * 100:.2f} points; verdicts rest on paired intervals, "
                     "which are narrower (the same requests on both sides).")
    developed = [k for k in DEVELOPMENT if any(f.key == k for f in found)]
    held_out = [f.key for f in found if f.key not in DEVELOPMENT]
    lines.append(f"- **Development against evaluation**: the engine was developed on {len(developed)} of these "
                 f"{len(found)} traces ({_listed(developed)}); held out: {_listed(held_out)}. A win on a trace the "
                 "engine was shaped on is weaker evidence than one on a held-out trace.")
    return [*lines, ""]


def trace_section(f: TraceFindings, t: Trace) -> list[str]:
    rows = ["| policy | configuration | SLO attainment | replica-seconds | mean p99 | source |",
            "|---|---|---:|---:|---:|---|"]
    for fig in f.configs:
        name = f"**{fig.config.family}**" if fig.config.family == "Spillway" else fig.config.family
        rows.append(f"| {name} | {fig.config.label} | {_interval(fig.attainment, _pct, SHARE)} | "
                    f"{_interval(fig.cost, lambda v: f'{v:,.0f}')} | {'–' if fig.p99_ms is None else f'{fig.p99_ms:.0f} ms'} "
                    f"| {fig.config.source} |")
    note = f" Source: {REAL[f.key]}, `shared/traces/{f.key}.csv`." if f.key in REAL else ""
    return [f"### {f.key}", "",
            f"{t.duration / 60:.0f} min, peak {t.peak:.0f} req/s, mean {t.mean():.0f} req/s.{note} Lower bound at "
            f"Spillway's attainment: {f.bound:,.0f} replica-seconds (mean over the seeds).", "",
            f"![{f.key}](autoscalers/{f.key}.png)", "", *rows, ""]


def traces_table(keys: list[str]) -> list[str]:
    lines = ["| trace | source mean req/s | 1-s peak | 1-min peak | dispersion (1 min) | smoothed peak | "
             "scale factor | duration |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key in keys:
        if key not in REAL:
            continue
        raw = source(key)
        smooth = traces.smoothed(raw, SMOOTH_SECONDS)
        index = traces.dispersion(raw, 60)
        lines.append(f"| {key} | {raw.mean():.2f} | {raw.peak:.0f} | {traces.window_peak(raw, 60):.1f} | "
                     f"{'–' if index is None else f'{index:.2f}'} | {smooth.peak:.2f} | "
                     f"{PEAK_RPS / smooth.peak:.1f} | {raw.duration / 60:.0f} min |")
    return lines


def report(found: list[TraceFindings], keys: list[str], seeds: int, cpu_seconds: float, quick: bool,
           balancing: list[str]) -> str:
    spec = parse_spec(SPILLWAY)
    command = "python bench/autoscalers.py" + (" --quick" if quick else "") + (
        f" --seeds {seeds}" if seeds != (3 if quick else SEEDS) else "")
    short = [f.key for f in found if f.spillway.attainment.n > seeds]
    seeded = f"{seeds} seeds" + (f" ({seeds + seeds // 2} on the traces of {SHORT_MINUTES:g} minutes or less: "
                                 f"{', '.join(short)})" if short else "")
    lines = [
        "# Autoscalers in the simulator: Spillway, the HPA, KEDA and Knative",
        "",
        f"Generated by `{command}`: {seeded}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; its runs and bounds take {cpu_seconds / 60:.1f} min of one core's time "
        f"(about {cpu_seconds / 60 / max(1, os.cpu_count() or 1):.1f} min of wall time on all cores). Deterministic under its seeds: the same "
        "code gives the same numbers. Every figure is a mean over the seeds with its 95 % interval in brackets "
        "(Student's t); every verdict rests on a paired interval (the same requests under both policies of a "
        "seed) and says `no difference` where that interval holds no change.",
        "",
        "**How to read the peers' columns.** Each peer runs every configuration of its grid; its frontier is the "
        "configurations no other one beats on both cost and attainment, joined by straight lines. `cost` is the "
        "frontier's replica-seconds at Spillway's attainment over Spillway's (above 1: the peer pays more for the "
        "same attainment); `Spillway … pts` is Spillway's attainment minus the frontier's at Spillway's cost, in "
        "percentage points. `dominates`: Spillway lies outside the frontier with significance on one and not "
        "inside it on the other; `dominated`: inside; `trades`: outside on one, inside on the other, or cheaper "
        "and lower than every configuration. The lower bound is a bound on the replica-seconds any policy needs for "
        "Spillway's attainment on the same requests, even one knowing them all in advance (`spillway.sim.bound`).",
        "",
        *headline(found),
        "",
        *findings(found),
        "## Setup",
        "",
        f"- **Service**: replicas of {CONCURRENCY} workers, queue {QUEUE_LIMIT}, client timeout "
        f"{TIMEOUT_SECONDS:g} s; service times log-normal, mean {SERVICE_TIME.mean_seconds * 1000:g} ms, σ 0.5 "
        f"(p99 ≈ 700 ms), so a replica serves {PER_REPLICA_RPS:g} req/s with every worker busy; "
        f"{STARTUP_SECONDS:g} s from a pod's creation to its readiness; least-connection balancing; "
        f"{MIN_REPLICAS}–{MAX_REPLICAS} replicas, each run starting at the count the first minute's peak needs.",
        f"- **Objective**: a request counts when answered within {OBJECTIVE_SECONDS:g} s; SLO attainment is the "
        "share of all arrived requests that were (timeouts and refusals never are). Cost is replica-seconds "
        "(starting and draining pods count).",
        f"- **Seeds**: {seeded}, numbered from 1. A seed fixes every arrival, every request's work, "
        "and where the scrapes, metrics-server's samples and each policy's decisions fall within their periods; "
        "all policies of a seed see the same.",
        "- **Signals**: each policy reads what its real counterpart reads (sim/pipeline.py): Spillway the "
        "HAProxy preset through Prometheus scraping every 15 s; KEDA its triggers' queries through the same "
        "Prometheus; the HPA CPU from metrics-server at 15 s resolution, or a Pods metric (each pod's requests "
        "in flight) from the last scrape; Knative the per-second concurrency of its queue-proxies.",
        f"- **Spillway**: `scaling.decide` unchanged, interval {spec.scaling.interval.total_seconds():g} s, the "
        f"CRD's defaults except the latency objective ({OBJECTIVE_SECONDS * 1000:g} ms at p{QUANTILE * 100:g}); "
        "one configuration for every trace.",
        "- **Peers**: every configuration is listed with its source in each trace's table. The HPA on CPU has its "
        "container request at half a busy replica's use, so utilization passes 100 % under a surge as it does "
        "for a request below peak usage. KEDA's ScaledObjects carry three Prometheus triggers (request rate and "
        "requests in flight per replica, and the queue), as its Prometheus scaler docs show one per query; "
        "Knative runs with containerConcurrency "
        f"{CONCURRENCY}. **Knative's activator is not modelled**: with its default target-burst-capacity (200) it "
        "stays in the request path at these sizes, holds requests while replicas start and reports their "
        "concurrency; here a surge's refused requests never reach Knative's metric and are lost, so Knative's "
        "attainment on surges is understated and its scale-up somewhat late.",
        "- **References**: the reactive reference knows the present second's true rate and sizes for it by "
        "Erlang C at the objective, with no metric delay and the same start-up; look-ahead sizing does the same "
        "for the highest rate one start-up ahead (the first rounds' \"oracle\"; not a bound: a policy can be "
        "cheaper by taking some misses).",
        f"- **Traces**: synthetic shapes at a {PEAK_RPS:g} req/s peak; the six windows of `shared/traces/`, each "
        f"smoothed by a centred {SMOOTH_SECONDS} s moving average and scaled so the smoothed peak is "
        f"{PEAK_RPS:g} req/s, then replayed as a Poisson process. Their sources, before that:",
        "",
        *traces_table(keys),
        "",
        "The dispersion index is the variance over the mean of the per-second counts within each minute "
        "(a Poisson source gives 1); the source's own counts, before smoothing and scaling.",
        "",
        "## Per trace",
        "",
    ]
    for f in found:
        lines += trace_section(f, trace(f.key))
    lines += balancing
    return "\n".join(lines) + "\n"


def plot(f: TraceFindings, t: Trace, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (load, replicas, front) = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [2, 2, 1.6]})
    timelines = {fig.config.family: fig.runs[0].timeline for fig in f.configs if fig.runs[0].timeline}
    seconds = [p.time for p in f.spillway.runs[0].timeline]
    load.plot([s / 60 for s in seconds], [t.rate(s - 1) for s in seconds], color="black", linewidth=0.8)
    load.set_ylabel("offered req/s")
    load.set_xlabel("minutes")
    load.set_title(f"{f.key}: load")
    for family, timeline in timelines.items():
        replicas.step([p.time / 60 for p in timeline], [p.replicas for p in timeline], where="post", label=family,
                      linewidth=1.6 if family == "Spillway" else 0.9)
    replicas.set_title("replicas asked for (first seed; each peer's first configuration)")
    replicas.set_xlabel("minutes")
    replicas.legend(loc="upper left", fontsize=7)
    colors = {"HPA": "tab:orange", "KEDA": "tab:green", "Knative": "tab:red", "Spillway": "tab:blue",
              "Reactive reference": "gray", "Look-ahead sizing": "black"}
    for family in (*PEERS, "Spillway", *REFERENCES):
        points = [fig for fig in f.configs if fig.config.family == family]
        xs = [fig.cost.mean for fig in points]
        ys = [fig.attainment.mean * 100 for fig in points]
        front.scatter(xs, ys, s=14 if family != "Spillway" else 40, color=colors[family], label=family,
                      marker="o" if family in PEERS else "*")
        if family in PEERS:
            line = frontier.frontier([frontier.Point(fig.config.label, fig.cost.mean, fig.attainment.mean)
                                      for fig in points])
            front.plot([p.cost for p in line], [p.attainment * 100 for p in line], color=colors[family], linewidth=0.8)
    front.axvline(f.bound, color="gray", linestyle=":", linewidth=0.8, label="lower bound at Spillway's")
    front.set_xlabel("replica-seconds (mean)")
    front.set_ylabel("SLO attainment % (mean)")
    front.set_title("frontiers")
    front.legend(loc="lower right", fontsize=6)
    figure.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"{f.key}.png", dpi=80)
    plt.close(figure)


# --- experiment: nodes and headroom (issue 13) ----------------------------------------------------
# Run by --experiment headroom into bench/autoscalers-headroom.md. On the first rounds' service
# (8 workers, queue 100, a 600 req/s peak, the real traces scaled unsmoothed) and their one seed,
# so that its numbers and its prose, written for that service, stay each other's.

FIRST_CONCURRENCY, FIRST_QUEUE_LIMIT, FIRST_PEAK_RPS, FIRST_MAX_REPLICAS, FIRST_SEED = 8, 100, 600.0, 80, 11
FIRST_MINUTES = 60.0


def first_spec() -> ScalableServiceSpec:
    return parse_spec({**SPILLWAY, "replicas": {"min": MIN_REPLICAS, "max": FIRST_MAX_REPLICAS},
                       "capacity": {"concurrency": FIRST_CONCURRENCY, "queueLimit": FIRST_QUEUE_LIMIT,
                                    "timeout": f"{TIMEOUT_SECONDS:g}s"}})


def first_scenario(key: str) -> Scenario:
    if key in REAL:
        t = source(key).scaled_to(FIRST_PEAK_RPS)
    else:
        unit = FIRST_MINUTES
        t = {"step": traces.step(FIRST_PEAK_RPS / 5, FIRST_PEAK_RPS, at=10 * unit, duration=40 * unit),
             "spike": traces.spike(FIRST_PEAK_RPS / 10, 10.0, at=10 * unit, rise=10.0, hold=10 * unit,
                                   duration=40 * unit)}[key]
    first = replicas_for_latency(t.peak_between(0, 60), SERVICE_TIME.mean_seconds, FIRST_CONCURRENCY,
                                 OBJECTIVE_SECONDS, QUANTILE, FIRST_MAX_REPLICAS)
    svc = Service(concurrency=FIRST_CONCURRENCY, queue_limit=FIRST_QUEUE_LIMIT, timeout=TIMEOUT_SECONDS,
                  service_time=SERVICE_TIME, startup=STARTUP_SECONDS)
    return Scenario(t, svc, OBJECTIVE_SECONDS, MIN_REPLICAS, FIRST_MAX_REPLICAS,
                    initial_replicas=first or FIRST_MAX_REPLICAS, algorithm="LeastConnection", seed=FIRST_SEED)


# Nodes of 4 of the service's pods, each ready 120 s after the cluster autoscaler asks for it. The
# cluster-autoscaler FAQ ("How fast is HPA when combined with CA?") puts node provisioning on GCE at
# 3 to 4 minutes from its request to pods schedulable there: 120 s is a fast cloud.
PODS_PER_NODE, PROVISION_SECONDS = 4, 120.0
HEADROOM_TRACES = ("step", "spike", "nasa-surge", "azure-llm-code")


@dataclasses.dataclass(frozen=True)
class Room:
    """One way to run the service on nodes: its headroom (`pods` placeholders, or `percent` of
    the replicas with a floor of `least`), and whether the engine reads the replicas waiting for
    a node, as the operator has it do; the control without it is the engine before the hold."""

    label: str
    pods: int = 0
    percent: float | None = None
    least: int = 1
    reads_unschedulable: bool = True

    def nodes(self, initial: int) -> Nodes:
        """The cluster a service of `initial` replicas and this headroom already runs on: just
        enough nodes for both."""
        spec = Nodes(PODS_PER_NODE, 0, PROVISION_SECONDS, self.pods, self.percent, self.least)
        return dataclasses.replace(spec, nodes=math.ceil((initial + spec.placeholders_for(initial)) / PODS_PER_NODE))


ROOMS = (
    Room("no headroom"),
    Room("no headroom, engine not told of Pending pods", reads_unschedulable=False),
    Room("fixed 4 (one node)", pods=4),
    Room("fixed 32 (eight nodes)", pods=32),
    Room("20 %, min 2", percent=20.0, least=2),
)


def headroom_job(key: str, index: int) -> tuple[str, int, Result]:
    """Room `index` on `key`; index -1 is nodes that are always there."""
    s = first_scenario(key)
    if index < 0:
        return key, index, run(s, SpillwayPolicy(first_spec()))
    room = ROOMS[index]
    s = dataclasses.replace(s, nodes=room.nodes(s.initial))
    return key, index, run(s, SpillwayPolicy(first_spec(), name=room.label,
                                             reads_unschedulable=room.reads_unschedulable))


def headroom_digest() -> str:
    """What the nodes-and-headroom runs depend on: all the comparison does, and their own setup."""
    digest = hashlib.sha256(sources_digest().encode())
    for part in (Room, headroom_job, first_spec, first_scenario):
        digest.update(inspect.getsource(part).encode())
    digest.update(repr((PODS_PER_NODE, PROVISION_SECONDS, HEADROOM_TRACES, ROOMS)).encode())
    return digest.hexdigest()


def headroom_section(keys: list[str], results: dict[tuple[str, int], Result], unbounded: dict[str, Result],
                     elapsed: float) -> list[str]:
    if not keys:
        return []
    lines = [
        "# Nodes and headroom: Spillway on nodes that take minutes to come",
        "",
        "Generated by `python bench/autoscalers.py --experiment headroom`. **One seed** "
        f"({FIRST_SEED}), on the benchmark's first service ({FIRST_CONCURRENCY} workers, queue {FIRST_QUEUE_LIMIT}, "
        f"{FIRST_MAX_REPLICAS} replicas at most, the traces at a {FIRST_PEAK_RPS:g} req/s peak, the real ones "
        "scaled unsmoothed): it compares rows with each other, not policies with intervals.",
        "",
        f"Spillway alone, with its defaults, on the surge traces, now on nodes of {PODS_PER_NODE} of the service's "
        f"pods that the cluster autoscaler adds for Pending pods, each ready {PROVISION_SECONDS:g} s after it is "
        "asked for (the cluster-autoscaler FAQ reports 3 to 4 minutes on GCE, so this is a fast cloud). Each run "
        "starts on just enough nodes for its first replicas and their placeholders; nodes are never removed, so "
        "node-seconds after a peak are an upper bound, the same for every row. A replica takes a placeholder's "
        "slot at once (the placeholder, of lower priority, is preempted and brings a node of its own); without "
        "one, it is Pending until a node is up, then takes its 30 s to start. The engine is told how many of its "
        "replicas are Pending (`unschedulable`); while any are, the queue raises the count no further and the "
        "demand signals (arrival rate, in-flight, latency) raise it only as far as they ask (`CapacityPending`); "
        "the rows *engine not told of Pending pods* are the control without that. *Node waits* are the seconds in which a replica "
        "was Pending; *missed in them* counts the requests that missed the objective (timed out, refused or "
        "answered late) within those seconds. The unbounded row is Spillway's run of the same seed on nodes "
        f"that are always there. {len(keys) * (len(ROOMS) + 1)} runs, {elapsed / 60:.1f} min.",
        "",
        "![nodes and headroom](autoscalers/headroom.png)",
        "",
        "| trace | headroom | SLO attainment | replica-seconds | node-seconds | × no headroom | peak nodes | "
        "node waits | missed in them | missed in all |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        base = results[(key, 0)]
        free = unbounded[key]
        lines.append(f"| {key} | unbounded nodes | {_pct(free.slo_attainment)} | {free.replica_seconds:,.0f} | – | – | – "
                     f"| – | – | {free.arrived - free.within_objective:,} |")
        for index, room in enumerate(ROOMS):
            r = results[(key, index)]
            lines.append(f"| {key} | {room.label} | {_pct(r.slo_attainment)} | {r.replica_seconds:,.0f} | "
                         f"{r.node_seconds:,.0f} | {r.node_seconds / max(base.node_seconds, 1.0):.2f} | "
                         f"{max((p.nodes for p in r.timeline), default=0)} | "
                         f"{r.node_wait_seconds:,.0f} s | {r.missed_in_node_waits:,} | "
                         f"{r.arrived - r.within_objective:,} |")
    return [*lines, "", *headroom_findings(keys, results, unbounded), ""]


def headroom_findings(keys: list[str], results: dict[tuple[str, int], Result], unbounded: dict[str, Result]
                      ) -> list[str]:
    """What the table says, each number computed from it; the reasons are the timelines'."""
    def points(a: Result, b: Result) -> str:
        return f"{(a.slo_attainment - b.slo_attainment) * 100:+.2f} points"

    def costs(a: Result, b: Result) -> str:
        return f"{(a.node_seconds / max(b.node_seconds, 1.0) - 1) * 100:+.0f} % node-seconds"

    def against_none(index: int) -> str:
        return "; ".join(f"{key} {points(results[(key, index)], results[(key, 0)])}, "
                         f"{costs(results[(key, index)], results[(key, 0)])}" for key in keys)

    label = {room.label: i for i, room in enumerate(ROOMS)}
    blind, fixed, big, share = (label["no headroom, engine not told of Pending pods"], label["fixed 4 (one node)"],
                                label["fixed 32 (eight nodes)"], label["20 %, min 2"])
    waiting = "; ".join(
        f"{key} {points(results[(key, 0)], unbounded[key])} (the hold's part: "
        f"{points(results[(key, 0)], results[(key, blind)])}; {results[(key, 0)].missed_in_node_waits:,} of its "
        f"{results[(key, 0)].arrived - results[(key, 0)].within_objective:,} misses in node waits)" for key in keys)
    def saved(key: str) -> float:
        return (results[(key, 0)].replica_seconds / max(results[(key, blind)].replica_seconds, 1.0) - 1) * 100

    held = "; ".join(f"{key} {saved(key):+.1f} %" for key in keys)
    costly = [key for key in keys if results[(key, 0)].slo_attainment < results[(key, blind)].slo_attainment - 0.0005]
    onsets = "; ".join(_hold_onset(key, results[(key, 0)], results[(key, blind)]) for key in costly)
    free = [key for key in keys if key not in costly]
    spared = f" (on {', '.join(free)}, under 0.05 points)" if free else ""
    hold = (f"It costs attainment only where a surge begins while a replica is already Pending{spared}: {onsets}. "
            "The queue sees a surge first; the arrival rate, averaged over a minute, follows it an interval or "
            "more later, and the nodes the surge needs are asked for that much later"
            if costly else "It costs no attainment on any of these traces (under 0.05 points)")
    small = "; ".join(f"{key} {_pct(results[(key, fixed)].slo_attainment)} and {_pct(results[(key, share)].slo_attainment)}"
                      f" against {_pct(results[(key, blind)].slo_attainment)}" for key in keys)
    firsts = {key: first_scenario(key).initial for key in keys}
    floors = ", ".join(f"{key} {firsts[key]} → {ROOMS[share].nodes(firsts[key]).placeholders_for(firsts[key])}"
                       for key in keys)
    peaks = "; ".join(f"{key} {max(p.nodes for p in results[(key, 0)].timeline)} nodes "
                      f"({max(p.nodes for p in results[(key, 0)].timeline) * PODS_PER_NODE} slots; at most "
                      f"{max(p.replicas for p in results[(key, 0)].timeline)} replicas asked for, "
                      f"{max(p.ready for p in results[(key, 0)].timeline)} ready at once)" for key in keys)
    # Where waiting for nodes costs nothing (within 0.05 points of unbounded nodes), and why, from the
    # timelines: the misses fall where they fall on nodes that are always there.
    why = {"nasa-surge": "its load rises slowly enough for the replicas running to absorb it while new ones wait",
           "azure-llm-code": "its bursts last seconds: the requests it loses are lost before any replica asked "
                             "for them could start, with nodes at hand or not"}
    calm = [key for key in keys if abs(results[(key, 0)].slo_attainment - unbounded[key].slo_attainment) < 0.0005]
    unharmed = "".join(f" On {key} the node waits cost nothing" + (f" ({why[key]})" if key in why else "")
                       + ", and no headroom buys anything there." for key in calm)
    # Small headroom gains no more than the hold lost when each run is within 0.1 point of the
    # control that does not hold.
    undoes = all(abs(results[(key, i)].slo_attainment - results[(key, blind)].slo_attainment) < 0.001
                 for key in keys for i in (fixed, share))
    return [
        f"- **What waiting for nodes costs** (no headroom against unbounded nodes, then against the control "
        f"that is not told of Pending pods): {waiting}.",
        f"- **The CapacityPending hold** saves replica-seconds ({held} against the control): the pods the "
        f"queue, still reading the backlog the Pending ones have not served, would add. {hold}.",
        f"- **Small headroom, fixed 4 (one node) or 20 %, min 2**: {against_none(fixed)} (fixed 4); "
        f"{against_none(share)} (20 %). "
        + ("Where they gain, they gain what the hold lost, no more" if undoes else "Against the control")
        + f": fixed 4 and 20 % reach {small} for the control without headroom. A replica that takes a "
        "placeholder's slot is not Pending, so the engine does not hold for it. On a jump to several times the "
        "size they change little: a few warm slots against the dozens of replicas the surge asks for turn some "
        "refusals into late answers.",
        f"- **A percent is taken of the count before the surge**, and these services start small (first "
        f"replicas → placeholders: {floors}). It follows growth at the service's own scale (a 20 % rise finds "
        "20 % ready) and costs its share of nodes all the time; it cannot cover a jump to several times the "
        "size.",
        f"- **Fixed 32** (eight nodes held empty, about what the step and the spike add): {against_none(big)}. "
        "Headroom buys back what waiting for nodes costs only when it holds the surge's size, and what it "
        f"costs is those nodes for the whole run, surge or not.{unharmed}",
        f"- **Node-seconds overstate every row's cost**: without headroom the cluster reaches {peaks}. A "
        "burst's panic asks for replicas that are scaled away before their nodes come, the cluster autoscaler "
        "does not cancel those nodes, and this model never removes a node (the real one removes a node unneeded for 10 minutes, per its FAQ), so "
        "each run keeps its peak to the end. The ratios between rows are the comparison to read, not the "
        "totals.",
    ]


def _hold_onset(key: str, held: Result, control: Result) -> str:
    """Where the held run first asks for fewer replicas than the control, and what was Pending then."""
    theirs = {p.time: p for p in control.timeline}
    before, since = None, None
    for point in held.timeline:
        other = theirs.get(point.time)
        if other is not None and point.replicas < other.replicas:
            waiting = before.pending if before is not None else 0
            caught = next((p.time for p in held.timeline if p.time > point.time and p.replicas >= other.replicas), None)
            until = f"until {caught:.0f} s" if caught is not None else "to the end"
            missed = (held.arrived - held.within_objective) - (control.arrived - control.within_objective)
            peak = max(p.offered_rps for p in held.timeline)
            rose = before is not None and point.replicas > before.replicas
            kept = f"raises it only to {point.replicas}, what demand asks for," if rose else f"keeps {point.replicas}"
            pending = f"{waiting} replica{'s' if waiting != 1 else ''} Pending" + (
                f" since {since:.0f} s" if waiting and since is not None else "")
            return (f"on {key}, at {point.time:.0f} s, {pending}, the "
                    f"control asks for {other.replicas} and the hold {kept} {until} ({missed:,} more misses, "
                    f"{missed / max(peak, 1.0):.0f} s of the surge's {peak:,.0f} req/s)")
        if point.pending and (before is None or not before.pending):
            since = point.time
        before = point
    return f"on {key}, no interval where the hold asks for fewer"


def headroom_plot(keys: list[str], results: dict[tuple[str, int], Result], unbounded: dict[str, Result],
                  folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(keys), figsize=(3.6 * len(keys), 5.5), sharex="col", squeeze=False)
    for column, key in enumerate(keys):
        ready, nodes = axes[0][column], axes[1][column]
        free = unbounded[key].timeline
        ready.step([p.time / 60 for p in free], [p.ready for p in free], where="post", color="gray", ls="--",
                   linewidth=0.8, label="unbounded nodes")
        for index, room in enumerate(ROOMS):
            if not room.reads_unschedulable:
                continue  # the control: its line sits on the first one's
            timeline = results[(key, index)].timeline
            times = [p.time / 60 for p in timeline]
            ready.step(times, [p.ready for p in timeline], where="post", linewidth=1.0, label=room.label)
            nodes.step(times, [p.nodes for p in timeline], where="post", linewidth=1.0, label=room.label)
        ready.set_title(key)
        nodes.set_xlabel("minutes")
    axes[0][0].set_ylabel("ready replicas")
    axes[1][0].set_ylabel("nodes up")
    axes[0][0].legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / "headroom.png", dpi=90)
    plt.close(figure)




def headroom_main(jobs: int, report_only: bool) -> int:
    keys = [k for k in HEADROOM_TRACES if k not in REAL or (TRACES_DIR / f"{k}.csv").exists()]
    path, version = _cache("bench-autoscalers-headroom-first"), headroom_digest()
    done, elapsed = _cached(path, version)
    work = [(key, i) for key in keys for i in range(-1, len(ROOMS)) if (key, i) not in done]
    if work and report_only:
        print(f"no nodes-and-headroom results of this code in {path}: run without --report-only", file=sys.stderr)
        return 2
    if work:
        elapsed += _pool("headroom", work, headroom_job, jobs, done, lambda a: a[:2], lambda a: a[2],
                         lambda seconds: _store(path, version, done, elapsed + seconds))
    results = {k: v for k, v in done.items() if k[1] >= 0}
    unbounded = {key: done[(key, -1)] for key in keys}
    out = ROOT / "autoscalers-headroom.md"
    out.write_text("\n".join(headroom_section(keys, results, unbounded, elapsed)) + "\n")
    headroom_plot(keys, results, unbounded, ROOT / "autoscalers")
    print(f"wrote {out}", file=sys.stderr)
    return 0


def balancing_section() -> list[str]:
    """Fixed replicas, no autoscaler: how each algorithm spreads long-tail requests over
    heterogeneous replicas (three fast ones to one half-speed one, weights 2:1)."""
    slow = bimodal(0.05, 2.0, 0.03)  # 3 % of requests take 2 s on average
    flavors = (Flavor(share=3, speed=1.0, weight=2), Flavor(share=1, speed=0.5, weight=1))
    replicas, concurrency = 8, 8
    # six full-speed replicas and two half-speed ones: workers over the mean service time
    capacity = (6 * concurrency + 2 * concurrency * 0.5) / slow.mean_seconds
    rate = 0.75 * capacity
    lines = ["## Balancing: long requests on heterogeneous replicas", "",
             f"{replicas} replicas of {concurrency} workers (six at full speed, two at half speed; WeightedRatio "
             "weights them 2:1), queue 100, timeout 10 s; service times bimodal: 97 % exponential with mean "
             f"50 ms, 3 % with mean 2 s; Poisson arrivals at {rate:.0f} req/s (about 75 % busy) for 10 min; "
             f"objective 1 s; one seed ({FIRST_SEED}).", "",
             "| algorithm | SLO attainment | p50 | p99 | timeouts + refused |", "|---|---:|---:|---:|---:|"]
    p99: dict[str, float] = {}
    for algorithm in ("RoundRobin", "Random", "LeastConnection", "WeightedRatio"):
        svc = Service(concurrency=concurrency, queue_limit=100, timeout=10.0, service_time=slow)
        simulation = Simulation(svc, replicas, algorithm, seed=FIRST_SEED, flavors=flavors)
        simulation.arrive_at(poisson_arrivals(lambda _: rate, 0.0, 600.0, rate, random.Random(FIRST_SEED)))
        simulation.run_until(700.0)
        outcome = simulation.outcome
        ordered = sorted(outcome.latencies)
        within = sum(1 for latency in ordered if latency <= 1.0)
        p99[algorithm] = quantile(ordered, 0.99) or 0.0
        lines.append(f"| {algorithm} | {_pct(within / outcome.arrived)} | {_seconds(quantile(ordered, 0.5))} | "
                     f"{_seconds(p99[algorithm])} | {outcome.timeouts + outcome.refused:,} |")
    lines += ["", f"Round robin and random hand a replica its turn whatever it holds, so requests queue behind the "
              f"slow ones a replica is already serving (the seed note's long requests piling onto one server), "
              f"more so on the half-speed replicas: their p99 is {p99['RoundRobin'] / p99['LeastConnection']:.1f}× "
              f"and {p99['Random'] / p99['LeastConnection']:.1f}× least connection's, which sends each request to "
              "the replica with the fewest in flight. Weights fix the speed difference but not the long "
              "requests. Hence LeastConnection as the HAProxy provider's default."]
    return [*lines, ""]




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="synthetic traces only, 3 seeds")
    parser.add_argument("--seeds", type=int, help=f"seeds per trace (default {SEEDS}, 3 with --quick)")
    parser.add_argument("--traces", nargs="*", help="only these traces (names)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(ROOT / "autoscalers.md"))
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the last run's results (kept in ~/.cache/spillway)")
    parser.add_argument("--experiment", choices=("headroom",),
                        help="headroom: Spillway on nodes that take minutes to come (bench/autoscalers-headroom.md)")
    args = parser.parse_args(argv)
    if args.experiment == "headroom":
        return headroom_main(args.jobs, args.report_only)
    seeds = args.seeds or (3 if args.quick else SEEDS)
    if seeds < 2:
        parser.error("intervals need at least 2 seeds")
    keys = list(synthetic())
    if not args.quick:
        missing = [k for k in REAL if not (TRACES_DIR / f"{k}.csv").exists()]
        if missing:
            print(f"the real traces are read from {TRACES_DIR}; missing: {', '.join(missing)}", file=sys.stderr)
            return 2
        keys += list(REAL)
    if args.traces:
        keys = [k for k in keys if k in args.traces]
    done = results(keys, seeds, args.jobs, args.report_only)
    if done is None:
        return 2
    runs, bounds, cpu_seconds = done
    found = [analyse(key, seeds_for(key, seeds), runs, bounds) for key in keys]
    out = Path(args.out)
    for f in found:
        plot(f, trace(f.key), out.parent / "autoscalers")
    out.write_text(report(found, keys, seeds, cpu_seconds, args.quick, balancing_section()))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
