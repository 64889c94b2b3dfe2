"""The balancing providers' CRDs and the autoscalers' CapacityBuffer at their pinned releases, in a test cluster.

`crds.sh` fetches each set from the provider's Go module (cached); `install_crds` applies the
chosen sets server-side and waits until every CRD in them is Established. Only the providers'
APIs: never a controller, so nothing acts on the objects a test creates, but the API server
validates them against the schemas the providers ship.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETS = ("gateway-standard", "gateway-experimental", "envoy-gateway", "istio", "prometheus-operator", "capacity-buffer")


def fetch() -> dict[str, Path]:
    """Runs crds.sh (idempotent) and returns each set's directory by set name."""
    out = subprocess.run(["bash", str(HERE / "crds.sh")], check=True, capture_output=True, text=True).stdout
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {key.removesuffix("_CRDS").lower().replace("_", "-"): Path(value) for key, value in found.items()}


def install_crds(kubectl: Callable[..., subprocess.CompletedProcess[str]], sets: list[str],
                 timeout_seconds: float = 60) -> list[str]:
    """Applies `sets` (names from SETS, in order) with `kubectl apply --server-side` and waits
    until each CRD is Established; returns the CRDs' names. `kubectl` is a cluster's wrapper
    (`LocalCluster.kubectl`, the `kube` fixture's `kubectl`). The two Gateway API channels
    define the same CRDs: the later set wins."""
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise ValueError(f"unknown CRD sets {unknown}; known: {', '.join(SETS)}")
    dirs = fetch()
    names: list[str] = []
    for name in sets:
        applied = kubectl("apply", "--server-side", "--force-conflicts", "-o", "name", "-f", str(dirs[name]),
                          check=False, timeout=max(timeout_seconds, 120))
        if applied.returncode != 0:
            raise RuntimeError(f"applying the {name} CRDs from {dirs[name]} failed: {applied.stderr}")
        names += [n for n in applied.stdout.split() if n not in names]
    established = kubectl("wait", "--for=condition=Established", f"--timeout={timeout_seconds:.0f}s", *names,
                          check=False, timeout=timeout_seconds + 30)
    if established.returncode != 0:
        raise TimeoutError(f"CRDs not Established within {timeout_seconds:.0f}s: {established.stderr}")
    return [n.split("/", 1)[1] for n in names]
