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
NOT_HONOURED = {"SessionStoreNotAvailable", "HeadroomNotAvailable", *BALANCING_NOT_HONOURED}


@dataclass(frozen=True)
class Verdict:
    """One condition: `status` None means the condition does not apply and is removed."""

    type: str
    status: bool | None
    reason: str = ""
    message: str = ""


def verdicts(owner: Owner, spec: ScalableServiceSpec) -> list[Verdict]:
    """The session-store and headroom conditions; `BalancerReady` is the balancing provider's
    (`spillway.resources.balancing`)."""
    return [_session_store(spec), _headroom(spec)]


def _session_store(spec: ScalableServiceSpec) -> Verdict:
    store = spec.session_store
    if store.type == "None":
        return Verdict("SessionStoreReady", None)
    return Verdict("SessionStoreReady", False, "SessionStoreNotAvailable", (
        f"sessionStore.type {store.type} is not provided by this version of Spillway; the app receives no "
        f"{store.env} and keeps sessions on each replica."))


def _headroom(spec: ScalableServiceSpec) -> Verdict:
    if spec.headroom.replicas == 0:
        return Verdict("HeadroomReady", None)
    return Verdict("HeadroomReady", False, "HeadroomNotAvailable", (
        f"headroom.replicas {spec.headroom.replicas}: placeholder pods are not created by this version of "
        "Spillway; scale-out waits for room as usual."))
