"""Spillway in the simulator under node capacity: while replicas it asked for wait for a node, the
queue raises the count no further (`decide`'s CapacityPending: the backlog it reads is the one the
Pending pods have not served yet), a rise in demand (in-flight, arrival rate, latency) is still
followed up to what demand asks, and the count resumes once they are placed; the peers, which do
not read the Pending pods, keep scaling as their real counterparts do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.api import parse_spec
from spillway.scaling.behavior import EngineState
from spillway.scaling.bounds import clamp
from spillway.scaling.engine import decide
from spillway.scaling.proposals import Signals
from spillway.sim.model import Nodes, Service, Simulation
from spillway.sim.peers import HPA, KEDA, Knative
from spillway.sim.policy import Policy
from spillway.sim.spillway import EPOCH, SpillwayPolicy
from tests.unit.sim.peers.fakes import FakeObservatory, pods

SPEC: dict[str, Any] = {
    "template": {"spec": {"containers": [{"name": "app", "image": "app",
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}},
    "replicas": {"min": 2, "max": 40},
    "capacity": {"concurrency": 8, "queueLimit": 100, "timeout": "10s"},
    "scaling": {"prometheus": {"url": "http://prometheus:9090"}, "metricsSource": "HAProxy"},
}
# The same service with a latency objective, so that the arrival rate proposes too.
LATENCY_SPEC: dict[str, Any] = {**SPEC, "scaling": {**SPEC["scaling"],
                                                    "targets": {"latency": {"objective": "1s", "quantile": 0.99}}}}
PROVISION = 90.0
SERVICE = Service(concurrency=8, queue_limit=100, timeout=10.0, service_time=lambda _: 0.1, startup=10.0)
TICK = 15


def busy(replicas: int) -> float:
    """The in-flight count for which the utilization signal proposes `replicas`."""
    spec = parse_spec(SPEC)
    return spec.capacity.concurrency * spec.scaling.targets.utilization * replicas


def _scaled(signals_at: Callable[[int], Signals], until: int) -> tuple[list[tuple[int, int, str | None]], Simulation]:
    """Spillway scaling a service on one node of 4 pod slots, a new node ready PROVISION seconds
    after the Pending pods ask for it, reading `signals_at(second)` each interval: (second, count,
    limited) per interval."""
    policy = SpillwayPolicy(parse_spec(SPEC))
    simulation = Simulation(SERVICE, 2, nodes=Nodes(pods_per_node=4, nodes=1, provision_seconds=PROVISION))
    observatory = FakeObservatory()
    current, asked = 2, []
    for second in range(0, until, TICK):
        simulation.run_until(float(second))
        observatory.now, observatory.unschedulable = float(second), simulation.pending_pods()
        observatory.signals = signals_at(second)
        current = policy.decide(observatory, current)
        simulation.scale_to(current)
        asked.append((second, current, policy.last_limited))
    return asked, simulation


def test_spillway_does_not_scale_up_on_the_queue_while_its_replicas_wait_for_a_node_and_resumes_once_placed() -> None:
    # The queue proposes 20, then 40 (queue per replica 10), while the in-flight count asks for 2.
    asked, simulation = _scaled(lambda second: Signals(queue_depth=200.0 if second == 0 else 400.0,
                                                       in_flight=busy(2)), 150)
    # The first scale-up outgrows the one node: its replicas are Pending until the nodes asked for
    # at 0 s are up at 90 s. The queue keeps growing meanwhile, as Pending pods serve none of it,
    # and that growth is not followed: more replicas would only wait beside them.
    first = asked[0][1]
    assert first == 20, asked
    assert all(count == first and limited == "CapacityPending" for second, count, limited in asked[1:6]), asked
    assert simulation.node_count() > 1
    resumed = [count for second, count, _ in asked if second >= PROVISION]
    assert resumed[0] == 40, asked


def test_spillway_follows_a_rise_in_demand_while_its_replicas_wait_for_a_node_but_not_the_queue() -> None:
    # As above, until the in-flight count at 45 s asks for 28: the load itself rose, which Pending
    # pods do not change, so the count rises to 28, and not to the queue's 40.
    rise, demand = 45, 28
    asked, _ = _scaled(lambda second: Signals(queue_depth=200.0 if second == 0 else 400.0,
                                              in_flight=busy(2) if second < rise else busy(demand)), 180)
    before = [count for second, count, _ in asked if 0 < second < rise]
    assert before and all(count == 20 for count in before), asked
    waiting = [(count, limited) for second, count, limited in asked if rise <= second < rise + PROVISION]
    assert waiting and all(entry == (demand, "CapacityPending") for entry in waiting), asked
    # The replicas added at 45 s brought nodes of their own, up at 135 s: then the queue's 40.
    assert [count for second, count, _ in asked if second >= rise + PROVISION][0] == 40, asked


@settings(max_examples=150, deadline=None)
@given(queue=st.none() | st.floats(0, 1e4), in_flight=st.none() | st.floats(0, 1e4),
       rate=st.none() | st.floats(0, 1e5), current=st.integers(1, 40), unschedulable=st.integers(1, 40))
def test_spillway_scales_up_no_further_than_demand_asks_while_a_replica_is_unschedulable(
        queue: float | None, in_flight: float | None, rate: float | None, current: int, unschedulable: int) -> None:
    """While any replica waits for a node, Spillway decides what it would without them, capped at
    the most the demand signals (every proposal but the queue's) ask for, and never below the
    current count within bounds: the engine's own proposals, read from the same decision."""
    spec = parse_spec(LATENCY_SPEC)
    signals = Signals(queue_depth=queue, in_flight=in_flight, arrival_rate=rate)
    held = SpillwayPolicy(spec).decide(FakeObservatory(signals=signals, unschedulable=unschedulable), current)
    unheld = SpillwayPolicy(spec, reads_unschedulable=False).decide(
        FakeObservatory(signals=signals, unschedulable=unschedulable), current)
    proposals = decide(spec, signals, current, EngineState(), EPOCH).proposals
    demand = [clamp(p.replicas, spec.replicas) for p in proposals if p.signal != "queue"]
    cap = max([clamp(current, spec.replicas), *demand])
    assert held <= unheld
    assert held <= cap
    assert held == min(unheld, cap)  # a rise in demand is followed as far as it asks


PEERS: dict[str, Any] = {
    "HPA": lambda: HPA(2, 40),
    "KEDA": lambda: KEDA(2, 40),
    "Knative": lambda: Knative(2, 40, container_concurrency=8),
}


def _overloaded(unschedulable: int, now: float) -> FakeObservatory:
    return FakeObservatory(now=now, ready=4, queue=500.0, resources=pods(1.0, 1.0, 1.0, 1.0), concurrency=64.0,
                           unschedulable=unschedulable)


@settings(max_examples=60, deadline=None)
@given(peer=st.sampled_from(sorted(PEERS)), unschedulable=st.lists(st.integers(0, 40), min_size=1, max_size=8))
def test_peers_scale_up_whatever_waits_for_a_node(peer: str, unschedulable: list[int]) -> None:
    """The HPA, KEDA and Knative size from their metrics alone: the same readings give the same
    counts with or without Pending pods, and an overloaded service is scaled up even while some
    of its replicas wait for a node."""
    blind: Policy = PEERS[peer]()
    seeing: Policy = PEERS[peer]()
    current_blind = current_seeing = 4
    for step, waiting in enumerate(unschedulable):
        now = (step + 1) * blind.tick_seconds
        current_blind = blind.decide(_overloaded(0, now), current_blind)
        current_seeing = seeing.decide(_overloaded(waiting, now), current_seeing)
        assert current_seeing == current_blind
    assert current_seeing > 4


def test_the_control_that_is_not_told_of_pending_pods_scales_up_past_them_on_the_queue() -> None:
    queued = FakeObservatory(signals=Signals(queue_depth=400.0, in_flight=busy(2)), unschedulable=10)
    assert SpillwayPolicy(parse_spec(SPEC)).decide(queued, 6) == 6
    assert SpillwayPolicy(parse_spec(SPEC), reads_unschedulable=False).decide(queued, 6) > 6
