"""Turning a pydantic validation failure into one message that names the field. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from spillway.api.spec import ScalableServiceSpec


class SpecError(ValueError):
    """A spec Spillway cannot honour; `str()` names every offending field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{_path(tuple(item['loc']))}: {message}")
    return problems


def parse_spec(spec: Mapping[str, Any]) -> ScalableServiceSpec:
    """The spec as a model, or SpecError naming every field at fault."""
    try:
        return ScalableServiceSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise SpecError(describe(err)) from None
