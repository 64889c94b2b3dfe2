from __future__ import annotations

import operator
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_is_still_the_standard_library_module() -> None:
    assert Path(operator.__file__).parent == Path(sysconfig.get_paths()["stdlib"])


def test_operator_folder_is_only_a_source_root() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert (ROOT / "operator" / "spillway" / "__init__.py").exists()
