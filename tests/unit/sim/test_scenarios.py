"""Scenarios from what a person states: spec, trace shape, service time, peers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from spillway.api import SpecError
from spillway.api.spec import Headroom
from spillway.sim import scenarios
from spillway.sim.distributions import Bimodal, Empirical, Exponential, Lognormal
from spillway.sim.model import Flavor, Nodes
from spillway.sim.peers.hpa import HPA
from spillway.sim.peers.keda import KEDA
from spillway.sim.run import Scenario
from tests.unit.conftest import minimal_spec


@pytest.mark.parametrize("shape", scenarios.SHAPES)
def test_every_shape_reaches_the_peak_within_the_duration(shape: str) -> None:
    trace = scenarios.synthetic(shape, 250.0, 300.0)
    assert trace.peak == pytest.approx(250.0) and trace.duration == 300.0 and trace.name == shape


@pytest.mark.parametrize(("shape", "peak", "duration"), [("zigzag", 10, 60), ("step", 0, 60), ("step", math.nan, 60),
                                                          ("step", 10, 5), ("step", 10, math.inf)])
def test_a_shape_that_cannot_be_built_is_refused(shape: str, peak: float, duration: float) -> None:
    with pytest.raises(ValueError):
        scenarios.synthetic(shape, peak, duration)


def test_truncation_keeps_the_start_of_a_trace() -> None:
    trace = scenarios.synthetic("ramp", 100.0, 100.0)
    cut = scenarios.truncated(trace, 30.0)
    assert cut.duration == 30.0 and cut.times[-1] < 30 and cut.rate(10) == trace.rate(10)
    assert scenarios.truncated(trace, 500.0) is trace


@pytest.mark.parametrize(("word", "kind", "mean"), [
    ("exponential:0.1", Exponential, 0.1), ("0.2", Exponential, 0.2), ("lognormal:0.1,1.0", Lognormal, 0.1),
    ("bimodal:0.05,1,0.1", Bimodal, 0.9 * 0.05 + 0.1)])
def test_service_times_are_read_from_words(word: str, kind: type, mean: float) -> None:
    service = scenarios.service_time(word)
    assert isinstance(service, kind) and scenarios.mean_seconds(service) == pytest.approx(mean)


def test_empirical_service_times_come_from_the_text_passed_in() -> None:
    service = scenarios.service_time("empirical:times.csv", "seconds\n0.1\n0.3\n")
    assert isinstance(service, Empirical) and scenarios.mean_seconds(service) == pytest.approx(0.2)


@pytest.mark.parametrize("word", ["gamma:1", "lognormal:0.1", "exponential:abc", "exponential:-1", "bimodal:1,2,3"])
def test_a_bad_service_time_is_refused(word: str) -> None:
    with pytest.raises(ValueError):
        scenarios.service_time(word)


def _spec(**fields: Any) -> Any:
    return scenarios.stated_spec(minimal_spec(**fields), {})


@pytest.mark.parametrize(("balancing", "algorithm"), [
    ({"provider": "Service"}, "Random"), ({"provider": "HAProxy"}, "LeastConnection"),
    ({"provider": "Istio"}, "RoundRobin"), ({"provider": "HAProxy", "algorithm": "RoundRobin"}, "RoundRobin")])
def test_the_balancer_is_the_specs_or_its_providers_default(balancing: dict[str, str], algorithm: str) -> None:
    assert scenarios.simulated_algorithm(_spec(balancing=balancing)) == algorithm


def test_weighted_is_simulated_as_weighted_ratio_and_consistent_hash_refused() -> None:
    weighted = _spec(balancing={"algorithm": "Weighted"}, pools=[{"name": "big", "weight": 3}])
    assert scenarios.simulated_algorithm(weighted) == "WeightedRatio"
    with pytest.raises(ValueError, match="ConsistentHash is not simulated"):
        scenarios.simulated_algorithm(_spec(balancing={"provider": "HAProxy", "algorithm": "ConsistentHash"}))


def test_the_spec_gives_the_replica_and_the_objective_and_notes_what_is_left_out() -> None:
    spec = _spec(capacity={"concurrency": 8, "queueLimit": 20, "timeout": "5s"},
                 scaling={"targets": {"latency": {"objective": "250ms", "quantile": 0.99}}},
                 balancing={"affinity": {"type": "ClientIP"}})
    declared = scenarios.declared(spec, scenarios.service_time("0.1"), 12.0)
    service = declared.service
    assert (service.concurrency, service.queue_limit, service.timeout, service.startup) == (8, 20, 5.0, 12.0)
    assert (declared.objective_seconds, declared.quantile) == (0.25, 0.99)
    assert any("scaling.prometheus is unset" in n for n in declared.notes)
    assert any("affinity ClientIP is simulated as 1000 users" in n and "ttl (1h) is not" in n for n in declared.notes)


POOLS = [{"name": "big", "weight": 3, "capacity": {"concurrency": 16}, "nodeSelector": {"size": "big"}},
         {"name": "small", "weight": 1, "capacity": {"queueLimit": 10}}]


def test_pools_become_flavors_by_weight_with_their_own_concurrency() -> None:
    spec = _spec(capacity={"concurrency": 8, "queueLimit": 50}, pools=POOLS, balancing={"algorithm": "Weighted"})
    declared = scenarios.declared(spec, scenarios.service_time("0.1"), 5.0, pool_speeds={"big": 1.5})
    assert declared.flavors == (Flavor(share=3, weight=3, concurrency=16, speed=1.5),
                                Flavor(share=1, weight=1, concurrency=8, speed=1.0))
    assert declared.algorithm == "WeightedRatio" and (declared.sticky, declared.sessions) == (False, 0)
    # the queue limit stays one for all: the weight-weighted mean, (3 x 50 + 10) // 4
    assert declared.service.queue_limit == 40
    assert any("queueLimit overrides are simulated as one queue limit of 40" in n for n in declared.notes)
    assert any("pools without --pool-speed (small)" in n for n in declared.notes)
    assert not any("weights not applied" in n or "nodeSelector" in n for n in declared.notes)
    with_nodes = scenarios.declared(spec, scenarios.service_time("0.1"), 5.0, nodes=Nodes(4, 2, 60.0))
    assert any("pools without --pool-speed (big, small)" in n for n in with_nodes.notes)
    assert any("nodeSelector is not simulated" in n for n in with_nodes.notes)


def test_a_spec_without_pools_is_one_default_flavor_and_speeds_name_only_its_pools() -> None:
    assert scenarios.pool_flavors(_spec()) == (Flavor(),)
    with pytest.raises(ValueError, match="names no pool of the spec: 'big'; it declares no pools"):
        scenarios.pool_flavors(_spec(), {"big": 2.0})
    with pytest.raises(ValueError, match="'huge'; its pools are big, small"):
        scenarios.pool_flavors(_spec(pools=POOLS), {"huge": 2.0})


@pytest.mark.parametrize("affinity", ["Cookie", "ClientIP"])
def test_an_affinity_makes_a_sticky_run_of_users(affinity: str) -> None:
    spec = _spec(balancing={"provider": "HAProxy", "affinity": {"type": affinity, "ttl": "10m"}})
    service = scenarios.service_time("0.1")
    default = scenarios.declared(spec, service, 5.0)
    assert (default.sticky, default.sessions) == (True, scenarios.DEFAULT_SESSIONS)
    declared = scenarios.declared(spec, service, 5.0, sessions=250)
    assert (declared.sticky, declared.sessions) == (True, 250)
    assert any(f"affinity {affinity} is simulated as 250 users" in n and "ttl (10m)" in n for n in declared.notes)


def test_sessions_without_an_affinity_are_refused() -> None:
    declared = scenarios.declared(_spec(), scenarios.service_time("0.1"), 5.0)
    assert (declared.sticky, declared.sessions) == (False, 0)
    with pytest.raises(ValueError, match="--sessions needs balancing.affinity"):
        scenarios.declared(_spec(), scenarios.service_time("0.1"), 5.0, sessions=100)


def test_nodes_are_stated_by_their_flags_and_headroom_needs_them() -> None:
    assert scenarios.stated_nodes(None, None) is None
    assert scenarios.stated_nodes((4, 2, 60.0), None) == Nodes(4, 2, 60.0, 0)
    assert scenarios.stated_nodes((4, 2, 60.0), Headroom(replicas=3)) == Nodes(4, 2, 60.0, 3)
    assert scenarios.stated_nodes((4, 2, 60.0), Headroom(percent=20, min_replicas=2)) == Nodes(
        4, 2, 60.0, headroom_percent=20, headroom_min=2)
    # The file's spec.headroom when no flag says otherwise; the flag wins over it.
    assert scenarios.stated_nodes((4, 2, 60.0), None, Headroom(percent=10)) == Nodes(
        4, 2, 60.0, headroom_percent=10, headroom_min=1)
    assert scenarios.stated_nodes((4, 2, 60.0), Headroom(replicas=0), Headroom(percent=10)) == Nodes(4, 2, 60.0, 0)
    assert scenarios.stated_nodes(None, None, Headroom(percent=10)) is None
    with pytest.raises(ValueError, match="--headroom needs --nodes"):
        scenarios.stated_nodes(None, Headroom(replicas=3))


def test_overrides_are_laid_over_the_document_and_validated() -> None:
    spec = scenarios.stated_spec(minimal_spec(replicas={"min": 2}), {
        ("replicas", "max"): 30, ("capacity", "concurrency"): None,
        ("scaling", "targets", "latency", "objective"): "300ms"})
    assert (spec.replicas.min, spec.replicas.max, spec.capacity.concurrency) == (2, 30, 200)
    assert spec.scaling.targets.latency is not None and spec.scaling.targets.latency.objective.total_seconds() == 0.3
    with pytest.raises(SpecError, match="replicas.min must be less than or equal"):
        scenarios.stated_spec(None, {("replicas", "min"): 5, ("replicas", "max"): 2})


@pytest.mark.parametrize(("text", "message"), [
    ("a: [", "not valid YAML"), ("kind: Deployment\n", "exactly one ScalableService"),
    ("kind: ScalableService\n---\nkind: ScalableService\n", "not 2"), ("kind: ScalableService\nspec: 3\n", "no spec")])
def test_a_file_without_one_scalable_service_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenarios.spec_document(text, "ssvc.yaml")


def test_the_peers_named_are_built_with_the_same_bounds() -> None:
    assert scenarios.peers(" HPA, keda,hpa ,") == ["hpa", "keda"]
    with pytest.raises(ValueError, match="unknown peer 'vpa'"):
        scenarios.peers("hpa,vpa")
    scenario = Scenario(scenarios.synthetic("step", 50, 60), scenarios.declared(
        _spec(), scenarios.service_time("0.1"), 5.0).service, 0.3, 2, 7)
    built = {name: scenarios.peer(name, scenario, 0.95) for name in scenarios.PEERS}
    assert len({policy.name for policy in built.values()}) == len(scenarios.PEERS)


def test_the_peers_are_configured_as_their_docs_advise() -> None:
    scenario = Scenario(scenarios.synthetic("step", 50, 60), scenarios.declared(
        _spec(), scenarios.service_time("0.1"), 5.0).service, 0.3, 2, 7)
    workers = scenario.service.concurrency
    cpu = scenarios.peer("hpa", scenario, 0.95)
    assert isinstance(cpu, HPA) and cpu.request_share == 0.5 and cpu.target_percent == 80
    pods = scenarios.peer("hpa-inflight", scenario, 0.95)
    assert isinstance(pods, HPA) and pods.in_flight_milli == math.ceil(workers * 0.7 * 1000)
    keda = scenarios.peer("keda", scenario, 0.95)
    assert isinstance(keda, KEDA)
    assert {(t.metric, t.threshold) for t in keda.triggers} == {
        ("rate", round(workers / 0.1 * 0.7, 3)), ("inflight", round(workers * 0.7, 3)), ("queue", float(workers))}
