"""`python -m demo up|down` (`make demo`, `make demo-down`): the whole product live on this machine.

`up` starts the local cluster with its real node (building what is missing, cached in
~/.cache/spillway), a Prometheus that finds the cluster's pods by Kubernetes discovery and
listens on the node's address (the operator in its pod reads it there), installs the chart so
that the operator runs in the cluster, then runs the scenario (`demo.scenario`): the session app
behind HAProxy with a Redis Sentinel session store, a surge of logged-in users, an app pod and
the Redis primary deleted midway. It prints a status line every few seconds and writes
`demo-out/demo-report.md` and `demo-out/demo.png`; it exits 1 if a user was logged out or
Spillway did not scale out and back in. Everything stays up to look at until `down`, which
stops every process the demo and the cluster started, by the PIDs they recorded.

DURATION (seconds, default 300; at least 60) sets the run's length: `make demo DURATION=120`
takes about two minutes of load.

`up --cluster current` (`make demo CLUSTER=current`) uses the current kubeconfig's cluster instead
(`$KUBECONFIG`, else ~/.kube/config), e.g. kind: there the host cannot reach pod or Service
addresses, so the demo's Prometheus and its load run as pods of the demo's namespace
(`demo.incluster`). The images are the test bed's own (tests/cluster/images.sh), loaded into a
kind cluster (`kind load image-archive`), or pulled from `--registry` where you pushed them; a
cluster prepared like tests/e2e/run-kind.sh (a node labelled spillway.io/real-node=true holding
them) is used as it is. `down` then removes the demo's namespace and the chart's release, nothing
else of that cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from demo.scenario import OPERATOR_NAMESPACE, ROOT, Bed, Plan, install_operator, plan, run, uninstall_operator
from tests.cluster import __main__ as cluster_cli
from tests.cluster import node as real_node
from tests.cluster.localcluster import build, build_images

STATE = cluster_cli.STATE_DIR / "demo.json"
OUT = ROOT / "demo-out"
NAMESPACE = "demo"
# The images a demo pod runs (the pause image and Valkey are the local node's and the tests').
DEMO_IMAGES = ("operator", "session-app", "base", "redis", "haproxy", "prometheus")


def up(duration: float, cluster: str = "local", registry: str | None = None) -> int:
    the_plan = plan(duration)  # a bad DURATION fails before anything starts
    if cluster == "current":
        return _up_current(the_plan, registry)
    if cluster_cli.up() != 0:
        return 1
    state = json.loads(cluster_cli.STATE.read_text())
    bins = build()
    bed = Bed(kubeconfig=state["kubeconfig"], kubectl=str(Path(state["k8s_bin"]) / "kubectl"),
              helm=str(bins["helm"] / "helm"), images=dict(real_node.IMAGES), placement=real_node.node_placement())
    prometheus_url = _prometheus(state["kubeconfig"], bins)
    print(f"prometheus {prometheus_url} (pod discovery; the operator's pod reads it on the node's address)")
    return _scenario(bed, the_plan, prometheus_url)


def _up_current(the_plan: Plan, registry: str | None) -> int:
    bed, context = current_bed(registry)
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({"cluster": "current", "kubeconfig": bed.kubeconfig, "context": context}))
    print(f"cluster: context {context} of {bed.kubeconfig}; Prometheus and the load run in pods")
    return _scenario(bed, the_plan, None)


def current_bed(registry: str | None) -> tuple[Bed, str]:
    """The current kubeconfig's cluster as a bed, its images made available to its nodes."""
    kubeconfig = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
    if not Path(kubeconfig).is_file():
        raise ValueError(f"no kubeconfig at {kubeconfig}: set KUBECONFIG, or use the local cluster (CLUSTER=local)")
    kubectl, helm = _tools()
    context = _kubectl(kubectl, kubeconfig, "config", "current-context").strip()
    labelled = _kubectl(kubectl, kubeconfig, "get", "nodes", "-l", f"{real_node.LABEL}=true", "-o", "name").split()
    placement = real_node.node_placement() if labelled else {}
    images, pull_policy = image_names(registry), "IfNotPresent" if registry else "Never"
    if registry:
        print(f"images from {registry}: " + ", ".join(images[name] for name in DEMO_IMAGES))
    elif context.startswith("kind-") and shutil.which("kind"):
        archives = build_images(build("pause", "prometheus"))
        for name in DEMO_IMAGES:
            subprocess.run(["kind", "load", "image-archive", str(archives[name]), "--name", context[len("kind-"):]],
                           check=True, timeout=600)
    elif not labelled:
        raise ValueError(f"context {context} is not a kind cluster (or `kind` is not on PATH): push the images "
                         "that tests/cluster/images.sh builds to a registry its nodes pull from and pass --registry "
                         "(README, \"Try it on your cluster\")")
    return Bed(kubeconfig=kubeconfig, kubectl=kubectl, helm=helm, images=images, placement=placement,
               in_cluster=True, pull_policy=pull_policy), context


def _tools() -> tuple[str, str]:
    """kubectl and helm from PATH, else the test bed's builds."""
    kubectl, helm = shutil.which("kubectl"), shutil.which("helm")
    if not (kubectl and helm):
        bins = build("k8s", "helm")
        kubectl, helm = kubectl or str(bins["k8s"] / "kubectl"), helm or str(bins["helm"] / "helm")
    return kubectl, helm


def _kubectl(kubectl: str, kubeconfig: str, *args: str) -> str:
    """kubectl's output; its own message (an unreachable cluster, no context) as a ValueError."""
    try:
        result = subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True,
                                timeout=60)
    except subprocess.TimeoutExpired:
        raise ValueError(f"kubectl {' '.join(args)}: no answer from the cluster of {kubeconfig} in 60 s") from None
    if result.returncode != 0:
        raise ValueError(f"kubectl {' '.join(args)} (kubeconfig {kubeconfig}): {result.stderr.strip()}")
    return result.stdout


def image_names(registry: str | None) -> dict[str, str]:
    """The test bed's image names, or the same names under `registry` (`localhost/` replaced)."""
    if not registry:
        return dict(real_node.IMAGES)
    return {name: f"{registry.rstrip('/')}/{image.removeprefix('localhost/')}"
            for name, image in real_node.IMAGES.items()}


def _scenario(bed: Bed, the_plan: Plan, prometheus_url: str | None) -> int:
    install_operator(bed)
    print(f"operator installed by its chart in {OPERATOR_NAMESPACE}")
    if bed.json("get", "namespace", NAMESPACE) is not None:  # a previous run's sample: start clean
        bed.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", timeout=200)
    result = run(bed, the_plan, prometheus_url, OUT, NAMESPACE)
    summary = result.summary
    print(f"\nreport: {result.report} (and {OUT / 'demo.png'})")
    print(f"peak {summary.peak_replicas} replicas; users logged out: {summary.logged_out}; "
          f"requests {summary.sent}, errors {summary.errors}")
    print(f"\nexport KUBECONFIG={bed.kubeconfig}\n"
          f"look:  kubectl get ssvc,pods -n {NAMESPACE}    why: kubectl describe ssvc shop -n {NAMESPACE}\n"
          "stop:  make demo-down")
    if summary.logged_out:
        print(f"{summary.logged_out} users were logged out", file=sys.stderr)
        return 1
    if summary.peak_replicas is None or summary.min_replicas is None or summary.peak_replicas <= summary.min_replicas \
            or not summary.scaled_in:
        print("Spillway did not scale out and back in; see `kubectl logs -n spillway-system deploy/spillway`",
              file=sys.stderr)
        return 1
    return 0


def _prometheus(kubeconfig: str, bins: dict[str, Path]) -> str:
    """The demo's Prometheus, started once (its PID recorded in the demo's state file)."""
    from tests.integration.components import Prometheus

    if STATE.exists():
        known = json.loads(STATE.read_text())
        if _ours(known.get("prometheus_pid", 0), "prometheus"):
            return str(known["prometheus_url"])
    workdir = cluster_cli.STATE_DIR / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    prometheus = Prometheus([], {}, workdir, kubeconfig=kubeconfig, binary=str(bins["prometheus"] / "prometheus"),
                            host=real_node.NODE_IP)
    prometheus.start()
    assert prometheus.process.proc is not None
    STATE.write_text(json.dumps({"prometheus_pid": prometheus.process.proc.pid, "prometheus_url": prometheus.url}))
    return prometheus.url


def _ours(pid: int, name: str) -> bool:
    """Whether `pid` is still the process the demo started (a PID reused since is left alone)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and name.encode() in cmdline.read_bytes()


def down() -> int:
    known = json.loads(STATE.read_text()) if STATE.exists() else {}
    if known.get("cluster") == "current":
        return _down_current(known["kubeconfig"], known["context"])
    pid = known.get("prometheus_pid", 0)
    if _ours(pid, "prometheus"):
        os.kill(pid, signal.SIGTERM)
    STATE.unlink(missing_ok=True)
    return cluster_cli.down()


def _down_current(kubeconfig: str, context: str) -> int:
    """The demo's namespace and the chart's release, in the context the demo used."""
    kubectl, helm = _tools()
    bed = Bed(kubeconfig=kubeconfig, kubectl=kubectl, helm=helm, images={}, placement={}, in_cluster=True)
    now = bed.run("config", "current-context").stdout.strip()
    if now != context:
        print(f"the kubeconfig's context is {now}, not {context} where the demo ran: switch back "
              f"(kubectl config use-context {context}) and run make demo-down again", file=sys.stderr)
        return 1
    bed.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s", timeout=200)
    uninstall_operator(bed)
    STATE.unlink(missing_ok=True)
    print(f"removed namespace {NAMESPACE} and the release spillway in {OPERATOR_NAMESPACE} from {context}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("DURATION") or 300),
                        help="seconds of load (default 300, or $DURATION)")
    parser.add_argument("--cluster", choices=["local", "current"], default=os.environ.get("CLUSTER") or "local",
                        help="local: the local control plane with its real node (default); current: the current "
                             "kubeconfig's cluster, e.g. kind (or $CLUSTER)")
    parser.add_argument("--registry", default=os.environ.get("REGISTRY") or None,
                        help="with --cluster current: pull the images from this registry (e.g. ghcr.io/me), "
                             "where you pushed tests/cluster/images.sh's archives")
    args = parser.parse_args()
    if args.cluster not in ("local", "current"):
        parser.error(f"--cluster: local or current, not {args.cluster!r}")
    if args.command == "down":
        return down()
    try:
        return up(args.duration, args.cluster, args.registry)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
