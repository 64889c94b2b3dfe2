"""The demo scenario's pure parts: the sample made to run on a bed, and the chart's values."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from demo import midway, scenario
from demo.scenario import Bed

PLACEMENT = {"nodeSelector": {"spillway.io/real-node": "true"},
             "tolerations": [{"key": "spillway.io/real-node", "value": "true", "effect": "NoSchedule",
                              "operator": "Equal"}]}
IMAGES = {"operator": "reg/spillway/operator:dev", "session-app": "reg/spillway/session-app:dev",
          "base": "reg/spillway/base:bookworm", "redis": "reg/spillway/redis:8", "haproxy": "reg/spillway/haproxy:3"}


@dataclass(frozen=True)
class RecordingBed(Bed):
    """A bed that records what it would apply and run instead of running kubectl and helm."""

    calls: list[tuple[str, ...]] = field(default_factory=list)

    def apply(self, obj: dict[str, Any]) -> None:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(("helm", *args))
        return subprocess.CompletedProcess(args, 0, "", "")


def _bed(placement: dict[str, Any], pull_policy: str = "Never") -> RecordingBed:
    return RecordingBed(kubeconfig="kc", kubectl="kubectl", helm="helm", images=IMAGES, placement=placement,
                        in_cluster=True, pull_policy=pull_policy)


@pytest.mark.parametrize("placement", [{}, PLACEMENT])
def test_the_chart_gets_the_beds_image_pull_policy_and_placement(placement: dict[str, Any]) -> None:
    bed = _bed(placement, "IfNotPresent")
    scenario.install_operator(bed)
    (helm,) = [c for c in bed.calls if c[0] == "helm"]
    assert "image.repository=reg/spillway/operator" in helm and "image.tag=dev" in helm
    assert "image.pullPolicy=IfNotPresent" in helm
    selectors = [a for a in helm if a.startswith("nodeSelector.")]
    tolerations = [a for a in helm if a.startswith("tolerations[")]
    if placement:
        assert selectors == ["nodeSelector.spillway\\.io/real-node=true"]
        assert tolerations == ["tolerations[0].key=spillway.io/real-node,tolerations[0].value=true,"
                               "tolerations[0].effect=NoSchedule,tolerations[0].operator=Equal"]
    else:  # kind or any cluster: wherever the scheduler puts it
        assert selectors == [] and tolerations == []


def test_the_sample_runs_the_beds_images_with_its_pull_policy_and_the_runs_window() -> None:
    bed = _bed({}, "IfNotPresent")
    the_plan = scenario.plan(120)
    body = scenario.sample(bed, the_plan, "http://prometheus.shop.svc:9090", "shop")
    spec = body["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGES["session-app"], "IfNotPresent")
    assert spec["balancing"]["haproxy"]["image"] == IMAGES["haproxy"]
    assert spec["sessionStore"]["redis"]["image"] == IMAGES["redis"]
    assert "nodeSelector" not in spec["template"]["spec"]
    assert spec["scaling"]["prometheus"]["url"] == "http://prometheus.shop.svc:9090"
    assert spec["scaling"]["behavior"]["scaleDown"]["stabilizationWindow"] == f"{the_plan.window_seconds}s"
    assert body["metadata"]["namespace"] == "shop"


@pytest.mark.parametrize("duration", [59.9, 0, -1, float("nan"), float("inf"), float("-inf"), 1800.5])
def test_a_run_shorter_than_a_minute_or_longer_than_the_loads_bound_is_refused(duration: float) -> None:
    with pytest.raises(ValueError, match="at least 60 s and at most 1800 s"):
        scenario.plan(duration)


def test_the_plans_surge_and_window_fit_its_length() -> None:
    the_plan = scenario.plan(120)
    assert sum(seconds for _, seconds, _ in the_plan.phases) == 120
    start, end = the_plan.surge
    assert (start, end) == (24, 72)
    assert 15 <= the_plan.window_seconds < 120 - end


@pytest.mark.parametrize("elapsed, since_last, is_settled, due", [
    (None, None, True, False),    # the surge has not begun
    (47.9, None, True, False),    # before its earliest point, however settled
    (48.0, None, False, False),   # at mid-surge, still scaling out: wait
    (48.0, None, True, True),     # at mid-surge and settled
    (72.0, None, False, True),    # at its latest point, whatever the state
    (80.0, 14.9, True, False),    # too soon after the previous deletion
    (80.0, 15.0, False, True),
])
def test_a_deletion_waits_for_the_scale_out_to_settle_but_never_past_its_latest_point(
        elapsed: float | None, since_last: float | None, is_settled: bool, due: bool) -> None:
    assert midway.deletion_due(0.5, 0.75, elapsed, 96.0, since_last, is_settled) is due


@pytest.mark.parametrize("status, is_settled", [
    ({"desired": 8, "ready": 8, "queue": 32}, True),
    ({"desired": 8, "ready": 8, "queue": 33}, False),   # over 4 a ready replica
    ({"desired": 8, "ready": 7, "queue": 0}, False),    # a replica still starting
    ({"desired": 8, "ready": 8, "queue": None}, False),  # no signal: not known to be settled
    ({"desired": None, "ready": None, "queue": 0}, False),
    ({}, False),
])
def test_settled_means_every_desired_replica_ready_and_the_queue_at_its_target(
        status: dict[str, Any], is_settled: bool) -> None:
    assert midway.settled(status, 4.0) is is_settled
