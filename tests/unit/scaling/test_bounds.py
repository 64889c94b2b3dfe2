"""The count between decisions: always within bounds, whatever status holds."""

from __future__ import annotations

from typing import Any

import pytest

from spillway.scaling.bounds import standing_replicas
from tests.unit.scaling.cases import spec

PROM = {"prometheus": {"url": "http://prom:9090"}}


@pytest.mark.parametrize(("scaling", "decided", "live", "expected"), [
    pytest.param({}, 7, 9, 2, id="without-prometheus-exactly-min"),
    pytest.param(PROM, 7, 9, 7, id="the-last-decision"),
    pytest.param(PROM, None, 9, 9, id="else-what-runs"),
    pytest.param(PROM, None, None, 2, id="else-min"),
    pytest.param(PROM, 70, None, 40, id="a-decision-above-max-comes-down-to-max"),
    pytest.param({**PROM, "paused": True}, 7, 9, 9, id="paused-keeps-what-runs"),
    pytest.param(PROM, "7", 9, 9, id="a-decision-that-is-a-string-is-absent"),
    pytest.param(PROM, True, None, 2, id="a-decision-that-is-a-bool-is-absent"),
    pytest.param(PROM, -3, 5, 5, id="a-negative-decision-is-absent"),
    pytest.param(PROM, 7.5, 5, 5, id="a-fractional-decision-is-absent"),
])
def test_standing_replicas_stay_within_bounds_whatever_status_holds(scaling: dict[str, Any], decided: object,
                                                                     live: object, expected: int) -> None:
    s = spec(scaling=scaling)
    assert standing_replicas(s.replicas, s.scaling, decided, live) == expected
