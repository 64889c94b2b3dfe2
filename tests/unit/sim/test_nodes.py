"""Node capacity in the simulator: a replica without a pod slot waits for the cluster
autoscaler's node, headroom placeholders trade that wait for a preemption, and node-seconds are
counted for the cost reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillway.sim.model import Nodes, Service, Simulation
from spillway.sim.nodes import Cluster

STARTUP = 10.0
PROVISION = 60.0
SERVICE = Service(concurrency=1, queue_limit=5, timeout=30.0, service_time=lambda _: 1.0, startup=STARTUP)


def test_without_room_a_new_replica_is_pending_until_a_node_is_up_then_pays_its_startup() -> None:
    simulation = Simulation(SERVICE, 2, nodes=Nodes(pods_per_node=2, nodes=1, provision_seconds=PROVISION))
    simulation.run_until(5.0)
    simulation.scale_to(3)
    assert (simulation.pending_pods(), simulation.node_count(), simulation.ready_replicas()) == (1, 1, 2)
    assert [pod.pending for pod in simulation.pods()] == [False, False, True]
    simulation.run_until(5.0 + PROVISION)
    assert (simulation.pending_pods(), simulation.node_count(), simulation.ready_replicas()) == (0, 2, 2)
    simulation.run_until(5.0 + PROVISION + STARTUP - 0.01)
    assert simulation.ready_replicas() == 2
    simulation.run_until(5.0 + PROVISION + STARTUP)
    assert simulation.ready_replicas() == 3


def test_headroom_lets_a_replica_start_after_its_startup_alone_and_a_node_follows_for_the_placeholder() -> None:
    simulation = Simulation(SERVICE, 2, nodes=Nodes(pods_per_node=2, nodes=2, provision_seconds=PROVISION,
                                                    headroom_pods=2))
    simulation.run_until(5.0)
    simulation.scale_to(3)
    # The replica took a placeholder's slot at once; the evicted placeholder is Pending and has
    # asked for a node.
    assert (simulation.pending_pods(), simulation.pending_placeholders(), simulation.node_count()) == (0, 1, 2)
    simulation.run_until(5.0 + STARTUP)
    assert simulation.ready_replicas() == 3
    simulation.run_until(5.0 + PROVISION)
    assert (simulation.pending_placeholders(), simulation.node_count()) == (0, 3)
    # The next step up lands on the new node's spare slot, again after its startup only.
    simulation.scale_to(4)
    simulation.run_until(5.0 + PROVISION + STARTUP)
    assert (simulation.ready_replicas(), simulation.pending_pods()) == (4, 0)


def test_the_autoscaler_asks_for_as_many_nodes_as_the_pending_pods_need_at_once() -> None:
    simulation = Simulation(SERVICE, 1, nodes=Nodes(pods_per_node=3, nodes=1, provision_seconds=PROVISION))
    simulation.scale_to(9)  # 2 fit on the first node; 6 Pending need 2 nodes
    assert simulation.pending_pods() == 6
    simulation.run_until(PROVISION)
    assert (simulation.node_count(), simulation.pending_pods()) == (3, 0)
    simulation.run_until(PROVISION + STARTUP)
    assert simulation.ready_replicas() == 9


def test_replicas_beyond_the_first_nodes_are_pending_from_the_start() -> None:
    simulation = Simulation(SERVICE, 3, nodes=Nodes(pods_per_node=2, nodes=1, provision_seconds=PROVISION))
    assert (simulation.ready_replicas(), simulation.pending_pods()) == (2, 1)
    simulation.run_until(PROVISION + STARTUP)
    assert (simulation.ready_replicas(), simulation.node_count()) == (3, 2)


def test_a_drained_replica_frees_its_slot_only_once_it_finished_its_work() -> None:
    slow = Service(concurrency=1, queue_limit=0, timeout=30.0, service_time=lambda _: 8.0, startup=STARTUP)
    simulation = Simulation(slow, 2, nodes=Nodes(pods_per_node=1, nodes=2, provision_seconds=PROVISION))
    simulation.arrive_at([0.0, 0.0])  # one 8-second request on each
    simulation.run_until(1.0)
    simulation.scale_to(1)  # the newest drains, still busy until t=8
    simulation.scale_to(2)
    assert simulation.pending_pods() == 1
    simulation.run_until(8.0)
    assert simulation.pending_pods() == 0  # the drained replica's slot
    simulation.run_until(8.0 + STARTUP)
    assert simulation.ready_replicas() == 2
    simulation.run_until(1.0 + PROVISION)
    assert simulation.node_count() == 3  # the node asked for at t=1 comes anyway


def test_a_pending_replica_scaled_away_is_gone_at_once() -> None:
    simulation = Simulation(SERVICE, 1, nodes=Nodes(pods_per_node=1, nodes=1, provision_seconds=PROVISION))
    simulation.scale_to(2)
    assert simulation.pending_pods() == 1
    simulation.scale_to(1)
    assert (simulation.pending_pods(), len(simulation.pods())) == (0, 1)


def test_node_seconds_count_nodes_from_the_moment_they_are_asked_for() -> None:
    simulation = Simulation(SERVICE, 2, nodes=Nodes(pods_per_node=2, nodes=2, provision_seconds=PROVISION,
                                                    headroom_pods=2))
    simulation.run_until(5.0)
    simulation.scale_to(3)  # a node for the evicted placeholder, asked for at t=5
    simulation.run_until(100.0)
    assert simulation.node_seconds() == pytest.approx(2 * 100.0 + 95.0)


def test_without_nodes_nothing_is_pending_and_no_node_is_counted() -> None:
    simulation = Simulation(SERVICE, 1)
    simulation.scale_to(50)
    simulation.run_until(100.0)
    assert (simulation.pending_pods(), simulation.node_count(), simulation.node_seconds()) == (0, 0, 0.0)
    assert simulation.ready_replicas() == 50


@pytest.mark.parametrize(("replicas", "percent", "least", "wanted"), [
    (0, 20, 1, 1), (1, 20, 1, 1), (5, 20, 1, 1), (6, 20, 1, 2), (10, 20, 2, 2), (11, 20, 2, 3),
    (15, 20, 2, 3), (30, 20, 2, 6), (7, 150, 0, 11), (3, 10, 0, 1), (40, 12.5, 0, 5),
    (1000, 0.1, 0, 1),  # 0.1 as a float is a hair over a tenth: still 1, not 2
])
def test_percent_headroom_is_a_share_of_the_replicas_rounded_up_never_under_its_floor(
        replicas: int, percent: float, least: int, wanted: int) -> None:
    nodes = Nodes(pods_per_node=4, nodes=1, provision_seconds=PROVISION, headroom_percent=percent, headroom_min=least)
    assert nodes.placeholders_for(replicas) == wanted


@settings(max_examples=120, deadline=None)
@given(percent=st.integers(1, 200), least=st.integers(0, 4), pods_per_node=st.integers(1, 5), nodes=st.integers(0, 4),
       initial=st.integers(1, 12), steps=st.lists(st.tuples(st.floats(0.0, 80.0), st.integers(0, 30)), max_size=8))
def test_percent_headroom_follows_the_replicas_asked_for_as_they_scale(
        percent: int, least: int, pods_per_node: int, nodes: int, initial: int,
        steps: list[tuple[float, int]]) -> None:
    spec = Nodes(pods_per_node, nodes, PROVISION, headroom_percent=percent, headroom_min=least)
    simulation = Simulation(SERVICE, initial, nodes=spec)
    asked, now = initial, 0.0
    for wait, count in [(0.0, initial), *steps]:
        now += wait
        simulation.run_until(now)
        if wait:  # the first step only checks the start
            simulation.scale_to(count)
            asked = max(count, 1)
        running, pending = simulation.running_placeholders(), simulation.pending_placeholders()
        assert running + pending == max(least, -(-asked * percent // 100))  # an integer ceiling
        placed = sum(not p.pending for p in simulation.pods())
        slots = simulation.node_count() * pods_per_node
        assert placed + running <= slots
        if pending or simulation.pending_pods():  # anything waits only while every slot is taken
            assert placed + running == slots
        if simulation.pending_pods():  # a replica never waits beside a placeholder it could preempt
            assert running == 0
    simulation.run_until(now + PROVISION)
    assert simulation.pending_pods() == simulation.pending_placeholders() == 0  # the nodes asked for came


def test_percent_headroom_grows_with_a_scale_up_and_brings_nodes_for_its_placeholders() -> None:
    nodes = Nodes(pods_per_node=4, nodes=3, provision_seconds=PROVISION, headroom_percent=20, headroom_min=2)
    simulation = Simulation(SERVICE, 5, nodes=nodes)
    assert (simulation.running_placeholders(), simulation.pending_placeholders()) == (2, 0)
    simulation.run_until(5.0)
    # 11 replicas want 3 placeholders: 7 of 12 slots were taken, the 6 new replicas take the
    # last 5 and preempt one placeholder; two placeholders wait for a node, no replica does.
    simulation.scale_to(11)
    assert (simulation.running_placeholders(), simulation.pending_placeholders(), simulation.pending_pods()) == (1, 2, 0)
    simulation.run_until(5.0 + STARTUP)
    assert simulation.ready_replicas() == 11
    simulation.run_until(5.0 + PROVISION)
    assert (simulation.node_count(), simulation.running_placeholders(), simulation.pending_placeholders()) == (4, 3, 0)
    simulation.scale_to(5)  # back to the floor of 2, and the third's slot is free again
    assert (simulation.running_placeholders(), simulation.pending_placeholders()) == (2, 0)


def test_fewer_placeholders_wanted_removes_the_pending_ones_first() -> None:
    cluster = Cluster(Nodes(pods_per_node=2, nodes=1, provision_seconds=PROVISION, headroom_percent=50,
                            headroom_min=0), replicas=8)
    cluster.fill()
    assert (cluster.placeholders_running, cluster.placeholders_pending, cluster.free) == (2, 2, 0)
    cluster.ask(4)  # wants 2: the two never placed go
    assert (cluster.placeholders_running, cluster.placeholders_pending, cluster.free) == (2, 0, 0)
    cluster.ask(2)  # wants 1: a running one goes, and its slot is free
    assert (cluster.placeholders_running, cluster.placeholders_pending, cluster.free) == (1, 0, 1)


def test_fixed_headroom_does_not_follow_the_replicas() -> None:
    simulation = Simulation(SERVICE, 2, nodes=Nodes(pods_per_node=4, nodes=2, provision_seconds=PROVISION,
                                                    headroom_pods=3))
    for count in (1, 5, 20, 2):
        simulation.scale_to(count)
        assert simulation.running_placeholders() + simulation.pending_placeholders() == 3


@pytest.mark.parametrize("nodes", [
    dict(pods_per_node=0, nodes=1, provision_seconds=1.0),
    dict(pods_per_node=1, nodes=-1, provision_seconds=1.0),
    dict(pods_per_node=1, nodes=1, provision_seconds=float("nan")),
    dict(pods_per_node=1, nodes=1, provision_seconds=float("inf")),
    dict(pods_per_node=1, nodes=1, provision_seconds=-1.0),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_pods=-1),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_percent=-1.0),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_percent=float("nan")),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_percent=20.0, headroom_min=-1),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_percent=20.0, headroom_pods=2),
])
def test_an_impossible_cluster_is_refused(nodes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Nodes(**nodes)  # type: ignore[arg-type]
