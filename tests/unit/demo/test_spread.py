"""Several demo runs side by side: each run's numbers from its logs, and their ranges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from demo import spread
from tests.unit.demo.test_report import PODS, cpu_rows, load_rows, status_rows


def _run(directory: Path, rows: list[dict[str, Any]], cpu: list[dict[str, Any]]) -> Path:
    directory.mkdir()
    (directory / "load.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (directory / "status.jsonl").write_text("\n".join(json.dumps(r) for r in status_rows()))
    (directory / "cpu.jsonl").write_text("\n".join(json.dumps(r) for r in cpu))
    return directory


def test_each_run_is_a_row_and_the_sentence_gives_the_ranges(tmp_path: Path) -> None:
    pods = {uid: (name.replace("web", "shop"), owner.replace("web", "shop"), created, ready)
            for uid, (name, owner, created, ready) in PODS.items()}
    first = _run(tmp_path / "1", load_rows(errors=lambda s: 3 if s == 21 else 0), cpu_rows(pods))
    second = _run(tmp_path / "2", load_rows(errors=lambda s: {21: 9, 80: 3}.get(s, 0)), [])
    out = tmp_path / "runs.md"
    assert spread.main([str(out), str(first), str(second), "--duration", "240"]) == 0
    text = out.read_text()
    assert "| 1 | 3 (0.1 %) | 0 |" in text and "| 2 | 12 (0.5 %) | 3 |" in text
    assert "| 2: 12 s | 3.0 s | 0 |" in text  # run 1: two new replicas, one never Ready
    assert "| 0: — | — | 0 |" in text  # run 2 has no CPU figures
    assert "2 runs. Errors: 0.1–0.5 % of the requests, 0–3 of them after the surge's first 45 s." in text
    assert "Each new replica Ready 12 s (1 without) after its creation, on 3.0 CPU-seconds (1 without)." in text
