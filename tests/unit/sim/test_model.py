"""The simulator's replicas, queues and timeouts: conservation, determinism, and agreement with
queueing theory (the Erlang C model the engine decides with)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.scaling.queueing import erlang_c, mean_response
from spillway.sim.distributions import bimodal, lognormal
from spillway.sim.model import ALGORITHMS, Flavor, Nodes, Service, Simulation, exponential, poisson_arrivals


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


def test_each_request_needs_the_same_work_whatever_happened_to_the_requests_before_it() -> None:
    """Common random numbers: pairs of requests 1 ms apart, pairs 10 s apart. One worker without a
    queue serves each pair's first and refuses its second; eight workers serve both. Request 2k
    must take the same time in both runs: its work is drawn when it arrives, not when a worker
    takes it (which would hand request 2k the k-th draw, every refused request shifting the rest)."""
    arrivals = [at for pair in range(20) for at in (10.0 * pair, 10.0 * pair + 0.001)]
    work = lognormal(0.25, 0.3)
    lonely = Simulation(Service(concurrency=1, queue_limit=0, timeout=5.0, service_time=work), 1, seed=4)
    roomy = Simulation(Service(concurrency=8, queue_limit=0, timeout=5.0, service_time=work), 1, seed=4)
    for simulation in (lonely, roomy):
        simulation.arrive_at(arrivals)
        simulation.run_until(300.0)
    assert lonely.outcome.refused == 20 and lonely.outcome.answered == 20 and roomy.outcome.answered == 40
    # Pairs never overlap (each request takes well under 10 s), so the k-th pair's two answers are
    # the k-th two in the roomy run, in either order.
    pairs = [set(roomy.outcome.latencies[2 * k:2 * k + 2]) for k in range(20)]
    assert all(latency in pair for latency, pair in zip(lonely.outcome.latencies, pairs, strict=True))


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


flavors = st.lists(st.builds(Flavor, share=st.floats(0.1, 5.0), speed=st.floats(0.2, 3.0), weight=st.integers(1, 5),
                             concurrency=st.none() | st.integers(1, 6)), min_size=1, max_size=3).map(tuple)
clusters = st.none() | st.builds(Nodes, pods_per_node=st.integers(1, 4), nodes=st.integers(0, 3),
                                 provision_seconds=st.floats(0.0, 20.0), headroom_pods=st.integers(0, 3)) | st.builds(
    Nodes, pods_per_node=st.integers(1, 4), nodes=st.integers(0, 3), provision_seconds=st.floats(0.0, 20.0),
    headroom_percent=st.floats(0.0, 150.0), headroom_min=st.integers(0, 3))
scalings = st.lists(st.tuples(st.floats(0.0, 30.0), st.integers(0, 8)), max_size=6)


def _everything(service: Service, replicas: int, algorithm: str, seed: int, flavors: tuple[Flavor, ...],
                nodes: Nodes | None, sticky: bool, sessions: int, scaling: list[tuple[float, int]]) -> Simulation:
    simulation = Simulation(service, replicas, algorithm, seed, flavors=flavors, sticky=sticky, nodes=nodes)
    times = poisson_arrivals(lambda _: 40.0, 0.0, 30.0, 40.0, random.Random(seed + 1))
    session_of = random.Random(seed + 2)
    simulation.arrive_at(times, [session_of.randrange(sessions) if sessions else None for _ in times])
    for at, count in sorted(scaling):
        simulation.run_until(at)
        simulation.scale_to(count)
    simulation.run_until(30.0)
    return simulation


@settings(max_examples=80, deadline=None)
@given(algorithm=st.sampled_from(ALGORITHMS), replicas=st.integers(1, 4), flavors=flavors, nodes=clusters,
       sticky=st.booleans(), sessions=st.integers(0, 20), scaling=scalings, queue_limit=st.integers(0, 6),
       timeout=st.floats(0.05, 3.0), startup=st.floats(0.0, 5.0), seed=st.integers(0, 2**16))
def test_with_flavors_sessions_and_nodes_every_request_is_still_accounted_for(
        algorithm: str, replicas: int, flavors: tuple[Flavor, ...], nodes: Nodes | None, sticky: bool,
        sessions: int, scaling: list[tuple[float, int]], queue_limit: int, timeout: float, startup: float,
        seed: int) -> None:
    service = Service(2, queue_limit, timeout, bimodal(0.05, 1.0, 0.1), startup)
    simulation = _everything(service, replicas, algorithm, seed, flavors, nodes, sticky, sessions, scaling)
    outcome = simulation.outcome
    assert outcome.arrived == outcome.answered + outcome.timeouts + outcome.refused + simulation.in_flight()
    assert outcome.rebalanced == 0 or sticky
    pods = simulation.pods()
    assert [p.index for p in pods] == sorted({p.index for p in pods})
    assert sum(p.busy for p in pods) == simulation.busy_workers() and sum(p.waiting for p in pods) == simulation.queued()
    assert sum(p.ready for p in pods) == simulation.ready_replicas()
    assert sum(p.pending for p in pods) == simulation.pending_pods()
    for replica in simulation.replicas:
        assert 0 <= replica.busy <= replica.concurrency and 0 <= replica.waiting <= queue_limit
    if nodes is not None:
        placed = sum(not p.pending for p in pods)
        assert placed <= simulation.node_count() * nodes.pods_per_node
        if simulation.pending_pods():  # a replica waits only while replicas fill every slot
            assert placed == simulation.node_count() * nodes.pods_per_node
    again = _everything(service, replicas, algorithm, seed, flavors, nodes, sticky, sessions, scaling)
    assert again.outcome == outcome and again.pods() == pods and again.node_seconds() == simulation.node_seconds()


def test_a_drained_replica_leaves_the_pods_and_the_balancer_for_good() -> None:
    service = Service(concurrency=2, queue_limit=5, timeout=10.0, service_time=exponential(0.05))
    simulation = Simulation(service, 2, "LeastConnection", seed=3)
    for cycle in range(50):  # a long day of scaling up and down
        simulation.scale_to(40 if cycle % 2 == 0 else 2)
        simulation.arrive_at([cycle * 10.0 + i * 0.04 for i in range(200)])
        simulation.run_until(cycle * 10.0 + 9.0)
    assert len(simulation.replicas) == 2 + 25 * 38
    assert [pod.index for pod in simulation.pods()] == [0, 1]
    assert simulation.outcome.answered == 50 * 200


def test_lognormal_service_keeps_its_mean_in_the_simulation() -> None:
    service = Service(concurrency=64, queue_limit=0, timeout=1e9, service_time=lognormal(0.2, 1.0))
    simulation = _run(service, 1, 20.0, 2000.0, seed=4)
    latencies = simulation.outcome.latencies
    assert sum(latencies) / len(latencies) == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("RoundRobin", (837, 24, 105, 384, 232.05508)),
    ("Random", (834, 19, 113, 404, 235.228881)),
    ("LeastConnection", (867, 22, 77, 383, 246.20679)),
])
def test_without_the_new_options_a_run_is_what_the_first_model_made_of_it(
        algorithm: str, expected: tuple[int, int, int, int, float]) -> None:
    """Golden numbers from the simulator with each request's work drawn at its arrival (common
    random numbers), taken with one flavor, no stickiness and no nodes: those options, unused,
    must leave every random draw and every choice where it was."""
    service = Service(concurrency=2, queue_limit=3, timeout=1.0, service_time=exponential(0.2), startup=4.0)
    simulation = Simulation(service, 2, algorithm, 7)
    simulation.arrive_at(poisson_arrivals(lambda t: 25.0 if t < 30 else 8.0, 0.0, 60.0, 25.0, random.Random(8)))
    for at, count in ((10.0, 5), (25.0, 3), (40.0, 1)):
        simulation.run_until(at)
        simulation.scale_to(count)
    simulation.run_until(70.0)
    outcome = simulation.outcome
    assert (outcome.answered, outcome.timeouts, outcome.refused, outcome.waited,
            round(sum(outcome.latencies), 6)) == expected
