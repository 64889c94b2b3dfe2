"""The cluster under the simulated replicas: `Nodes` states it (nodes, pod slots per node, how
long a new node takes, headroom placeholders, a fixed number of them or a share of the replicas),
and `Cluster` keeps its pod slots as the scheduler and the cluster autoscaler do, so that a
replica without a slot stays Pending until a new node is up, unless it can preempt a headroom
placeholder.

It only keeps counts and answers the simulation's questions (a slot for this replica? which
Pending replicas got one? how many nodes are short?); it never makes or schedules an event, never
reads a clock of its own and draws nothing at random: the simulation (`spillway.sim.model`) turns
its answers into events. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from spillway.sim.replicas import Replica


@dataclass(frozen=True)
class Nodes:
    """The cluster under the replicas: `nodes` nodes of `pods_per_node` pod slots at the start;
    the cluster autoscaler adds nodes for Pending pods, each ready `provision_seconds` after it
    is asked for. Low-priority headroom placeholders hold slots that a replica takes at once by
    preempting one (the placeholder then goes Pending and brings a node of its own): either
    `headroom_pods` of them, or, with `headroom_percent`, that share of the replicas asked for,
    rounded up and never under `headroom_min` (`spec.headroom.percent` and `minReplicas`).
    Every pod, of any flavor, takes one slot. Nodes are never removed: the cluster autoscaler's
    scale-down of idle nodes is not modelled, so node-seconds are an upper bound after a peak."""

    pods_per_node: int
    nodes: int
    provision_seconds: float
    headroom_pods: int = 0
    headroom_percent: float | None = None
    headroom_min: int = 1  # with headroom_percent only

    def __post_init__(self) -> None:
        if self.pods_per_node < 1:
            raise ValueError(f"pods_per_node must be at least 1, not {self.pods_per_node!r}")
        if self.nodes < 0 or self.headroom_pods < 0 or self.headroom_min < 0:
            raise ValueError(f"nodes, headroom_pods and headroom_min must be 0 or more, not {self.nodes!r}, "
                             f"{self.headroom_pods!r} and {self.headroom_min!r}")
        if not self.provision_seconds >= 0 or math.isinf(self.provision_seconds):
            raise ValueError(f"provision_seconds must be a finite number of seconds, 0 or more, "
                             f"not {self.provision_seconds!r}")
        if self.headroom_percent is not None:
            if not 0 <= self.headroom_percent <= 1000:
                raise ValueError(f"headroom_percent must be a share from 0 to 1000 %, not {self.headroom_percent!r}")
            if self.headroom_pods:
                raise ValueError("headroom_pods must be 0 with headroom_percent: the spec's headroom "
                                 "is either a number of replicas or a percent")

    def placeholders_for(self, replicas: int) -> int:
        """The placeholders wanted beside `replicas` asked for."""
        if self.headroom_percent is None:
            return self.headroom_pods
        # Exact decimal arithmetic, as the operator's integers (spec.headroom.pods): 15 * 0.2 is
        # 3.0000000000000004 in floats, and 0.1 % of 1000 would round up to 2.
        share = Fraction(str(self.headroom_percent)) * max(replicas, 0) / 100
        return max(self.headroom_min, math.ceil(share))


class Cluster:
    """Pod slots on nodes, kept as the scheduler and the cluster autoscaler keep them: a pod runs
    only on a slot; the service's pods come before the headroom placeholders, whose priority is
    lower, so a replica preempts a placeholder rather than wait; nodes are asked for when pods
    are Pending and no node on its way has room for them. Nodes are never removed.

    `replicas` is the count the service asks for at the start; `ask` follows each new one, and
    the placeholders with it."""

    def __init__(self, spec: Nodes, replicas: int) -> None:
        self.spec = spec
        self.up = spec.nodes
        self.ordered = 0  # asked of the cloud, not up yet
        self.free = spec.nodes * spec.pods_per_node
        self.placeholders_running = 0
        self.placeholders_pending = spec.placeholders_for(replicas)
        self.pending: deque[Replica] = deque()  # the service's pods waiting for a slot, in the order made
        self.node_area = 0.0  # node-seconds, nodes provisioning included
        self.touched = 0.0

    def admit(self, replica: Replica) -> None:
        """A new replica: a free slot, else a placeholder's (evicted at once), else Pending."""
        if self.free > 0:
            self.free -= 1
        elif self.placeholders_running > 0:
            self.placeholders_running -= 1
            self.placeholders_pending += 1
        else:
            replica.placed, replica.ready_at = False, math.inf
            self.pending.append(replica)

    def ask(self, replicas: int) -> None:
        """The service now asks for `replicas`: as many placeholders as that wants. New ones are
        Pending until `fill` gives them room; fewer wanted removes Pending ones first, as the
        scheduler never placed them, then running ones, whose slots are free at once."""
        change = self.spec.placeholders_for(replicas) - self.placeholders_running - self.placeholders_pending
        if change >= 0:
            self.placeholders_pending += change
            return
        removed = min(-change, self.placeholders_pending)
        self.placeholders_pending -= removed
        running = -change - removed
        self.placeholders_running -= running
        self.free += running

    def release(self, replica: Replica) -> None:
        if replica.placed:
            self.free += 1
        else:
            self.pending.remove(replica)

    def fill(self) -> list[Replica]:
        """Give free slots to the Pending, the service's pods first; the replicas placed."""
        placed = []
        while self.free > 0 and self.pending:
            replica = self.pending.popleft()
            replica.placed = True
            self.free -= 1
            placed.append(replica)
        placeholders = min(self.free, self.placeholders_pending)
        self.free -= placeholders
        self.placeholders_pending -= placeholders
        self.placeholders_running += placeholders
        return placed

    def nodes_short(self) -> int:
        """How many more nodes the Pending pods need beyond those already on their way."""
        short = len(self.pending) + self.placeholders_pending - self.ordered * self.spec.pods_per_node
        return max(0, math.ceil(short / self.spec.pods_per_node))

    def order(self, count: int, now: float) -> None:
        self.touch(now)
        self.ordered += count

    def join(self, count: int, now: float) -> None:
        self.touch(now)
        self.ordered -= count
        self.up += count
        self.free += count * self.spec.pods_per_node

    def touch(self, now: float) -> None:
        self.node_area += (self.up + self.ordered) * (now - self.touched)
        self.touched = now
