"""The README's support matrix, written from each provider's `SUPPORT`: which algorithm and
affinity each provider honours, and how. Pure: no I/O.
"""

from __future__ import annotations

from spillway.resources.balancing.base import Support

ALGORITHMS = ("RoundRobin", "Random", "LeastConnection", "Weighted", "ConsistentHash")
AFFINITIES = ("ClientIP", "Cookie")
NOT_HONOURED = "not honoured"


def markdown(supports: list[Support]) -> str:
    """A Markdown table: a row per provider, a column per algorithm and per affinity, each cell
    the provider's phrase or "not honoured"; a Notes column when any provider has notes."""
    with_notes = any(s.notes for s in supports)
    header = ["Provider", *ALGORITHMS, *(f"{a} affinity" for a in AFFINITIES), *(["Notes"] if with_notes else [])]
    lines = [_row(header), _row(["---"] * len(header))]
    for support in supports:
        cells = [support.provider,
                 *(support.algorithms.get(a) or NOT_HONOURED for a in ALGORITHMS),
                 *(support.affinities.get(a) or NOT_HONOURED for a in AFFINITIES)]
        if with_notes:
            cells.append(support.notes)
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    # A pipe would end the cell; a newline would end the table.
    return " ".join(text.replace("|", "\\|").split())
