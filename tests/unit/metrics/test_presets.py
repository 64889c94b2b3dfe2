from __future__ import annotations

import pytest

from spillway.api.spec import Queries
from spillway.metrics.presets import PRESETS, SIGNALS, escape, latency_kind, render


def test_escape_keeps_a_value_inside_its_string() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


@pytest.mark.parametrize("source", ["HAProxy", "SpringBoot", "Istio"])
def test_every_preset_defines_every_signal(source: str) -> None:
    assert set(PRESETS[source]) == set(SIGNALS)  # type: ignore[index]


HAPROXY_SERIES = '{namespace="shop", app_kubernetes_io_instance="checkout", proxy="checkout"}'


def _haproxy() -> dict[str, str]:
    return render("HAProxy", Queries(), namespace="shop", service="checkout", deployments=["checkout"], quantile=0.95)


def test_haproxy_series_are_found_by_the_scrapes_namespace_and_instance_label_and_the_backend() -> None:
    # The exporter labels only `proxy`: pod discovery adds `namespace` and the pod's labels.
    for query in _haproxy().values():
        assert query.count("haproxy_") == query.count(HAPROXY_SERIES), query


def test_haproxy_queue_counts_the_backend_queue_and_the_servers_queues() -> None:
    # With hash-type consistent or cookie persistence requests wait per server.
    assert _haproxy()["queue_depth"] == (f"sum(haproxy_backend_current_queue{HAPROXY_SERIES})"
                                         f" + sum(haproxy_server_current_queue{HAPROXY_SERIES})")


def test_haproxy_in_flight_is_what_the_servers_serve_not_the_backends_sessions() -> None:
    # backend_current_sessions also counts the queued requests.
    assert _haproxy()["in_flight"] == f"sum(haproxy_server_current_sessions{HAPROXY_SERIES})"
    assert "backend_current_sessions" not in "".join(_haproxy().values())


def test_haproxy_arrival_rate_ends_with_its_target() -> None:
    # A range vector outlives a dead target by its window; the instant counter does not.
    counter = f"haproxy_backend_http_requests_total{HAPROXY_SERIES}"
    assert _haproxy()["arrival_rate"] == f"sum(rate({counter}[1m]) and {counter})"


def test_haproxy_latency_is_total_time_only_while_requests_arrive_and_once_its_window_is_full() -> None:
    counter = f"haproxy_backend_http_requests_total{HAPROXY_SERIES}"
    moved = f"(increase({counter}[1m]) > 0)"
    total = f"(haproxy_backend_total_time_average_seconds{HAPROXY_SERIES} and ({counter} > 1024))"
    assert _haproxy()["latency"] == f"sum({total} * {moved}) / sum({moved} and {total})"
    assert "response_time" not in _haproxy()["latency"]  # server time only, without the queue


@pytest.mark.parametrize(("source", "kind"), [
    ("HAProxy", "mean"), ("SpringBoot", "quantile"), ("Istio", "quantile"), ("Custom", "quantile"),
])
def test_each_preset_says_whether_its_latency_is_a_quantile_or_a_mean(source: str, kind: str) -> None:
    assert latency_kind(source) == kind  # type: ignore[arg-type]


def test_selector_matches_pods_of_every_deployment_by_name() -> None:
    queries = render("SpringBoot", Queries(), namespace="shop", service="checkout",
                     deployments=["checkout-small", "checkout-large"], quantile=0.99)
    assert queries["in_flight"] == (
        'sum(tomcat_threads_busy_threads{namespace="shop", '
        'pod=~"(checkout-large|checkout-small)-[a-z0-9]+-[a-z0-9]+"})')
    assert queries["latency"].startswith("histogram_quantile(0.99, ")


SPRING_PODS = '{namespace="shop", pod=~"(checkout)-[a-z0-9]+-[a-z0-9]+"}'


def test_spring_boot_queue_is_the_connections_no_thread_serves_while_every_thread_is_busy() -> None:
    # A real Tomcat 10.1, 40 clients on 8 threads: the connection count held 41 (the acceptor
    # counts one before it accepts) and the keep-alive count 40 (every open connection, busy or
    # waiting), so current - busy - keep-alive read 0 where 32 waited.
    queries = render("SpringBoot", Queries(), namespace="shop", service="checkout", deployments=["checkout"],
                     quantile=0.95)

    def per_connector(metric: str) -> str:
        return f"sum by (pod, name) ({metric}{SPRING_PODS})"

    busy = per_connector("tomcat_threads_busy_threads")
    assert queries["queue_depth"] == (
        f"sum(clamp_min(({per_connector('tomcat_connections_current_connections')} - 1) - {busy}, 0)"
        f" * ({busy} >= bool {per_connector('tomcat_threads_config_max_threads')}))")
    assert "keepalive" not in queries["queue_depth"]


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
    assert queries["queue_depth"].count('"x\\"}) or vector(1) #"') == 2
