"""The KEDA baseline against prometheus_scaler.go, the HPA's external-metric calculation and the
scale loop: empty answers, ceil(total / threshold), the metrics cache and scaling to zero."""

from __future__ import annotations

import math

import pytest

from spillway.scaling.behavior import Tolerances
from spillway.sim.peers.hpa import external_per_pod_replicas
from spillway.scaling.proposals import Signals
from spillway.sim.peers.keda import KEDA, Trigger, milli, tuned_grid
from tests.unit.sim.peers.fakes import FakeObservatory


def _run(keda: KEDA, observatory: FakeObservatory, current: int, until: float,
         queue: dict[float, float | None] | None = None) -> dict[float, int]:
    counts = {}
    while observatory.now <= until:
        if queue and observatory.now in queue:
            observatory.queue = queue[observatory.now]
        current = keda.decide(observatory, current)
        counts[observatory.now] = current
        observatory.now += keda.tick_seconds
    return counts


def test_replicas_are_ceil_of_total_over_threshold() -> None:
    assert external_per_pod_replicas(3, milli(95.0), milli(10.0), Tolerances(0.1, 0.1)) == 10
    assert KEDA(1, 20).decide(FakeObservatory(queue=45.0), 4) == 5  # 45 / 40 = 1.125: ceil(4.5)


def test_a_total_within_tolerance_holds() -> None:
    assert KEDA(1, 20).decide(FakeObservatory(queue=42.0), 4) == 4  # 42 / 40 = 1.05


@pytest.mark.parametrize("empty", [None, math.nan, math.inf])
def test_an_empty_answer_reads_zero_with_ignore_null_values(empty: float | None) -> None:
    counts = _run(KEDA(1, 20), FakeObservatory(queue=empty), 5, until=300)
    assert counts[285] == 5 and counts[300] == 1  # 0 waiting: min, once the 300 s window lets go


def test_without_ignore_null_values_an_empty_answer_is_an_error_and_holds() -> None:
    counts = _run(KEDA(1, 20, ignore_null_values=False), FakeObservatory(queue=None), 5, until=600)
    assert set(counts.values()) == {5}


def test_the_hpa_reads_the_scaler_afresh_at_every_sync() -> None:
    counts = _run(KEDA(1, 20), FakeObservatory(queue=0.0), 1, until=15, queue={15.0: 100.0})
    assert counts[15] == 4  # ceil(100 / 10) = 10, at most max(2 × 1, 4) = 4


def test_with_cached_metrics_the_hpa_reads_the_last_poll() -> None:
    counts = _run(KEDA(1, 20, use_cached_metrics=True), FakeObservatory(queue=0.0), 1, until=30,
                  queue={15.0: 100.0})
    assert counts[15] == 1 and counts[30] == 4  # polled at 0 s and 30 s, every pollingInterval


def test_scale_to_zero_after_the_cooldown_and_back_when_active() -> None:
    keda = KEDA(0, 10)
    assert keda.tick_seconds == 15
    counts = _run(keda, FakeObservatory(queue=0.0), 1, until=420, queue={30.0: 5.0, 60.0: 0.0})
    assert counts[0] == 0  # never active: no cooldown to wait for
    assert counts[30] == 1  # active at 0 replicas: max(minReplicaCount, 1)
    assert counts[330] == 1  # last active at 30 s: not yet more than 300 s ago
    assert counts[360] == 0


def test_min_replica_count_above_zero_never_reaches_zero() -> None:
    counts = _run(KEDA(2, 10), FakeObservatory(queue=0.0), 2, until=900)
    assert min(counts.values()) == 2


def test_ticks_follow_the_common_period_of_both_loops() -> None:
    assert KEDA(1, 10, polling_interval_seconds=10).tick_seconds == 5


def test_names_and_grid() -> None:
    assert KEDA(1, 10).name == "KEDA"
    assert KEDA(1, 10, threshold=5, use_cached_metrics=True).name == "KEDA(threshold=5, cached=true)"
    grid = tuned_grid()
    assert grid[0] == {} and 4 <= len(grid) <= 9
    assert len({KEDA(1, 10, **knobs).name for knobs in grid}) == len(grid)


def test_a_negative_value_reads_as_an_overflow_and_asks_for_max() -> None:
    # kubernetes' GetExternalPerPodMetricReplicas takes a negative sum for an int64 overflow.
    assert KEDA(1, 20).decide(FakeObservatory(queue=-1.0), 4) == 8  # max(2 × 4, 4) on the way to 20


def _signals(rate: float | None, inflight: float | None) -> Signals:
    return Signals(arrival_rate=rate, in_flight=inflight)


def test_several_triggers_take_the_largest_proposal() -> None:
    """Rate 300 at 30 a replica asks 10, in flight 24 at 6 asks 4, the queue 0 asks 0: 10 wins."""
    keda = KEDA(1, 40, triggers=(Trigger("rate", 30.0), Trigger("inflight", 6.0), Trigger("queue", 10.0)))
    assert keda.name == "KEDA(triggers=rate:30+inflight:6+queue:10)"
    observatory = FakeObservatory(queue=0.0, signals=_signals(300.0, 24.0))
    assert keda.decide(observatory, 8) == 10
    calm = FakeObservatory(now=300.0, queue=0.0, signals=_signals(30.0, 60.0))  # in flight now leads: 10
    assert KEDA(1, 40, triggers=keda.triggers).decide(calm, 8) == 10


def test_a_failing_trigger_blocks_a_scale_down_but_not_a_scale_up() -> None:
    """Without ignoreNullValues an empty rate is an error: the HPA still scales up on the others,
    never down."""
    triggers = (Trigger("rate", 30.0), Trigger("inflight", 6.0))
    up = FakeObservatory(signals=_signals(None, 120.0))  # in flight asks 20
    assert KEDA(1, 40, triggers=triggers, ignore_null_values=False).decide(up, 8) == 16  # at most twice
    down = FakeObservatory(signals=_signals(None, 6.0))  # in flight asks 1
    assert KEDA(1, 40, triggers=triggers, ignore_null_values=False).decide(down, 8) == 8
    both = FakeObservatory(signals=_signals(None, None))
    assert KEDA(1, 40, triggers=triggers, ignore_null_values=False).decide(both, 8) == 8
    # Past the 5 min stabilization window: with the error the count still holds; with
    # ignoreNullValues (the default) the empty rate reads 0 and the count comes down to 1.
    for keda, settled in ((KEDA(1, 40, triggers=triggers, ignore_null_values=False), 8),
                          (KEDA(1, 40, triggers=triggers), 1)):
        current, down.now = 8, 0.0
        while down.now <= 330.0:
            current = keda.decide(down, current)
            down.now += keda.tick_seconds
        assert current == settled, keda.name


def test_a_trigger_reads_only_what_it_names() -> None:
    with pytest.raises(ValueError, match="queue, rate or inflight"):
        Trigger("cpu", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one trigger"):
        KEDA(1, 10, triggers=())
    with pytest.raises(ValueError, match="thresholds of at least 0.001"):
        KEDA(1, 10, triggers=(Trigger("rate", 0.0),))
