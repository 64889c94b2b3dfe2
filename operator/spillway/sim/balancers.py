"""Which replica takes a request, and which kinds of replica there are: the balancer's algorithms
(round robin, random, least connection, and WeightedRatio as nginx's smooth weighted round
robin), sticky sessions that follow the replica holding their affinity cookie, and the replica
`Flavor`s (the seed's "Ratio" case: servers of different specs) kept near their shares as
replicas are added and drained.

It only chooses among the replicas it is handed: it never touches a replica's queue or workers
(WeightedRatio's running score is all it writes), never makes an event, and its one source of
chance is the simulation's generator, drawn only for a Random pick, so a run stays a function of
its seed. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from spillway.sim.replicas import Replica

ALGORITHMS = ("RoundRobin", "Random", "LeastConnection", "WeightedRatio")


@dataclass(frozen=True)
class Flavor:
    """One kind of replica: `share` of the replicas are of it, each serving a request in its
    service time divided by `speed`, with `concurrency` workers (the service's when None), and
    taking `weight` parts of the traffic under WeightedRatio."""

    share: float = 1.0
    speed: float = 1.0
    weight: int = 1
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if not self.share > 0 or math.isinf(self.share):
            raise ValueError(f"share must be a positive finite number, not {self.share!r}")
        if not self.speed > 0 or math.isinf(self.speed):
            raise ValueError(f"speed must be a positive finite factor, not {self.speed!r}")
        if self.weight < 1:
            raise ValueError(f"weight must be at least 1, not {self.weight!r}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency!r}")


class FlavorMix:
    """The flavors' shares of the replicas, kept as replicas come and go: a new replica is of
    the flavor furthest below its share, and a scale-down drains from the one furthest over."""

    def __init__(self, flavors: tuple[Flavor, ...]) -> None:
        self.flavors = flavors
        self.total_share = sum(f.share for f in flavors)

    def to_add(self, live: Iterable[Replica]) -> int:
        """The flavor (an index) of the next replica, given the replicas not yet drained."""
        counts = [0] * len(self.flavors)
        for r in live:
            if not r.draining:
                counts[r.flavor] += 1
        total = sum(counts) + 1
        # The flavor furthest below its share once this one exists; the first on a tie.
        return max(range(len(self.flavors)),
                   key=lambda f: (self.flavors[f].share / self.total_share * total - counts[f], -f))

    def to_drain(self, active: list[Replica]) -> Replica:
        """The replica to drain next among the `active` (none draining): the flavor furthest over
        its share loses its least advanced one (a Pending one, then one still starting, then the
        newest), as a ReplicaSet picks pods to delete."""
        counts = [0] * len(self.flavors)
        for r in active:
            counts[r.flavor] += 1
        remaining = len(active) - 1

        def least_advanced(flavor: int) -> Replica:
            return max((r for r in active if r.flavor == flavor), key=lambda r: (r.ready_at, r.index))

        def excess(flavor: int) -> tuple[float, float, int]:
            candidate = least_advanced(flavor)
            over = counts[flavor] - self.flavors[flavor].share / self.total_share * remaining
            return over, candidate.ready_at, candidate.index

        return least_advanced(max((f for f in range(len(self.flavors)) if counts[f]), key=excess))


class Balancer:
    """The balancer in front of the replicas: `pick` by one of `ALGORITHMS`; and for sticky
    sessions `follow`, which sends a session's requests to the replica that took its last one
    until that replica drains, as a balancer's affinity cookie does."""

    def __init__(self, algorithm: str, rng: random.Random) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
        self.algorithm, self.rng = algorithm, rng
        self._turn = 0
        self._affinity: dict[int, Replica] = {}  # session id -> the replica its cookie names

    def follow(self, session: int, ready: Callable[[], list[Replica]]) -> tuple[Replica | None, bool]:
        """The replica for a request of `session` (a number 0 or more), or None when it has to
        be picked and none is ready; and whether the session was sent off the replica that held
        it. `ready` is called only when the balancer has to pick."""
        home = self._affinity.get(session)
        # A replica once ready stays ready until it drains, so not draining is enough here.
        if home is not None and not home.draining:
            return home, False
        replica = self.pick(ready())
        if replica is None:
            return None, False
        self._affinity[session] = replica
        return replica, home is not None

    def pick(self, ready: list[Replica]) -> Replica | None:
        """One of the `ready` replicas (in the order made) by the algorithm; None if there is none."""
        if not ready:
            return None
        algorithm = self.algorithm
        if algorithm == "RoundRobin":
            self._turn += 1
            return ready[self._turn % len(ready)]
        if algorithm == "LeastConnection":
            # The first (oldest) of the least loaded, as `min` keeps the first of equals.
            best, least = ready[0], ready[0].busy + ready[0].waiting
            for replica in ready:
                load = replica.busy + replica.waiting
                if load < least:
                    best, least = replica, load
            return best
        if algorithm == "Random":
            return self.rng.choice(ready)
        # Smooth weighted round robin, as nginx's: each turn every replica gains its weight, the
        # highest score is picked and pays back the total, so weights 3:1 go a,a,b,a not a,a,a,b.
        total, best = 0, ready[0]
        for replica in ready:
            replica.current_weight += replica.weight
            total += replica.weight
            if replica.current_weight > best.current_weight:
                best = replica
        best.current_weight -= total
        return best
