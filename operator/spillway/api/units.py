"""Kubernetes-style units in the resource: durations (`15s`, `5m`, `250ms`, `1h30m`) and
quantities (`256Mi`, `1Gi`, `500M`).

Durations use Go's `time.ParseDuration` syntax restricted to ms, s, m and h, so that the CRD's
CEL rules can read the same strings with `duration()`. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}

# https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)
_QUANTITY_FACTORS = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def parse_duration(text: str) -> timedelta:
    """`1h30m` -> timedelta(hours=1, minutes=30). Raises ValueError with the accepted form."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit of ms, s, m or h, "
            "such as 250ms, 15s, 5m or 1h30m"
        )
    seconds = sum(Decimal(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=float(seconds))


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 15s, 5m, 250ms, 1h30m, 1.5s."""
    micros = round(value.total_seconds() * 1_000_000)
    if micros == 0:
        return "0s"
    if micros % 1000 == 0 and micros < 1_000_000:
        return f"{micros // 1000}ms"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        seconds = Decimal(rest) / Decimal(1_000_000)
        parts.append(f"{seconds.normalize():f}s")
    return "".join(parts)


def parse_quantity(text: str) -> int:
    """`256Mi` -> 268435456. Whole units only (bytes, replicas): a fraction is rounded up."""
    if not isinstance(text, str) or not _QUANTITY.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a quantity: use a number with an optional suffix such as "
            "256Mi, 1Gi or 500M"
        )
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match is not None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as err:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{text!r} is not a quantity") from err
    exact = number * _QUANTITY_FACTORS[match.group(2)]
    return int(exact.to_integral_value(rounding="ROUND_CEILING"))


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


def _check_quantity(value: Any) -> Any:
    if isinstance(value, str):
        parse_quantity(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32}),
]
"""A duration written as in Kubernetes and Go: 250ms, 15s, 5m, 1h30m."""

Quantity = Annotated[
    str,
    BeforeValidator(_check_quantity),
    WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN, "maxLength": 32}),
]
"""A size written as in Kubernetes: 256Mi, 1Gi, 500M."""
