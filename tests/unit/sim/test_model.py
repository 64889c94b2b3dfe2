"""The simulator's replicas, queues and timeouts: conservation, determinism, and agreement with
queueing theory (the Erlang C model the engine decides with)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.scaling.queueing import erlang_c, mean_response
from spillway.sim.model import ALGORITHMS, Service, Simulation, exponential, poisson_arrivals


def _run(service: Service, replicas: int, rate: float, seconds: float, seed: int = 1,
         algorithm: str = "RoundRobin") -> Simulation:
    simulation = Simulation(service, replicas, algorithm, seed)
    simulation.arrive_at(poisson_arrivals(lambda _: rate, 0.0, seconds, rate, random.Random(seed + 1)))
    simulation.run_until(seconds)
    return simulation


def test_a_run_is_a_function_of_its_inputs_and_seed() -> None:
    service = Service(concurrency=2, queue_limit=5, timeout=1.0, service_time=exponential(0.2))
    first, second = (_run(service, 2, 25.0, 200.0, seed=7, algorithm="Random") for _ in range(2))
    assert first.outcome == second.outcome
    assert _run(service, 2, 25.0, 200.0, seed=8, algorithm="Random").outcome != first.outcome


@settings(max_examples=60, deadline=None)
@given(concurrency=st.integers(1, 6), queue_limit=st.integers(0, 8), replicas=st.integers(1, 4),
       rate=st.floats(0.5, 80.0), mean=st.floats(0.01, 2.0), timeout=st.floats(0.05, 5.0),
       algorithm=st.sampled_from(ALGORITHMS), seed=st.integers(0, 2**16))
def test_every_request_is_answered_timed_out_refused_or_still_in_flight(
        concurrency: int, queue_limit: int, replicas: int, rate: float, mean: float, timeout: float,
        algorithm: str, seed: int) -> None:
    service = Service(concurrency, queue_limit, timeout, exponential(mean))
    simulation = _run(service, replicas, rate, 30.0, seed, algorithm)
    outcome = simulation.outcome
    assert outcome.arrived == outcome.answered + outcome.timeouts + outcome.refused + simulation.in_flight()
    assert all(0 <= latency <= timeout for latency in outcome.latencies)
    for replica in simulation.replicas:
        assert 0 <= replica.busy <= concurrency and 0 <= replica.waiting <= queue_limit


@pytest.mark.parametrize(("servers", "rate", "mean"), [(4, 30.0, 0.1), (8, 70.0, 0.1), (1, 6.0, 0.1)])
def test_mean_latency_and_waiting_share_match_erlang_c(servers: int, rate: float, mean: float) -> None:
    """One replica of `servers` workers, an unbounded queue, no timeout in reach: an M/M/k queue."""
    service = Service(concurrency=servers, queue_limit=10**9, timeout=1e9, service_time=exponential(mean))
    simulation = _run(service, 1, rate, 200_000 / rate, seed=3)
    latencies = simulation.outcome.latencies
    load = rate * mean
    expected = mean_response(servers, load, mean)
    assert sum(latencies) / len(latencies) == pytest.approx(expected, rel=0.08)
    assert simulation.outcome.waited / simulation.outcome.arrived == pytest.approx(erlang_c(servers, load), abs=0.02)


def test_a_full_queue_refuses_and_a_late_answer_is_a_timeout() -> None:
    slow = Service(concurrency=1, queue_limit=1, timeout=0.5, service_time=lambda _: 2.0)
    simulation = Simulation(slow, 1)
    simulation.arrive_at([0.0, 0.1, 0.2])
    simulation.run_until(10.0)
    # The first is served (2 s, past its 0.5 s timeout), the second queued then given up at its
    # deadline, the third refused by the full queue.
    assert (simulation.outcome.timeouts, simulation.outcome.refused, simulation.outcome.answered) == (2, 1, 0)


def test_a_new_replica_takes_traffic_only_after_it_started() -> None:
    service = Service(concurrency=1, queue_limit=0, timeout=10.0, service_time=lambda _: 1.0, startup=5.0)
    simulation = Simulation(service, 1)
    simulation.run_until(1.0)
    simulation.scale_to(2)
    assert simulation.ready_replicas() == 1
    simulation.arrive_at([1.5, 1.6])  # the one ready replica takes the first and refuses the second
    simulation.run_until(6.5)
    assert simulation.ready_replicas() == 2
    simulation.arrive_at([7.0, 7.1])  # now both take one
    simulation.run_until(20.0)
    assert (simulation.outcome.answered, simulation.outcome.refused) == (3, 1)


def test_a_drained_replica_finishes_what_it_holds_and_takes_nothing_new() -> None:
    service = Service(concurrency=1, queue_limit=5, timeout=10.0, service_time=lambda _: 1.0)
    simulation = Simulation(service, 2)
    simulation.arrive_at([0.0, 0.0, 0.0, 0.0])  # round robin: two each
    simulation.run_until(0.5)
    simulation.scale_to(1)
    simulation.arrive_at([0.6, 0.7])
    simulation.run_until(30.0)
    assert simulation.outcome.answered == 6
    assert simulation.replicas[1].draining and simulation.replicas[1].busy == 0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_service_time_that_is_not_a_positive_number_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        exponential(bad)
