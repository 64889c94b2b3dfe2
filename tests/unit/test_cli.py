from __future__ import annotations

import re
import subprocess
import sys
from typing import Any
from pathlib import Path

import pytest
import yaml

from spillway.cli import DEFAULT_CRD_PATH, main, parser, render_crd, simulation_inputs

ROOT = Path(__file__).resolve().parents[2]


def test_crd_command_writes_the_generated_crd(tmp_path: Path) -> None:
    target = tmp_path / "out" / "crd.yaml"
    assert main(["crd", "-o", str(target)]) == 0
    assert target.read_text() == render_crd() == (ROOT / DEFAULT_CRD_PATH).read_text()


def test_run_defaults_watch_all_namespaces_standalone_with_liveness_and_metrics() -> None:
    args = parser().parse_args(["run"])
    assert (args.namespace, args.peering, args.metrics_port, args.priority) == ([], None, 8080, None)
    assert args.liveness == "http://0.0.0.0:8081/healthz"


def test_run_takes_namespaces_peering_and_json_logs() -> None:
    args = parser().parse_args(["run", "-n", "shop", "-n", "team-*", "--peering", "spillway", "--log-format", "json"])
    assert (args.namespace, args.peering, args.log_format) == (["shop", "team-*"], "spillway", "json")


def test_unknown_command_fails_with_usage() -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["frobnicate"])
    assert caught.value.code == 2


def test_console_script_is_installed() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "spillway"), "--help"], capture_output=True, text=True,
                            check=True)
    assert "run" in result.stdout and "crd" in result.stdout


# --- simulate ----------------------------------------------------------------------------------

TINY = ["simulate", "--concurrency", "8", "--queue-limit", "50", "--timeout", "5s", "--min", "2", "--max", "10",
        "--objective", "500ms", "--trace", "step", "--peak", "120", "--duration", "90", "--startup", "5"]


def test_simulate_writes_a_report_and_a_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([*TINY, "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| Spillway |" in report and "**step**, 90 s, peak 120 req/s" in report
    picture = (out / "simulation.png").read_bytes()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n") and len(picture) > 20_000
    printed = capsys.readouterr().out
    assert "Spillway  SLO " in printed and f"wrote {out / 'report.md'} and {out / 'simulation.png'}" in printed


def test_simulate_shows_progress_on_stderr_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--progress"]) == 0
    assert "Spillway:" in capsys.readouterr().err


def test_simulate_compares_peers_row_by_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--compare", "oracle,hpa,reactive", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert all(f"| {name} |" in report for name in ("Spillway", "Oracle", "HPA", "Reactive reference"))


def test_simulate_over_seeds_gives_intervals_and_paired_verdicts(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--compare", "hpa,keda", "--seeds", "4", "--seed", "10", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "4 seeds; each figure a mean, with its 95 % interval in parentheses" in printed
    assert re.search(r"^Spillway +SLO \d+\.\d\d % \(\d+\.\d\d % to \d+\.\d\d %\)  met on \d of 4 seeds", printed, re.M)
    verdicts = re.findall(r"^Spillway vs (HPA|KEDA): attainment [-+]\d+\.\d\d \(.+ to .+\) points, "
                          r"cost \d\.\d{3}× \(.+ to .+\): (dominates|dominated|trades|no difference)$", printed, re.M)
    assert [name for name, _ in verdicts] == ["HPA", "KEDA"], printed
    report = (tmp_path / "report.md").read_text()
    assert "4 seeds (10 to 13)" in report and "| HPA |" in report and "| KEDA |" in report
    assert "(the picture: seed 10)" in printed


def test_simulate_reads_a_scalable_service_and_a_csv_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "burst.csv"
    trace.write_text("t_seconds,rate_rps\n" + "".join(f"{t},{5 if t < 30 else 20}\n" for t in range(60)))
    assert main(["simulate", "-f", str(ROOT / "manifests/examples/checkout.yaml"), "--concurrency", "4",
                 "--trace", str(trace), "--peak", "80", "--duration", "45"]) == 0
    captured = capsys.readouterr()
    assert "burst.csv trace, 45 s, peak 80 req/s; objective: p95 within 250ms" in captured.out
    assert "note: affinity ClientIP is simulated as 1000 users" in captured.err
    assert "rebalanced " in captured.out  # a sticky run counts the sessions moved by a scale-in


@pytest.mark.parametrize(("extra", "problem"), [
    (["-f", "/nonexistent/ssvc.yaml"], "cannot read file /nonexistent/ssvc.yaml"),
    (["--peak", "nan"], "argument --peak: 'nan' is not a finite number"),
    (["--peak", "-3"], "argument --peak: '-3' must be greater than 0"),
    (["--timeout", "soon"], "argument --timeout: 'soon' is not a duration"),
    (["--trace", "zigzag"], "--trace must be one of step, spike, diurnal, ramp, on-off"),
    (["--service-time", "lognormal:0.1"], "lognormal takes 2 number(s), not 1"),
    (["--min", "20"], "spec.replicas: replicas.min must be less than or equal to replicas.max"),
    (["--compare", "vpa"], "unknown peer 'vpa'"),
    (["--seeds", "0"], "argument --seeds: '0' must be at least 1"),
    (["--miss-share", "1.5"], "argument --miss-share"),
    (["--nodes", "4,2"], "argument --nodes: '4,2' is not PODS_PER_NODE,COUNT,PROVISION_SECONDS"),
    (["--nodes", "0,2,60"], "'0' must be at least 1"),
    (["--nodes", "4,2,soon"], "'soon' is not a number"),
    (["--nodes", "4,-1,60"], "'-1' must be at least 0"),
    (["--headroom", "-1"], "argument --headroom: '-1' (PODS, PERCENT% or PERCENT%,MIN): '-1' must be at least 0"),
    (["--headroom", "0%"], "argument --headroom: '0%' (PODS, PERCENT% or PERCENT%,MIN): '0' must be at least 1"),
    (["--headroom", "2000%"], "less than or equal to 1000"),
    (["--headroom", "nan%"], "'nan' is not a whole number"),
    (["--headroom", "4,2"], "a floor goes with a percent only"),
    (["--headroom", "20%,-1"], "'-1' must be at least 0"),
    (["--headroom", "2"], "--headroom needs --nodes"),
    (["--sessions", "0"], "argument --sessions: '0' must be at least 1"),
    (["--sessions", "100"], "--sessions needs balancing.affinity"),
    (["--pool-speed", "big"], "argument --pool-speed: 'big' is not NAME=FACTOR"),
    (["--pool-speed", "big=0"], "'big=0': the factor '0' must be greater than 0"),
    (["--pool-speed", "big=2"], "--pool-speed names no pool of the spec: 'big'; it declares no pools"),
])
def test_simulate_refuses_bad_input_in_one_line_with_exit_code_2(extra: list[str], problem: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main([*TINY, *extra])
    except SystemExit as exited:  # argparse's own refusals
        code = int(exited.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and problem in err
    assert err.count("\n") == 1 and "Traceback" not in err


POOLED = """\
kind: ScalableService
spec:
  template: {spec: {containers: [{name: app, image: x, ports: [{name: http, containerPort: 8080}]}]}}
  replicas: {min: 2, max: 10}
  capacity: {concurrency: 8, queueLimit: 50, timeout: 5s}
  scaling: {prometheus: {url: "http://prometheus:9090"}, targets: {latency: {objective: 500ms}}}
  balancing: {provider: HAProxy, algorithm: Weighted, affinity: {type: Cookie}}
  pools: [{name: big, weight: 3, capacity: {concurrency: 16}}, {name: small, weight: 1}]
"""


def test_simulate_runs_pools_affinity_and_nodes_from_the_file_and_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pooled.yaml"
    path.write_text(POOLED)
    args = ["simulate", "-f", str(path), "--peak", "120", "--duration", "90", "--startup", "5", "--sessions", "300",
            "--pool-speed", "big=1.5", "--pool-speed", "small=1", "--nodes", "4, 1, 45", "--headroom", "2"]
    scenario, _, _, notes = simulation_inputs(parser().parse_args(args))
    assert scenario.algorithm == "WeightedRatio" and (scenario.sticky, scenario.sessions) == (True, 300)
    assert [(f.share, f.weight, f.concurrency, f.speed) for f in scenario.flavors] == [(3, 3, 16, 1.5),
                                                                                        (1, 1, 8, 1.0)]
    assert scenario.nodes is not None and (scenario.nodes.pods_per_node, scenario.nodes.nodes,
                                           scenario.nodes.provision_seconds, scenario.nodes.headroom_pods) == (
        4, 1, 45.0, 2)
    assert not any("--pool-speed" in n for n in notes)  # every pool's speed was given
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert "node-seconds " in capsys.readouterr().out
    assert "| node-seconds |" in (tmp_path / "out" / "report.md").read_text()
    assert main([*args[:-2], "--pool-speed", "big=2"]) == 2
    assert "--pool-speed gives pool 'big' twice" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "problem"), [
    ("kind: ScalableService\nspec: {replicas: {min: [\n", "is not valid YAML"),
    ("kind: ScalableService\nspec: {template: {}, capacity: {concurrency: 0}}\n", "spec.capacity.concurrency"),
    ("kind: Deployment\n", "must hold exactly one ScalableService"),
])
def test_simulate_names_what_is_wrong_with_the_file(tmp_path: Path, content: str, problem: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ssvc.yaml"
    path.write_text(content)
    assert main(["simulate", "-f", str(path), "--objective", "300ms", "--peak", "10"]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_simulate_refuses_a_trace_csv_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("t_seconds,rate_rps\n0,1\n1,lots\n")
    assert main([*TINY, "--trace", str(path)]) == 2
    assert "trace bad.csv" in capsys.readouterr().err


def test_the_operator_imports_neither_matplotlib_nor_tqdm() -> None:
    code = ("import sys, spillway.cli, spillway.handlers; spillway.cli.parser().parse_args(['run']); "
            "print(sorted(m for m in ('matplotlib', 'tqdm', 'spillway.plots') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


# --- plan --------------------------------------------------------------------------------------


def test_plan_answers_with_the_engines_count_and_where_it_saturates(capsys: pytest.CaptureFixture[str]) -> None:
    from spillway.scaling.queueing import replicas_for_latency

    assert main(["plan", "--rate", "120", "--service-time", "0.1", "--objective", "300ms", "--concurrency", "8"]) == 0
    out = capsys.readouterr().out
    n = replicas_for_latency(120, 0.1, 8, 0.3, 0.95, 10000)
    assert "Objective: p95 response under 300ms (a quantile of response time)" in out
    assert f"  {n} replicas of concurrency 8 meet it" in out
    assert f"100 % busy at {n * 8 / 0.1:.4g} req/s" in out and "The objective stops being met above" in out
    assert "<- given" in out


def test_plan_reads_the_objective_at_its_quantile_whatever_the_preset(capsys: pytest.CaptureFixture[str]) -> None:
    # checkout.yaml uses the HAProxy preset, whose latency is a mean: the objective stays a p95.
    assert main(["plan", "--rate", "2000", "--service-time", "100ms", "-f",
                 str(ROOT / "manifests/examples/checkout.yaml")]) == 0
    out = capsys.readouterr().out
    assert "p95 response under 250ms" in out and "of concurrency 200" in out and "within max 40" in out


def test_plan_explains_an_unreachable_objective(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "100", "--service-time", "0.5", "--objective", "300ms"]) == 1
    assert "no replica count can meet it" in capsys.readouterr().out


def test_plan_says_when_the_count_exceeds_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "1000", "--service-time", "0.1", "--objective", "0.3", "--concurrency", "4",
                 "--max-replicas", "3"]) == 1
    assert "MORE than max 3" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--rate", "inf"], ["--rate", "0"], ["--quantile", "1"], []])
def test_plan_refuses_bad_numbers_with_exit_code_2(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--rate", "10", "--service-time", "0.1", *extra]
    if extra:
        argv += ["--objective", "300ms"]
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and ("error:" in err)


@pytest.mark.parametrize(("flag", "expected"), [
    ("3", (3, None, 1)), ("20%", (0, 20, 1)), ("20%,2", (0, 20, 2)), (" 50% , 0 ", (0, 50, 0))])
def test_simulate_headroom_is_pods_or_a_percent_with_its_floor(flag: str, expected: tuple[Any, ...]) -> None:
    args = [*TINY, "--nodes", "4,2,60", "--headroom", flag]
    scenario, _, _, _ = simulation_inputs(parser().parse_args(args))
    nodes = scenario.nodes
    assert nodes is not None and (nodes.headroom_pods, nodes.headroom_percent, nodes.headroom_min) == expected


def test_simulate_takes_the_files_headroom_unless_the_flag_says_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "roomy.yaml"
    spec = yaml.safe_load((ROOT / "manifests/examples/checkout.yaml").read_text())
    spec["spec"]["headroom"] = {"percent": 25, "minReplicas": 3}
    path.write_text(yaml.safe_dump(spec))
    base = ["simulate", "-f", str(path), "--peak", "50", "--duration", "60"]
    scenario, _, _, notes = simulation_inputs(parser().parse_args([*base, "--nodes", "4,2,60"]))
    assert scenario.nodes is not None
    assert (scenario.nodes.headroom_pods, scenario.nodes.headroom_percent, scenario.nodes.headroom_min) == (0, 25, 3)
    scenario, _, _, _ = simulation_inputs(parser().parse_args([*base, "--nodes", "4,2,60", "--headroom", "1"]))
    assert scenario.nodes is not None
    assert (scenario.nodes.headroom_pods, scenario.nodes.headroom_percent) == (1, None)
    scenario, _, _, notes = simulation_inputs(parser().parse_args(base))
    assert scenario.nodes is None and any("spec.headroom is simulated only with --nodes" in n for n in notes)
