"""What Spillway builds for the session-store and headroom parts of a spec, said as conditions a
person reads.

The schema already holds capabilities that later versions build (the provisioned or external
session store, headroom pods). A resource asking for
one is accepted, and is never silently half-served: each part gets a condition that says what
is honoured, what is not, and where traffic goes instead. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing.base import NOT_HONOURED as BALANCING_NOT_HONOURED
from spillway.resources.meta import Owner

# Reasons a person must act on (posted as Warning events).
NOT_HONOURED = {"HeadroomNotAvailable", *BALANCING_NOT_HONOURED,
                # the session store's reasons that need a person (sessionstore.state)
                "SecretNotFound", "SecretKeyNotFound", "InvalidURL", "InvalidSettings", "NoQuorum"}


@dataclass(frozen=True)
class Verdict:
    """One condition: `status` None means the condition does not apply and is removed."""

    type: str
    status: bool | None
    reason: str = ""
    message: str = ""


def verdicts(owner: Owner, spec: ScalableServiceSpec) -> list[Verdict]:
    """The headroom condition; `BalancerReady` is the balancing provider's
    (`spillway.resources.balancing`), `SessionStoreReady` the session store's (`spillway.sessions`)."""
    return [_headroom(spec)]


def _headroom(spec: ScalableServiceSpec) -> Verdict:
    if spec.headroom.replicas == 0:
        return Verdict("HeadroomReady", None)
    return Verdict("HeadroomReady", False, "HeadroomNotAvailable", (
        f"headroom.replicas {spec.headroom.replicas}: placeholder pods are not created by this version of "
        "Spillway; scale-out waits for room as usual."))
