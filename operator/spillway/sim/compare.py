"""How runs are compared: which configuration of a peer counts as tuned, and when one policy
dominates another. Pure.

A tuned peer is the cheapest configuration of its grid that reaches the attainment goal on that
trace; when none does, the one with the highest attainment (cost breaking ties). So a tuned peer
is never a strawman: it is what an operator with hindsight of that very trace would pick.

Attainments are compared at a resolution of `ATTAINMENT_STEP` (0.01 percentage point) and
costs at `COST_STEP` (0.5 %): differences smaller than that are noise of one seed, not a win.
Over several seeds, `paired` compares seed by seed instead, and its verdict rests on the paired
intervals (`spillway.sim.stats`), never on a step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from spillway.sim import stats
from spillway.sim.run import Result

GOAL = 0.99  # the share of requests answered within the objective that counts as meeting it
ATTAINMENT_STEP = 0.0001
COST_STEP = 0.005


def tuned(results: Iterable[Result], goal: float = GOAL) -> Result:
    candidates = list(results)
    if not candidates:
        raise ValueError("no run to choose a tuned configuration from")
    meeting = [r for r in candidates if r.slo_attainment >= goal]
    if meeting:
        return min(meeting, key=lambda r: (r.replica_seconds, -r.slo_attainment))
    return max(candidates, key=lambda r: (r.slo_attainment, -r.replica_seconds))


Verdict = Literal["dominates", "ties", "trades", "dominated"]


@dataclass(frozen=True)
class Versus:
    """One policy against another on one trace."""

    subject: Result
    other: Result

    @property
    def attainment(self) -> int:
        """+1 when the subject attains more, -1 less, 0 within the step."""
        return _sign(self.subject.slo_attainment - self.other.slo_attainment, ATTAINMENT_STEP)

    @property
    def cost(self) -> int:
        """+1 when the subject costs less, -1 more, 0 within the step (relative)."""
        base = max(self.other.replica_seconds, 1e-9)
        return _sign((self.other.replica_seconds - self.subject.replica_seconds) / base, COST_STEP)

    @property
    def verdict(self) -> Verdict:
        signs = (self.attainment, self.cost)
        if min(signs) >= 0 and max(signs) > 0:
            return "dominates"
        if signs == (0, 0):
            return "ties"
        if max(signs) <= 0:
            return "dominated"
        return "trades"


def _sign(difference: float, step: float) -> int:
    if difference > step:
        return 1
    if difference < -step:
        return -1
    return 0


def cost_ratio(subject: Result, oracle: Result) -> float:
    return subject.replica_seconds / max(oracle.replica_seconds, 1e-9)


def versus_all(subject: Result, others: Sequence[Result]) -> tuple[Versus, ...]:
    return tuple(Versus(subject, other) for other in others)


def cheapest_reaching(results: Iterable[Result], attainment: float) -> Result | None:
    """The cheapest run at or above `attainment` (within the step): what matching a policy's
    attainment costs a peer with hindsight of its own grid; None when no configuration does."""
    reaching = [r for r in results if r.slo_attainment >= attainment - ATTAINMENT_STEP]
    return min(reaching, key=lambda r: r.replica_seconds) if reaching else None


@dataclass(frozen=True)
class Paired:
    """A subject against another over the same seeds: the mean attainment difference (shares,
    subject minus other) and the mean cost ratio (replica-seconds, subject over other), each with
    its paired interval."""

    attainment: stats.Estimate
    cost: stats.Estimate

    @property
    def verdict(self) -> stats.Verdict:
        return stats.verdict(self.attainment, self.cost)


def paired(subject: Sequence[Result], other: Sequence[Result]) -> Paired:
    """`subject[i]` and `other[i]` must be runs of one trace under one seed: the same requests
    arrived in both (common random numbers), which is checked."""
    if len(subject) != len(other) or not subject:
        raise ValueError(f"paired runs need one of each per seed: {len(subject)} and {len(other)}")
    for a, b in zip(subject, other, strict=True):
        if a.trace != b.trace or a.arrived != b.arrived:
            raise ValueError(f"runs of different seeds or traces paired: {a.policy} on {a.trace} saw "
                             f"{a.arrived} arrivals, {b.policy} on {b.trace} {b.arrived}")
    return Paired(stats.paired_difference([r.slo_attainment for r in subject], [r.slo_attainment for r in other]),
                  stats.paired_ratio([max(r.replica_seconds, 1e-9) for r in subject],
                                     [max(r.replica_seconds, 1e-9) for r in other]))
