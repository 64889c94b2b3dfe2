"""The HPA baseline against horizontal.go and replica_calculator.go: the utilization ratio, the
tolerance, missing and unready pods, the stabilization window and the scale-up limits."""

from __future__ import annotations

import pytest

from spillway.scaling.behavior import Tolerances
from spillway.sim.peers.hpa import HPA, pods_metric_replicas, resource_replicas, tuned_grid
from spillway.sim.policy import PodsMetric
from tests.unit.sim.peers.fakes import FakeObservatory, pods

WITHIN = Tolerances(0.1, 0.1)


def _run(hpa: HPA, observatory: FakeObservatory, current: int, until: float) -> list[tuple[float, int]]:
    """Sync every tick from the observatory's time to `until`, applying each answer."""
    counts = []
    while observatory.now <= until:
        current = hpa.decide(observatory, current)
        counts.append((observatory.now, current))
        observatory.now += hpa.tick_seconds
    return counts


def test_scale_up_follows_the_utilization_ratio() -> None:
    # 100 % used against an 80 % target: ratio 1.25, ceil(1.25 × 4 ready pods) = 5.
    assert HPA(1, 20).decide(FakeObservatory(resources=pods(1.0, 1.0, 1.0, 1.0)), 4) == 5


def test_a_request_below_peak_usage_lets_utilization_pass_100_percent() -> None:
    """Every worker busy: against a request of the whole peak usage that is 100 %, a ratio of 1.25
    at an 80 % target; against a request of half of it, 200 %, a ratio of 2.5."""
    saturated = pods(1.0, 1.0, 1.0, 1.0)
    assert HPA(1, 40).decide(FakeObservatory(resources=saturated), 4) == 5
    half = HPA(1, 40, request_share=0.5)
    assert half.decide(FakeObservatory(resources=saturated), 4) == 8  # ceil(2.5 × 4) = 10, at most 2 × 4
    assert half.name == "HPA(request=0.5)"
    assert HPA(1, 40, request_share=0.5).decide(FakeObservatory(resources=pods(0.45, 0.45)), 2) == 3  # 90 %: ceil(2.25)
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match="request_share"):
            HPA(1, 40, request_share=bad)


def test_a_ratio_within_tolerance_holds_the_count() -> None:
    hpa = HPA(1, 20)
    assert hpa.decide(FakeObservatory(resources=pods(*[0.88] * 10)), 10) == 10  # 88/80 = 1.1: within
    assert hpa.decide(FakeObservatory(now=15, resources=pods(*[0.89] * 10)), 10) == 12  # 1.1125: ceil(11.1)


def test_utilization_is_a_truncated_whole_percent() -> None:
    # 88.9 % reads 88 %, exactly the tolerance's edge.
    assert resource_replicas(10, pods(*[0.889] * 10), 80, WITHIN) == 10


@pytest.mark.parametrize("with_behavior", [False, True])
def test_scale_down_waits_for_the_300s_window(with_behavior: bool) -> None:
    observatory = FakeObservatory(resources=pods(*[0.4] * 10))  # ratio 0.5: 5 would do
    counts = dict(_run(HPA(1, 20, with_behavior=with_behavior), observatory, 10, until=300))
    assert all(counts[t] == 10 for t in range(0, 286, 15))  # the initial recommendation, 10 at 0 s, counts
    assert counts[300] == 5  # ... until it is 300 s old


@pytest.mark.parametrize(("current", "allowed"), [(1, 4), (3, 6), (10, 20)])
def test_without_behavior_scale_up_is_at_most_twice_or_four(current: int, allowed: int) -> None:
    hot = FakeObservatory(resources=pods(*[10.0] * current))  # 1000 %: far more than allowed
    assert HPA(1, 100).decide(hot, current) == allowed


def test_with_behavior_scale_up_is_4_pods_or_100_percent_per_15s() -> None:
    hot = FakeObservatory(resources=pods(*[10.0] * 10))
    assert HPA(1, 100, with_behavior=True).decide(FakeObservatory(resources=pods(10.0)), 1) == 5  # 1 + 4
    counts = dict(_run(HPA(1, 100, with_behavior=True, sync_seconds=5), hot, 10, until=15))
    # 10 → 20 at 0 s; the +10 counts against the period until it is 15 s old.
    assert counts == {0: 20, 5: 20, 10: 20, 15: 40}


def test_max_holds_whatever_the_ratio() -> None:
    assert HPA(1, 6).decide(FakeObservatory(resources=pods(*[10.0] * 4)), 4) == 6


def test_unready_pods_count_as_zero_on_scale_up() -> None:
    # 2 ready pods at 100 % say 1.25; with 2 unready pods at 0 the ratio is 0.625: the direction
    # flips, so the count holds (ignoring them would have proposed ceil(1.25 × 2) = 3).
    assert resource_replicas(4, pods(1.0, 1.0, unready=2), 80, WITHIN) == 4
    # 3 ready at 200 % and 1 unready: 150 % over 4 pods, ceil(1.875 × 4) = 8.
    assert resource_replicas(4, pods(2.0, 2.0, 2.0, unready=1), 80, WITHIN) == 8


def test_unready_pods_are_ignored_on_scale_down() -> None:
    assert resource_replicas(4, pods(0.2, 0.2, unready=2), 80, WITHIN) == 1  # ceil(0.25 × 2)


def test_missing_pods_count_at_their_full_request_on_scale_down() -> None:
    # 4 pods at 40 % and 2 without a value, taken at max(100 %, target) of their request:
    # 60 % over 6 pods, ceil(0.75 × 6) = 5 (at the 80 % target they would give 4; ignored, 2).
    assert resource_replicas(6, pods(0.4, 0.4, 0.4, 0.4, missing=2), 80, WITHIN) == 5


def test_missing_pods_count_as_zero_on_scale_up() -> None:
    assert resource_replicas(4, pods(2.0, 2.0, 2.0, missing=1), 80, WITHIN) == 8  # 150 % over 4 pods
    assert resource_replicas(4, pods(1.2, 1.2, missing=2), 80, WITHIN) == 4  # 60 %: would flip, holds


def test_no_ready_pod_with_a_value_leaves_the_count_alone() -> None:
    assert resource_replicas(3, pods(unready=3), 80, WITHIN) is None
    assert HPA(1, 10).decide(FakeObservatory(resources=pods(unready=3)), 3) == 3


def test_a_count_outside_the_bounds_is_brought_back_first() -> None:
    assert HPA(2, 5).decide(FakeObservatory(resources=pods(*[0.1] * 9)), 9) == 5
    assert HPA(2, 5).decide(FakeObservatory(resources=pods(10.0)), 1) == 2


def test_names_and_grid() -> None:
    assert HPA(1, 10).name == "HPA"
    assert HPA(1, 10, target=0.6).name == "HPA(target=0.6)"
    grid = tuned_grid()
    assert grid[0] == {} and 4 <= len(grid) <= 9
    assert len({HPA(1, 10, **knobs).name for knobs in grid}) == len(grid)


def test_a_pods_metric_scales_by_the_mean_per_pod_over_its_target() -> None:
    """calcPlainMetricReplicas: 6 in flight per pod against 3 is a ratio of 2."""
    assert pods_metric_replicas(4, PodsMetric((6.0, 6.0, 6.0, 6.0), 0, 0), 3000, WITHIN) == 8
    assert pods_metric_replicas(4, PodsMetric((3.2, 3.2, 3.2, 3.2), 0, 0), 3000, WITHIN) == 4  # 1.067: within
    assert pods_metric_replicas(4, PodsMetric((), 1, 2), 3000, WITHIN) is None  # no pod with a value


def test_a_pods_metric_counts_missing_pods_at_the_target_down_and_pending_ones_at_zero_up() -> None:
    # Down: [1, 1] and two missing at 3 each: mean 2 of 3, ceil(0.667 × 4) = 3.
    assert pods_metric_replicas(4, PodsMetric((1.0, 1.0), 0, 2), 3000, WITHIN) == 3
    # Up with two Pending pods at 0: [6, 6, 0, 0] has a mean of 3, on target: hold.
    assert pods_metric_replicas(4, PodsMetric((6.0, 6.0), 2, 0), 3000, WITHIN) == 4
    # Up with one Pending: [6, 6, 0] has a mean of 4, 1.333: ceil(4) = 4 pods, not fewer than now.
    assert pods_metric_replicas(3, PodsMetric((6.0, 6.0), 1, 0), 3000, WITHIN) == 4


def test_the_hpa_on_in_flight_per_pod() -> None:
    hpa = HPA(1, 40, in_flight_per_pod=3.0)
    assert hpa.name == "HPA(inflight=3)"
    assert hpa.decide(FakeObservatory(in_flight=PodsMetric((6.0, 6.0, 6.0, 6.0), 0, 0)), 4) == 8
    with pytest.raises(ValueError, match="in_flight_per_pod"):
        HPA(1, 40, in_flight_per_pod=0.0)
