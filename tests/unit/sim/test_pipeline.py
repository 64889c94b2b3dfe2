"""The simulated metrics pipelines: Prometheus' rate and staleness, HAProxy's 1024-request mean,
metrics-server's utilization and Knative's concurrency, each as its real counterpart reports."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim.model import RECENT_SAMPLES, Nodes, Service, Simulation
from spillway.sim.pipeline import Pipelines, Sample, extrapolated_rate
from spillway.sim.policy import PodsMetric


def test_rate_of_a_steady_counter_is_its_slope_extrapolated_to_the_window() -> None:
    # 10 req/s scraped every 15 s at offset 7.5: four samples span 45 s of the 60 s window.
    samples = [Sample(t, 10 * t) for t in (7.5, 22.5, 37.5, 52.5)]
    assert extrapolated_rate(samples, now=60.0, window=60.0) == pytest.approx(10.0)


def test_rate_is_not_extrapolated_past_where_a_counter_would_be_zero() -> None:
    # A counter born at 40 s (value 0 there): the start is extrapolated only to its zero.
    samples = [Sample(45.0, 50.0), Sample(55.0, 150.0)]
    assert extrapolated_rate(samples, now=60.0, window=60.0) == pytest.approx((150 + 50) / 60)


def test_rate_needs_two_samples() -> None:
    assert extrapolated_rate([Sample(1.0, 5.0)], now=60.0, window=60.0) is None


@settings(max_examples=100, deadline=None)
@given(slope=st.floats(0.0, 1e6), phase=st.floats(0.0, 14.9))
def test_rate_of_a_linear_counter_is_its_slope(slope: float, phase: float) -> None:
    samples = [Sample(t, slope * t) for t in (phase + 15 * k for k in range(4)) if t <= 60]
    rate = extrapolated_rate(samples, now=60.0, window=60.0)
    assert rate is not None and rate == pytest.approx(slope, rel=1e-9, abs=1e-9)


def _steady(rate: float, seconds: int, *, miss_share: float = 0.0, service_seconds: float = 0.05,
            replicas: int = 2) -> tuple[Simulation, Pipelines]:
    service = Service(concurrency=4, queue_limit=100, timeout=10.0, service_time=lambda _: service_seconds)
    simulation = Simulation(service, replicas)
    pipelines = Pipelines(concurrency=4, scrape_interval=15.0, miss_share=miss_share, seed=3)
    for second in range(seconds):
        simulation.arrive_at([second + (k + 0.5) / rate for k in range(int(rate))])
        simulation.run_until(second + 1.0)
        pipelines.collect(simulation)
    return simulation, pipelines


def test_the_haproxy_preset_reads_rate_sessions_queue_and_the_mean_total_time() -> None:
    simulation, pipelines = _steady(rate=40, seconds=90)
    signals = pipelines.spillway_signals()
    assert signals.missing == frozenset()
    assert signals.arrival_rate == pytest.approx(40, rel=0.02)
    assert signals.queue_depth == 0
    assert signals.latency_kind == "mean" and signals.latency_seconds == pytest.approx(0.05)
    assert signals.in_flight is not None and signals.in_flight <= 2


def test_the_mean_total_time_is_read_only_once_1024_requests_were_served() -> None:
    _, pipelines = _steady(rate=10, seconds=60)  # 600 requests
    signals = pipelines.spillway_signals()
    assert signals.arrival_rate is not None and signals.latency_seconds is None and "latency" in signals.missing
    assert 600 < RECENT_SAMPLES


def test_the_frozen_mean_of_an_idle_balancer_is_not_read() -> None:
    simulation, pipelines = _steady(rate=40, seconds=60)
    for second in range(60, 150):  # no traffic for 90 s: the counter stops moving
        simulation.run_until(second + 1.0)
        pipelines.collect(simulation)
    signals = pipelines.spillway_signals()
    assert simulation.recent_mean_seconds() is not None  # HAProxy still exports the old mean
    assert signals.latency_seconds is None and signals.arrival_rate == 0


def test_a_failed_scrape_empties_instant_queries_until_the_next_good_one() -> None:
    service = Service(concurrency=4, queue_limit=10, timeout=10.0, service_time=lambda _: 0.01)
    simulation = Simulation(service, 1)
    pipelines = Pipelines(concurrency=4, scrape_interval=15.0, miss_share=0.0, seed=1)
    simulation.run_until(8.0)
    pipelines.collect(simulation)  # the scrape at 7.5 s
    assert pipelines.prometheus_queue() == 0
    pipelines.miss_share = 0.999999
    simulation.run_until(23.0)
    pipelines.collect(simulation)  # the scrape at 22.5 s fails
    signals = pipelines.spillway_signals()
    assert pipelines.prometheus_queue() is None
    assert {"queue_depth", "in_flight", "arrival_rate"} <= signals.missing


def test_the_first_scrape_falls_where_the_run_put_it_and_nowhere_outside_the_interval() -> None:
    service = Service(concurrency=4, queue_limit=10, timeout=10.0, service_time=lambda _: 0.01)
    simulation = Simulation(service, 1)
    pipelines = Pipelines(concurrency=4, scrape_interval=15.0, first_scrape=3.0)
    seen = []
    for second in range(1, 20):
        simulation.run_until(float(second))
        pipelines.collect(simulation)
        seen.append(pipelines.prometheus_queue() is not None)
    assert seen.index(True) == 2  # the collect at 3 s
    for bad in ({"first_scrape": -1.0}, {"first_scrape": 16.0}, {"first_resolution": 15.5}):
        with pytest.raises(ValueError, match="first interval"):
            Pipelines(concurrency=4, scrape_interval=15.0, **bad)  # type: ignore[arg-type]


def test_the_pods_metric_is_each_ready_pods_in_flight_at_the_last_scrape() -> None:
    """Two replicas each hold one long request; a third added after the scrape has no sample
    yet; a failed scrape leaves every pod without one."""
    service = Service(concurrency=4, queue_limit=10, timeout=100.0, service_time=lambda _: 50.0, startup=0.0)
    simulation = Simulation(service, 2, "RoundRobin")
    simulation.arrive_at([0.1, 0.2])
    pipelines = Pipelines(concurrency=4, scrape_interval=15.0, first_scrape=1.0)
    simulation.run_until(1.0)
    pipelines.collect(simulation)
    assert pipelines.pods_metric() == PodsMetric((1.0, 1.0), 0, 0)
    simulation.scale_to(3)
    simulation.run_until(2.0)
    pipelines.collect(simulation)
    assert pipelines.pods_metric() == PodsMetric((1.0, 1.0), 0, 1)
    pipelines.miss_share = 0.999999
    simulation.run_until(16.0)
    pipelines.collect(simulation)  # the scrape at 16 s fails
    assert pipelines.pods_metric() == PodsMetric((), 0, 3)


def test_metrics_server_reports_busy_share_over_its_resolution_and_nothing_for_a_new_pod() -> None:
    service = Service(concurrency=2, queue_limit=100, timeout=100.0, service_time=lambda _: 1.0)
    simulation = Simulation(service, 1)
    pipelines = Pipelines(concurrency=2, resolution=15.0)
    for second in range(31):
        simulation.arrive_at([second + 0.0])  # one request a second of 1 s: one worker of two busy
        simulation.run_until(float(second))
        pipelines.collect(simulation)
    metrics = pipelines.resource_metrics()
    assert [round(p.utilization, 3) for p in metrics.usage] == [0.5]
    simulation.scale_to(2)  # start-up 0: ready at once, but no resolution has passed for it
    simulation.run_until(45.0)
    pipelines.collect(simulation)
    assert pipelines.resource_metrics().missing == 1


def test_knative_concurrency_is_the_mean_of_per_second_totals_in_the_window() -> None:
    service = Service(concurrency=1, queue_limit=100, timeout=100.0, service_time=lambda _: 0.5)
    simulation = Simulation(service, 2)
    pipelines = Pipelines(concurrency=1)
    for second in range(10):
        simulation.arrive_at([second + 0.0, second + 0.0])  # each replica busy half of each second
        simulation.run_until(second + 1.0)
        pipelines.collect(simulation)
    average = pipelines.concurrency_average(6.0)
    assert average == pytest.approx(1.0)
    assert pipelines.concurrency_average(math.nan) is None


def test_the_unschedulable_pods_are_the_replicas_waiting_for_a_node_not_the_placeholders() -> None:
    service = Service(concurrency=4, queue_limit=10, timeout=10.0, service_time=lambda _: 0.05, startup=5.0)
    simulation = Simulation(service, 2, nodes=Nodes(pods_per_node=2, nodes=2, provision_seconds=60.0,
                                                    headroom_pods=2))
    pipelines = Pipelines(concurrency=4)
    simulation.run_until(1.0)
    pipelines.collect(simulation)
    assert pipelines.unschedulable_pods() == 0
    simulation.scale_to(6)  # two take the placeholders' slots; the other two wait, as do the placeholders
    simulation.run_until(2.0)
    pipelines.collect(simulation)
    assert (pipelines.unschedulable_pods(), simulation.pending_placeholders()) == (2, 2)
    simulation.run_until(61.0)
    pipelines.collect(simulation)
    assert pipelines.unschedulable_pods() == 0


def test_without_nodes_nothing_is_unschedulable() -> None:
    simulation, pipelines = _steady(rate=40, seconds=5, replicas=3)
    simulation.scale_to(60)
    pipelines.collect(simulation)
    assert pipelines.unschedulable_pods() == 0
