"""`make integration` selects `-m integration`: a module under tests/integration without the mark
would run only in `make test`, and silently not in `make integration`."""

from __future__ import annotations

import ast
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"


def _marks(module: Path) -> str:
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            return ast.unparse(node.value)
    return ""


def test_every_integration_module_carries_the_integration_mark() -> None:
    modules = sorted(INTEGRATION.glob("test_*.py"))
    assert modules
    unmarked = [m.name for m in modules if "pytest.mark.integration" not in _marks(m)]
    assert unmarked == []
