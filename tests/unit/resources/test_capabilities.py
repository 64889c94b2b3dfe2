from __future__ import annotations

from typing import Any

import pytest

from spillway.api import parse_spec
from spillway.resources.capabilities import Verdict, verdicts
from spillway.resources.meta import Owner
from tests.unit.conftest import minimal_spec

OWNER = Owner(name="checkout", namespace="shop", uid="u")


def _by_type(**overrides: Any) -> dict[str, Verdict]:
    return {v.type: v for v in verdicts(OWNER, parse_spec(minimal_spec(**overrides)))}


@pytest.mark.parametrize(("store", "message"), [
    ({"type": "Redis"}, "sessionStore.type Redis is not provided by this version of Spillway; the app receives no "
                        "SESSION_STORE_URL and keeps sessions on each replica."),
    ({"type": "External", "external": {"urlSecretRef": {"name": "s", "key": "url"}}, "env": "SESSIONS"},
     "sessionStore.type External is not provided by this version of Spillway; the app receives no SESSIONS and "
     "keeps sessions on each replica."),
])
def test_asked_for_session_store_is_reported_not_available(store: dict[str, Any], message: str) -> None:
    verdict = _by_type(sessionStore=store)["SessionStoreReady"]
    assert (verdict.status, verdict.reason, verdict.message) == (False, "SessionStoreNotAvailable", message)


def test_parts_not_asked_for_have_no_condition() -> None:
    found = _by_type()
    assert found["SessionStoreReady"].status is None
    assert found["HeadroomReady"].status is None


def test_headroom_asked_for_is_reported_not_available() -> None:
    verdict = _by_type(headroom={"replicas": 2})["HeadroomReady"]
    assert (verdict.status, verdict.reason) == (False, "HeadroomNotAvailable")
    assert verdict.message.startswith("headroom.replicas 2: placeholder pods are not created")
