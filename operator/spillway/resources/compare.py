"""Does a live object already say everything the desired one says? Pure: no I/O.

Children are compared semantically and written only when they differ, so a reconcile of an
unchanged resource performs no write. The live object carries more than Spillway set
(defaults, other managers' fields, status); only what the desired object states is compared,
and in the form the API server stores it: quantities are normalised (`cpu: 1` is stored as
`"1"`, `0.5` as `"500m"`, `1024Mi` as `"1Gi"`) and empty lists, maps and nulls are dropped, so a
template written either way is never re-applied every interval.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SERVER_OWNED_METADATA = {"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}
# Maps whose values are resource quantities (container resources, pod overhead, volume sizes).
_QUANTITY_MAPS = {"requests", "limits", "overhead", "capacity"}
_QUANTITY_FIELDS = {"sizeLimit", "storage"}
# https://github.com/kubernetes/apimachinery/blob/master/pkg/api/resource/quantity.go (suffixes)
_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10**3),
    "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
    "Ei": Decimal(2**60)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity as a number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        return None
    number, suffix = match.groups()
    if suffix and "e" in number.lower():
        return None
    try:
        return Decimal(number) * _SUFFIXES[suffix]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def covers(live: Any, desired: Any, key: str = "", parent: str = "") -> bool:
    """True when every field set in `desired` has the same value in `live`."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return _empty(desired) and live is None
        return all(
            covers(live[name], value, name, key) if name in live else _empty(value)
            for name, value in desired.items()
            if name not in _SERVER_OWNED_METADATA
        )
    if isinstance(desired, list):
        if live is None:
            return desired == []
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b, key, parent) for a, b in zip(live, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    if parent in _QUANTITY_MAPS or key in _QUANTITY_FIELDS:
        wanted, found = quantity(desired), quantity(live)
        if wanted is not None and found is not None:
            return wanted == found
    if isinstance(desired, (int, float)) and isinstance(live, (int, float)):
        return float(live) == float(desired)
    return bool(live == desired)


FINGERPRINT = "spillway.io/fingerprint"


def fingerprinted(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with an annotation that changes whenever anything Spillway sets changes.

    `covers` alone misses a field that Spillway stops setting (the live object still has it);
    the fingerprint differs then, so the object is applied and server-side apply removes it.
    """
    # The replica count is left out: the scaling loop moves it through the scale subresource,
    # and a count is never "stopped being set", which is all the fingerprint is for.
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "replicas"}
    hashed = {**obj, "spec": spec}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    meta = dict(obj["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), FINGERPRINT: digest[:16]}
    return {**obj, "metadata": meta}
