"""The CI workflows run only the actions' code that was reviewed: each by a commit, not a tag."""

from __future__ import annotations

import re
from pathlib import Path

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def test_every_action_is_pinned_by_a_full_commit_sha() -> None:
    uses = [(path.name, line.strip()) for path in sorted(WORKFLOWS.glob("*.y*ml"))
            for line in path.read_text().splitlines() if re.match(r"\s*(-\s*)?uses:", line)]
    assert uses, "no workflow uses an action"
    loose = [u for u in uses if not re.search(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}(\s|$)", u[1])]
    assert not loose, loose
