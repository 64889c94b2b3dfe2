"""Does a live object already say everything the desired one says? Pure: no I/O.

Children are compared semantically and written only when they differ, so a reconcile of an
unchanged resource performs no write. The live object carries more than Spillway set
(defaults, other managers' fields, status); only what the desired object states is compared.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SERVER_OWNED_METADATA = {"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}


def covers(live: Any, desired: Any) -> bool:
    """True when every field set in `desired` has the same value in `live`."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(
            key in live and covers(live[key], value)
            for key, value in desired.items()
            if key not in _SERVER_OWNED_METADATA
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
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
