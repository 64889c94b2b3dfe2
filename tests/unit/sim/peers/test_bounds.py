"""Whatever the pipelines answer (NaN, infinities, negatives, nothing), every peer answers a count
within its bounds and never raises."""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim.peers import HPA, KEDA, Knative, Oracle
from spillway.sim.policy import Foresight, Policy
from tests.unit.sim.peers.fakes import FakeObservatory, pods

ODD = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e308, 5e-324])
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), ODD)
READINGS = st.one_of(st.none(), VALUES)
COUNTS = st.integers(-5, 10**6)

READING = st.builds(
    FakeObservatory,
    ready=COUNTS,
    queue=READINGS,
    resources=st.builds(lambda usage, unready, missing: pods(*usage, unready=unready, missing=missing),
                        st.lists(VALUES, max_size=6), COUNTS, COUNTS),
    averages=st.dictionaries(st.sampled_from([1.0, 6.0, 60.0, 120.0]), READINGS, max_size=4),
    concurrency=READINGS,
)
RATES = [math.nan, math.inf, -1.0, 0.0, 1e308, 50.0]

PEERS: dict[str, Callable[[int, int], Policy]] = {
    "HPA": lambda low, high: HPA(low, high),
    "HPA with behavior": lambda low, high: HPA(low, high, with_behavior=True),
    "KEDA": lambda low, high: KEDA(low, high),
    "KEDA cached, from zero": lambda low, high: KEDA(low - 1, high, use_cached_metrics=True),
    "Knative": lambda low, high: Knative(low, high, container_concurrency=4),
    "Oracle": lambda low, high: Oracle(
        Foresight(rate=lambda t: RATES[int(abs(t)) % len(RATES)] if math.isfinite(t) else math.nan,
                  mean_service_seconds=0.1, concurrency=2, startup_seconds=20.0),
        objective_seconds=0.5, quantile=0.95, min_replicas=low, max_replicas=high),
}


@settings(max_examples=300, deadline=None)
@given(peer=st.sampled_from(sorted(PEERS)), low=st.integers(1, 5), span=st.integers(0, 30),
       readings=st.lists(READING, min_size=1, max_size=12), odd_time=st.sampled_from([None, math.nan, 1e300]))
def test_every_peer_answers_within_its_bounds(peer: str, low: int, span: int, readings: list[FakeObservatory],
                                              odd_time: float | None) -> None:
    policy = PEERS[peer](low, low + span)
    lowest = low - 1 if peer == "KEDA cached, from zero" else low
    current = low
    for step, reading in enumerate(readings):
        reading.now = step * policy.tick_seconds
        if odd_time is not None and step == len(readings) - 1:
            reading.now = odd_time
        current = policy.decide(reading, current)
        assert isinstance(current, int) and lowest <= current <= low + span
