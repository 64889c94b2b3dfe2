from __future__ import annotations

from typing import Any


from spillway.api import parse_spec
from spillway.resources.capabilities import Verdict, verdicts
from spillway.resources.meta import Owner
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="u")


def _by_type(**overrides: Any) -> dict[str, Verdict]:
    return {v.type: v for v in verdicts(OWNER, parse_spec(minimal_spec(**overrides)))}


def test_parts_not_asked_for_have_no_condition() -> None:
    found = _by_type()
    assert "SessionStoreReady" not in found, "the session store's condition is spillway.sessions'"
    assert found["HeadroomReady"].status is None


def test_headroom_asked_for_is_reported_not_available() -> None:
    verdict = _by_type(headroom={"replicas": 2})["HeadroomReady"]
    assert (verdict.status, verdict.reason) == (False, "HeadroomNotAvailable")
    assert verdict.message.startswith("headroom.replicas 2: placeholder pods are not created")
