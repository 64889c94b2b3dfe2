"""A peer's cost–attainment frontier over its configurations, and a subject held against it,
seed by seed. Pure.

Each configuration of a peer's grid is run on the same seeds as the subject; its point is its
mean replica-seconds and mean attainment. The frontier is the configurations no other one beats
on both (the lower-right hull of a cost–attainment plot is not needed: a user picks one
configuration, not a mix of two, so the frontier is the staircase of non-dominated points, and
between two of them the straight line is what a user could get at best by picking either).

The subject is compared at two points of that frontier: the peer's cost at the subject's
attainment and the peer's attainment at the subject's cost. Each is a linear interpolation
between the two frontier configurations that bracket the subject's mean; the weights are taken
from the means and then applied seed by seed, so that the comparison is paired (the same
requests on both sides, `spillway.sim.stats`) and has an interval. A subject beyond the peer's
reach (more attainment than any configuration of it reaches, or cheaper than its cheapest) has
no matched value on that side, which `Matched` says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spillway.sim import stats
from spillway.sim.run import Result


@dataclass(frozen=True)
class Point:
    """One configuration's mean over seeds."""

    name: str
    cost: float  # mean replica-seconds
    attainment: float  # mean share of requests within the objective


def point(name: str, runs: Sequence[Result]) -> Point:
    if not runs:
        raise ValueError(f"{name}: a point needs runs")
    return Point(name, math.fsum(r.replica_seconds for r in runs) / len(runs),
                 math.fsum(r.slo_attainment for r in runs) / len(runs))


def frontier(points: Sequence[Point]) -> tuple[Point, ...]:
    """The points no other beats on both (at most as costly and at least as attaining, better on
    one), cheapest first; so their attainment rises strictly with their cost."""
    for p in points:
        if not (math.isfinite(p.cost) and math.isfinite(p.attainment)):
            raise ValueError(f"{p.name}: a frontier needs finite points, not {p}")
    kept: list[Point] = []
    for p in sorted(points, key=lambda q: (q.cost, -q.attainment)):
        if not kept or p.attainment > kept[-1].attainment:
            kept.append(p)
    return tuple(kept)


def _bracket(front: Sequence[Point], value: float, axis: str) -> tuple[int, int, float] | None:
    """The two frontier points around `value` on `axis` ('cost' or 'attainment') and the weight
    of the second; None when `value` lies outside the frontier's span on that axis."""
    values = [getattr(p, axis) for p in front]
    if not front or value < values[0] or value > values[-1]:
        return None
    for i in range(len(front) - 1):
        low, high = values[i], values[i + 1]
        if low <= value <= high:
            return i, i + 1, (value - low) / (high - low) if high > low else 0.0
    return len(front) - 1, len(front) - 1, 0.0  # a frontier of one point, at exactly its value


@dataclass(frozen=True)
class Matched:
    """The subject against a peer's frontier over the same seeds, from the subject's side.

    `cost`: the paired ratio of the subject's replica-seconds over the frontier's at the
    subject's attainment; None when the subject's attainment lies outside the frontier's span
    (`reach` says where). `attainment`: the paired difference of the subject's attainment minus
    the frontier's at the subject's cost; None when the subject's cost lies outside the span.
    `peer_cost` and `peer_attainment` are the frontier's means at those points (`peer_cost`, when
    every configuration attains more than the subject, is the cheapest configuration's)."""

    cost: stats.Estimate | None
    attainment: stats.Estimate | None
    peer_cost: float | None
    peer_attainment: float | None
    better_cost: int  # +1 the subject is significantly cheaper at its attainment, -1 costlier, 0 neither
    better_attainment: int  # +1 the subject attains significantly more at its cost, -1 less, 0 neither
    matched: bool  # False: the subject lies where the peer has no configuration on either axis
    # Where the subject's attainment lies against the frontier's span: "within", "above" every
    # configuration's, "below" every one's; and its cost: "within", "above" (costlier than every
    # configuration: `attainment` is then against the best-attaining one), "below" (cheaper).
    attainment_side: str = "within"
    cost_side: str = "within"

    @property
    def verdict(self) -> stats.Verdict:
        """Outside the frontier with significance ("dominates"), inside it ("dominated"), on it
        ("no difference"); "trades" where the subject is cheaper and attains less than every
        configuration of the peer (no configuration to match it with)."""
        if not self.matched:
            return "trades"
        return stats.verdict_of(self.better_attainment, self.better_cost)


def _ratio(subject: Sequence[Result], theirs: Sequence[float]) -> stats.Estimate:
    return stats.paired_ratio([max(r.replica_seconds, 1e-9) for r in subject], [max(v, 1e-9) for v in theirs])


def _mix(a: Sequence[Result], b: Sequence[Result], w: float, field: str) -> list[float]:
    return [(1 - w) * getattr(x, field) + w * getattr(y, field) for x, y in zip(a, b, strict=True)]


def matched(subject: Sequence[Result], configurations: Mapping[str, Sequence[Result]]) -> Matched:
    """`subject[i]` and every configuration's `[i]` are runs of one seed (checked as
    `spillway.sim.compare.paired` does: the same arrivals)."""
    if not subject or not configurations:
        raise ValueError("a frontier comparison needs the subject's runs and a peer's configurations")
    for name, runs in configurations.items():
        if len(runs) != len(subject):
            raise ValueError(f"{name}: {len(runs)} runs against the subject's {len(subject)}")
        for a, b in zip(subject, runs, strict=True):
            if a.trace != b.trace or a.arrived != b.arrived:
                raise ValueError(f"{name}: runs of different seeds or traces paired ({a.arrived} and {b.arrived} "
                                 "arrivals)")
    front = frontier([point(name, runs) for name, runs in configurations.items()])
    mine = point("subject", subject)
    cheapest, best = configurations[front[0].name], configurations[front[-1].name]
    mine_attainment = [r.slo_attainment for r in subject]

    cost = peer_cost = None
    attainment_side = "within" if front[0].attainment <= mine.attainment <= front[-1].attainment else (
        "above" if mine.attainment > front[-1].attainment else "below")
    cost_side = "within" if front[0].cost <= mine.cost <= front[-1].cost else (
        "above" if mine.cost > front[-1].cost else "below")
    at = _bracket(front, mine.attainment, "attainment")
    if at is not None:
        i, j, w = at
        theirs = _mix(configurations[front[i].name], configurations[front[j].name], w, "replica_seconds")
        cost = _ratio(subject, theirs)
        peer_cost = (1 - w) * front[i].cost + w * front[j].cost
        better_cost, cost_matched = -cost.sign, True
    elif mine.attainment > front[-1].attainment:
        # No configuration reaches it: better, where the best-attaining one is significantly behind.
        ahead = stats.paired_difference(mine_attainment, [r.slo_attainment for r in best]).sign > 0
        better_cost, cost_matched = (1 if ahead else 0), True
    else:
        # Every configuration attains more; its cheapest is an upper bound of the peer's cost
        # here: costlier than that is worse, cheaper is unmatched.
        worse = _ratio(subject, [r.replica_seconds for r in cheapest]).sign > 0
        better_cost, cost_matched = (-1, True) if worse else (0, False)
        peer_cost = front[0].cost  # the cheapest configuration's, which attains more

    attainment = peer_attainment = None
    by_cost = _bracket(front, mine.cost, "cost")
    if by_cost is not None:
        i, j, w = by_cost
        theirs = _mix(configurations[front[i].name], configurations[front[j].name], w, "slo_attainment")
        attainment = stats.paired_difference(mine_attainment, theirs)
        peer_attainment = (1 - w) * front[i].attainment + w * front[j].attainment
        better_attainment, attainment_matched = attainment.sign, True
    elif mine.cost > front[-1].cost:
        # Costlier than every configuration: the best-attaining one is what the peer does there.
        attainment = stats.paired_difference(mine_attainment, [r.slo_attainment for r in best])
        peer_attainment = front[-1].attainment
        better_attainment, attainment_matched = attainment.sign, True
    else:
        # Cheaper than every configuration: attaining more than the cheapest is better; less is unmatched.
        ahead = stats.paired_difference(mine_attainment, [r.slo_attainment for r in cheapest]).sign > 0
        better_attainment, attainment_matched = (1, True) if ahead else (0, False)
    return Matched(cost, attainment, peer_cost, peer_attainment, better_cost, better_attainment,
                   cost_matched or attainment_matched, attainment_side, cost_side)
