"""The autoscalers Spillway's scaling engine is compared with: one module per peer, each a
re-implementation of the published algorithm at its documented defaults, its upstream source
files and every departure from them named in its docstring, plus the oracle, the limit none can
reach. Each module's `tuned_grid()` lists constructor keywords of that peer's own knobs (the
default first) for a benchmark to pick the best per trace. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spillway.sim.peers import hpa, keda, knative, oracle
from spillway.sim.peers.hpa import HPA
from spillway.sim.peers.keda import KEDA
from spillway.sim.peers.knative import Knative
from spillway.sim.peers.oracle import Oracle

__all__ = ["HPA", "KEDA", "TUNED_GRIDS", "Knative", "Oracle"]

TUNED_GRIDS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "HPA": hpa.tuned_grid,
    "KEDA": keda.tuned_grid,
    "Knative": knative.tuned_grid,
    "Oracle": oracle.tuned_grid,
}
