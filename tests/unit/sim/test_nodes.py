"""Node capacity in the simulator: a replica without a pod slot waits for the cluster
autoscaler's node, headroom placeholders trade that wait for a preemption, and node-seconds are
counted for the cost reports."""

from __future__ import annotations

import pytest

from spillway.sim.model import Nodes, Service, Simulation

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


@pytest.mark.parametrize("nodes", [
    dict(pods_per_node=0, nodes=1, provision_seconds=1.0),
    dict(pods_per_node=1, nodes=-1, provision_seconds=1.0),
    dict(pods_per_node=1, nodes=1, provision_seconds=float("nan")),
    dict(pods_per_node=1, nodes=1, provision_seconds=float("inf")),
    dict(pods_per_node=1, nodes=1, provision_seconds=-1.0),
    dict(pods_per_node=1, nodes=1, provision_seconds=1.0, headroom_pods=-1),
])
def test_an_impossible_cluster_is_refused(nodes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Nodes(**nodes)  # type: ignore[arg-type]
