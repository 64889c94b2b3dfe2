from __future__ import annotations

import operator
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_is_still_the_standard_library_module() -> None:
    assert Path(operator.__file__).parent == Path(sysconfig.get_paths()["stdlib"])


def test_operator_folder_is_only_a_source_root() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert (ROOT / "operator" / "spillway" / "__init__.py").exists()


def test_import_contracts_hold() -> None:
    """The layers (api < scaling, resources < metrics, kube < reconcile, autoscale < handlers < cli)
    and the pure core's independence from client libraries, as import-linter checks them."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Layers: api, then scaling and resources" in result.stdout and "BROKEN" not in result.stdout
