from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spillway.cli import DEFAULT_CRD_PATH, main, parser, render_crd

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
