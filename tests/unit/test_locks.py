"""The operator image's Python packages: a locked set with hashes (requirements/*.lock, made by
`make lock`), which the Dockerfile installs with --require-hashes. The lock must cover every
runtime dependency pyproject.toml names, within its range, so a stale lock fails here rather than
in an image build."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"


def _pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes), from pip-compile's output (continued lines joined)."""
    text = re.sub(r"\\\n\s*", " ", lock.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("--hash") else line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("==")
        version, *options = rest.split()
        pins[canonicalize_name(name)] = (version, [o.removeprefix("--hash=") for o in options])
    return pins


def _dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in project["dependencies"]]


@pytest.mark.parametrize("lock", ["operator.lock", "build.lock"])
def test_every_locked_package_is_pinned_with_a_sha256_hash_and_no_index_is_named(lock: str) -> None:
    pins = _pins(LOCKS / lock)
    assert pins
    for name, (version, hashes) in pins.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), (name, version)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (name, hashes)
    text = (LOCKS / lock).read_text()
    assert "--index-url" not in text and "--find-links" not in text and "://" not in text, (
        "a lock names no package index: the machine's pip configuration does")


def test_the_operator_lock_covers_every_runtime_dependency_within_its_range() -> None:
    pins = _pins(LOCKS / "operator.lock")
    for requirement in _dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not locked: run make lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{name}=={pins[name][0]} is outside pyproject.toml's {requirement.specifier}: run make lock")


def test_the_build_lock_holds_what_the_build_backend_needs() -> None:
    pins = _pins(LOCKS / "build.lock")
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    for requirement in map(Requirement, system["requires"]):
        name = canonicalize_name(requirement.name)
        assert name in pins and requirement.specifier.contains(pins[name][0]), (name, pins.get(name))
    assert "build" in pins


def test_the_image_installs_only_the_locked_hashed_sets() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [line for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines() if "pip install" in line]
    commands = [c.strip() for line in installs for c in line.split("&&") if "pip install" in c]
    assert commands
    for command in commands:
        assert ("--require-hashes" in command and "-r " in command) or (
            "--no-deps" in command and "/wheels/*.whl" in command), command
    assert "--no-isolation" in dockerfile, "build isolation would fetch setuptools unhashed"
