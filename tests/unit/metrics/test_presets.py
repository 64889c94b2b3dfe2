from __future__ import annotations

import pytest

from spillway.api.spec import Queries
from spillway.metrics.presets import PRESETS, SIGNALS, escape, render


def test_escape_keeps_a_value_inside_its_string() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


@pytest.mark.parametrize("source", ["HAProxy", "SpringBoot", "Istio"])
def test_every_preset_defines_every_signal(source: str) -> None:
    assert set(PRESETS[source]) == set(SIGNALS)  # type: ignore[index]


def test_haproxy_preset_names_the_backend_and_namespace() -> None:
    queries = render("HAProxy", Queries(), namespace="shop", service="checkout", deployments=["checkout"],
                     quantile=0.95)
    assert queries["queue_depth"] == 'sum(haproxy_backend_current_queue{namespace="shop", proxy="checkout"})'


def test_selector_matches_pods_of_every_deployment_by_name() -> None:
    queries = render("SpringBoot", Queries(), namespace="shop", service="checkout",
                     deployments=["checkout-small", "checkout-large"], quantile=0.99)
    assert queries["in_flight"] == (
        'sum(tomcat_threads_busy_threads{namespace="shop", '
        'pod=~"(checkout-large|checkout-small)-[a-z0-9]+-[a-z0-9]+"})')
    assert queries["latency"].startswith("histogram_quantile(0.99, ")


def test_overrides_replace_the_preset_and_custom_has_only_them() -> None:
    overrides = Queries(queue_depth='sum(my_queue{ns="{namespace}", svc="{service}"})')
    custom = render("Custom", overrides, namespace="shop", service="checkout", deployments=["checkout"],
                    quantile=0.9)
    assert custom == {"queue_depth": 'sum(my_queue{ns="shop", svc="checkout"})'}
    istio = render("Istio", overrides, namespace="shop", service="checkout", deployments=["checkout"], quantile=0.9)
    assert istio["queue_depth"] == custom["queue_depth"]
    assert "istio_requests_total" in istio["arrival_rate"]


def test_a_hostile_name_cannot_break_out_of_its_matcher() -> None:
    queries = render("HAProxy", Queries(), namespace='x"}) or vector(1) #', service="s", deployments=["s"],
                     quantile=0.5)
    assert 'namespace="x\\"}) or vector(1) #"' in queries["queue_depth"]
