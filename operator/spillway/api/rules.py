"""Cross-field rules, written once and enforced twice.

Each `Rule` carries the CEL expression the API server evaluates (it lands in the CRD as an
`x-kubernetes-validations` entry) and the same check in Python, which the models run on
every parse, with one shared message. The API server refuses a bad resource before Spillway
sees it; the operator refuses the same resource with the same words when the CRD is older
than the operator or a resource was stored before a rule existed. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class Rule:
    cel: str
    message: str
    holds: Callable[[Any], bool]
    field_path: str | None = None

    def to_validation(self) -> dict[str, str]:
        validation = {"rule": self.cel, "message": self.message}
        if self.field_path:
            validation["fieldPath"] = self.field_path
        return validation


class SpecModel(BaseModel):
    """Base of every model in the resource: camelCase on the wire, frozen, strict on names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        validate_default=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Any:
        for rule in type(self).rules:
            if not rule.holds(self):
                raise ValueError(rule.message)
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        if cls.rules:
            schema["x-kubernetes-validations"] = [r.to_validation() for r in cls.rules]
        return schema
