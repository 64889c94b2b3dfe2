"""Grouped reads: one query per signal for every service sharing a Prometheus and a preset, each
service taking its row, with the value its own query would have given."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from spillway.api.spec import Queries
from spillway.autoscale import observe
from spillway.metrics.presets import GROUPED, PRESETS, grouped, render
from spillway.metrics.prometheus import Grouped, PrometheusSignals, interpret
from spillway.ports import Credentials, GroupedQuery, GroupedSignalSource, Reading
from tests.unit.conftest import minimal_spec, resource
from tests.unit.fakes import FakeCluster
from tests.unit.metrics.test_prometheus import NOW, Script, make_handler, sample

Labels = dict[str, str]
HAPROXY_SIGNALS = ("queue_depth", "in_flight")  # the ones the fake below can evaluate


# --- a fake Prometheus that evaluates the two shapes a grouped HAProxy gauge query takes -------

_MATCHER = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_ONE = re.compile(r"^sum\((\w+)\{(.*)\}\)$")
_BY = re.compile(r"^sum by \(([\w, ]+)\) \((\w+)\)$")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


class Store:
    """Raw series as a scrape would store them, and the queries seen."""

    def __init__(self) -> None:
        self.series: list[tuple[str, Labels, float]] = []
        self.seen: list[str] = []
        self.delay = 0.0

    def evaluate(self, query: str) -> list[dict[str, Any]]:
        terms = [self._term(t) for t in query.split(" + ")]
        result = terms[0]
        for other in terms[1:]:  # one-to-one matching on every label, as `+` between sums does
            right = {tuple(sorted(labels.items())): value for labels, value in other}
            result = [(labels, value + right[key]) for labels, value in result
                      if (key := tuple(sorted(labels.items()))) in right]
        return [{"metric": labels, "value": [NOW, repr(value)]} for labels, value in result]

    def _term(self, text: str) -> list[tuple[Labels, float]]:
        if one := _ONE.match(text):
            wanted = {k: _unescape(v) for k, v in _MATCHER.findall(one.group(2))}
            picked = [v for name, labels, v in self.series
                      if name == one.group(1) and all(labels.get(k, "") == v for k, v in wanted.items())]
            return [({}, sum(picked))] if picked else []
        by = _BY.match(text)
        assert by, f"the fake cannot evaluate {text!r}"
        names = [n.strip() for n in by.group(1).split(",")]
        groups: dict[tuple[str, ...], float] = {}
        for name, labels, value in self.series:
            if name == by.group(2):
                key = tuple(labels.get(n, "") for n in names)
                groups[key] = groups.get(key, 0.0) + value
        return [({n: v for n, v in zip(names, key, strict=True) if v}, total) for key, total in groups.items()]


@pytest.fixture
def prometheus() -> Iterator[tuple[str, Store]]:
    store = Store()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            query = parse_qs(urlparse(self.path).query)["query"][0]
            store.seen.append(query)
            time.sleep(store.delay)
            body = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                              "result": store.evaluate(query)}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", store
    httpd.shutdown()
    httpd.server_close()


def balancer(store: Store, namespace: str, service: str, *, pods: int, queue: float, served: float,
             proxy: str | None = None) -> None:
    """Series of `pods` balancer pods of one service, as pod discovery labels them; each pod has
    two servers."""
    for p in range(pods):
        base = {"namespace": namespace, "app_kubernetes_io_instance": service, "proxy": proxy or service,
                "pod": f"{service}-balancer-{p}", "job": "kubernetes-pods"}
        store.series.append(("haproxy_backend_current_queue", base, queue))
        for s in (1, 2):
            server = {**base, "server": f"s{s}"}
            store.series.append(("haproxy_server_current_queue", server, queue / 10 * s))
            store.series.append(("haproxy_server_current_sessions", server, served * s + p))


SERVICES = [("shop", "checkout"), ("shop", "cart"), ("web", "checkout"), ("shop", "idle"),
            ('x"}) or vector(1) #', "odd"), ("shop", "lonely")]


def _bed(store: Store) -> None:
    balancer(store, "shop", "checkout", pods=2, queue=3.5, served=7)
    balancer(store, "shop", "cart", pods=1, queue=0, served=0.25)
    balancer(store, "web", "checkout", pods=3, queue=40, served=12)  # same name, another namespace
    balancer(store, 'x"}) or vector(1) #', "odd", pods=1, queue=1, served=1)
    balancer(store, "shop", "checkout", pods=1, queue=99, served=99, proxy="stats")  # another backend
    balancer(store, "shop", "ghost", pods=1, queue=5, served=5)  # a balancer no ScalableService reads
    # "lonely" has a backend queue but no server series: its queue has no value, as alone
    store.series.append(("haproxy_backend_current_queue",
                         {"namespace": "shop", "app_kubernetes_io_instance": "lonely", "proxy": "lonely"}, 4))
    # "idle" has none at all


def _queries(namespace: str, service: str) -> tuple[dict[str, str], dict[str, GroupedQuery]]:
    names: dict[str, Any] = {"namespace": namespace, "service": service, "deployments": [service], "quantile": 0.95}
    alone = render("HAProxy", Queries(), **names)
    together = grouped("HAProxy", Queries(), **names)
    return ({s: alone[s] for s in HAPROXY_SIGNALS}, {s: together[s] for s in HAPROXY_SIGNALS})


def test_a_grouped_read_gives_each_service_what_its_own_query_gives(prometheus: tuple[str, Store]) -> None:
    url, store = prometheus
    _bed(store)
    for namespace, service in SERVICES:
        alone, together = _queries(namespace, service)
        one = PrometheusSignals().read(url, 2, Credentials(), alone, 60)
        many = PrometheusSignals().read_grouped(url, 2, Credentials(), together, 60, 15)
        assert many == one, (namespace, service)
    checkout = PrometheusSignals().read_grouped(url, 2, Credentials(), _queries("shop", "checkout")[1], 60, 15)
    assert checkout.values == {"queue_depth": 2 * 3.5 + 2 * (0.35 + 0.7), "in_flight": (7 + 14) + (8 + 15)}
    assert PrometheusSignals().read_grouped(url, 2, Credentials(), _queries("shop", "idle")[1], 60, 15).missing == {
        "queue_depth": "the query returned no series", "in_flight": "the query returned no series"}


def test_many_services_asking_at_once_send_one_query_per_signal(prometheus: tuple[str, Store]) -> None:
    url, store = prometheus
    _bed(store)
    store.delay = 0.2
    signals = PrometheusSignals()
    readings: dict[tuple[str, str], Reading] = {}

    def read(namespace: str, service: str) -> None:
        readings[namespace, service] = signals.read_grouped(url, 2, Credentials(), _queries(namespace, service)[1],
                                                            60, 15)

    threads = [threading.Thread(target=read, args=svc) for svc in SERVICES * 5]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(store.seen) == len(HAPROXY_SIGNALS)
    assert readings["web", "checkout"].values == {"queue_depth": 3 * 40 + 3 * (4 + 8),
                                                  "in_flight": (12 + 24) + (13 + 25) + (14 + 26)}


def test_a_shared_answer_lasts_a_second_or_a_quarter_interval(prometheus: tuple[str, Store]) -> None:
    url, store = prometheus
    _bed(store)
    signals, clock = PrometheusSignals(), [1000.0]
    signals.grouped.clock = lambda: clock[0]
    together = {"in_flight": _queries("shop", "checkout")[1]["in_flight"]}

    def queries_after(seconds: float, interval: float) -> int:
        clock[0] += seconds
        signals.read_grouped(url, 2, Credentials(), together, 60, interval)
        return len(store.seen)

    assert queries_after(0, 15) == 1
    assert queries_after(0.9, 15) == 1  # shared
    assert queries_after(0.2, 15) == 2  # 1.1 s old: asked again
    assert queries_after(0.4, 2) == 2  # a 2 s interval accepts 0.5 s
    assert queries_after(0.2, 2) == 3


def test_the_telemetry_counts_queries_and_shared_reads(prometheus: tuple[str, Store]) -> None:
    url, store = prometheus
    _bed(store)

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (count("spillway_prometheus_queries_total", signal="in_flight", scope="grouped"),
              count("spillway_prometheus_shared_reads_total", signal="in_flight"))
    signals = PrometheusSignals()
    for namespace, service in SERVICES:
        signals.read_grouped(url, 2, Credentials(), {"in_flight": _queries(namespace, service)[1]["in_flight"]}, 60, 15)
    assert count("spillway_prometheus_queries_total", signal="in_flight", scope="grouped") == before[0] + 1
    assert count("spillway_prometheus_shared_reads_total", signal="in_flight") == before[1] + len(SERVICES) - 1


# --- every kind of answer, scripted: the row says what the one-service answer says ------------

@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


ROW_LABELS = ("namespace", "app_kubernetes_io_instance", "proxy")


def _row(namespace: str, service: str) -> tuple[tuple[str, str], ...]:
    return tuple(zip(ROW_LABELS, (namespace, service, service), strict=True))


ANSWERS: dict[str, list[dict[str, Any]]] = {
    "fine": sample("42"), "zero": sample("0"), "none": [], "nan": sample("NaN"), "inf": sample("+Inf"),
    "negative": sample("-1"), "stale": sample("3", at=NOW - 500), "odd-stamp": [{"metric": {}, "value": ["x", "1"]}],
}


def test_each_row_reads_as_its_one_service_answer(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    rows = []
    for service, answer in ANSWERS.items():
        script.answers[f"alone {service}"] = [(200, answer, 0)]
        rows += [{**series, "metric": dict(_row("shop", service))} for series in answer]
    rows += [{"metric": {"namespace": "shop", "app_kubernetes_io_instance": "fine", "proxy": "stats"},
              "value": [NOW, "7"]},
             {"metric": {"app_kubernetes_io_instance": "fine", "proxy": "fine"}, "value": [NOW, "8"]}]
    script.answers["together"] = [(200, rows, 0)]
    signals = PrometheusSignals()
    signals._reader(url, 2, Credentials()).clock = lambda: NOW
    for service in ANSWERS:
        one = signals.read(url, 2, Credentials(), {"latency": f"alone {service}"}, 60)
        many = signals.read_grouped(url, 2, Credentials(), {"latency": GroupedQuery("together", _row("shop", service))},
                                    60, 15)
        assert many == one, service
    assert len([s for s in script.seen if s["query"] == "together"]) == 1


@pytest.mark.parametrize(("answer", "reason"), [
    ([NOW, "4"], "the query returned a scalar ('4'), not a series; it must be an instant vector"),
    ([{"metric": {}, "values": [[NOW, "1"]]}], "the query returned a range vector"),
])
def test_an_answer_with_no_rows_is_missing_for_every_service_with_its_shape(scripted: tuple[str, Script],
                                                                             answer: Any, reason: str) -> None:
    url, script = scripted
    script.answers["together"] = [(200, answer, 0)]
    for service in ("a", "b"):
        reading = PrometheusSignals().read_grouped(url, 2, Credentials(),
                                                   {"queue_depth": GroupedQuery("together", _row("shop", service))},
                                                   60, 15)
        assert reading.values == {} and reading.missing["queue_depth"].startswith(reason)


def test_a_failed_grouped_query_is_missing_for_every_service() -> None:
    signals = PrometheusSignals()
    for service in ("a", "b"):
        reading = signals.read_grouped("http://127.0.0.1:9", 0.5, Credentials(),
                                       {"in_flight": GroupedQuery("q", _row("shop", service))}, 60, 15)
        assert reading.missing["in_flight"].startswith("the query failed")


def test_credentials_keep_answers_apart_and_never_show(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers["together"] = [(200, [{"metric": dict(_row("shop", "a")), "value": [NOW, "1"]}], 0)]
    signals = PrometheusSignals()
    for token in ("token-one-s3cret", "token-two-s3cret", "token-one-s3cret"):
        signals.read_grouped(url, 2, Credentials(bearer_token=token), {"in_flight": GroupedQuery(
            "together", _row("shop", "a"))}, 60, 15)
    assert [s["auth"] for s in script.seen] == ["Bearer token-one-s3cret", "Bearer token-two-s3cret"]
    assert "s3cret" not in repr(signals.grouped._flights) and "s3cret" not in repr(signals.readers)


# --- the row mapping, for any answer ----------------------------------------------------------

names = st.sampled_from(["a", "b", "checkout", "a-b", 'q"x', ""])
values = st.sampled_from(["1", "0", "2.5", "NaN", "+Inf", "-3", "x"])
stamps = st.sampled_from([NOW, NOW - 1, NOW - 500])


@st.composite
def answers(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 12))):
        labels = {label: draw(names) for label in draw(st.sets(st.sampled_from([*ROW_LABELS, "pod"])))}
        out.append({"metric": {k: v for k, v in labels.items() if v}, "value": [draw(stamps), draw(values)]})
    return out


@settings(max_examples=300, deadline=None)
@given(answers(), names, names, names)
def test_a_services_row_is_exactly_the_series_carrying_its_labels(result: list[dict[str, Any]], namespace: str,
                                                                  instance: str, proxy: str) -> None:
    wanted = (namespace, instance, proxy)
    mine = [s for s in result if tuple(s["metric"].get(label, "") for label in ROW_LABELS) == wanted]
    assert Grouped.of(result, None, ROW_LABELS).answer(wanted, NOW, 60) == interpret(mine, NOW, 60)


# --- the presets' grouped forms ----------------------------------------------------------------

def test_haproxy_groups_by_namespace_instance_and_backend() -> None:
    by = "sum by (namespace, app_kubernetes_io_instance, proxy) "
    together = grouped("HAProxy", Queries(), namespace="shop", service="checkout", deployments=["checkout"],
                       quantile=0.95)
    assert together["in_flight"] == GroupedQuery(f"{by}(haproxy_server_current_sessions)",
                                                 (("namespace", "shop"), ("app_kubernetes_io_instance", "checkout"),
                                                  ("proxy", "checkout")))
    requests = "haproxy_backend_http_requests_total"
    assert together["arrival_rate"].query == f"{by}(rate({requests}[1m]) and {requests})"
    moved = f"(increase({requests}[1m]) > 0)"
    total = f"(haproxy_backend_total_time_average_seconds and ({requests} > 1024))"
    assert together["latency"].query == f"{by}({total} * {moved}) / {by}({moved} and {total})"


@pytest.mark.parametrize("source", ["HAProxy", "SpringBoot", "Istio"])
def test_each_grouped_query_is_its_one_service_query_without_the_services_matchers(source: str) -> None:
    for signal, (query, _) in GROUPED[source].items():  # type: ignore[index]
        alone = PRESETS[source][signal]  # type: ignore[index]
        for placeholder in ("{namespace}", "{service}", "{selector}"):
            assert placeholder not in query
        assert re.findall(r"[a-z_]+(?=[{\[)])", _metrics(query)) == re.findall(r"[a-z_]+(?=[{\[)])", _metrics(alone))


def _metrics(query: str) -> str:
    """The metric names a query reads, in order."""
    return " ".join(re.findall(r"\b(?:haproxy|tomcat|http_server|envoy|istio)_\w+", query))


def test_a_service_with_one_deployment_is_read_by_deployment_and_pools_alone() -> None:
    one = grouped("SpringBoot", Queries(), namespace="shop", service="checkout", deployments=["checkout"],
                  quantile=0.99)
    assert set(one) == {"queue_depth", "in_flight", "arrival_rate", "latency"}
    assert one["latency"].row == (("namespace", "shop"), ("spillway_deployment", "checkout"))
    assert one["latency"].query.startswith("histogram_quantile(0.99, sum by (namespace, spillway_deployment, le) ")
    assert 'label_replace(rate(http_server_requests_seconds_bucket[1m]), "spillway_deployment", "$1", "pod", ' \
           '"(.+)-[a-z0-9]+-[a-z0-9]+")' in one["latency"].query
    assert grouped("SpringBoot", Queries(), namespace="shop", service="checkout",
                   deployments=["checkout-a", "checkout-b"], quantile=0.99) == {}
    istio = grouped("Istio", Queries(), namespace="shop", service="checkout", deployments=["a", "b"], quantile=0.9)
    assert set(istio) == {"arrival_rate", "latency"}  # by destination service, whatever the pods
    assert istio["latency"].row == (("namespace", "shop"), ("destination_service_namespace", "shop"),
                                    ("destination_service_name", "checkout"))


def test_istio_series_a_pod_in_another_namespace_exports_for_this_service_count_for_nothing() -> None:
    """Any pod can export series naming any destination: only those scraped in the service's own
    namespace count, in its own query and in its row of the grouped one."""
    one = render("Istio", Queries(), namespace="shop", service="checkout", deployments=["checkout"], quantile=0.9)
    assert 'namespace="shop", destination_service_namespace="shop"' in one["arrival_rate"]
    istio = grouped("Istio", Queries(), namespace="shop", service="checkout", deployments=["checkout"], quantile=0.9)
    labels = tuple(label for label, _ in istio["arrival_rate"].row)
    series = [{"metric": {"namespace": namespace, "destination_service_namespace": "shop",
                          "destination_service_name": "checkout"}, "value": [NOW, value]}
              for namespace, value in (("shop", "5"), ("intruder", "500"))]
    row = tuple(value for _, value in istio["arrival_rate"].row)
    assert Grouped.of(series, None, labels).answer(row, NOW, 30) == 5.0


def test_overridden_signals_and_custom_queries_are_never_grouped() -> None:
    overrides = Queries(latency="max(my_latency)", queue_depth="sum(q)")
    assert set(grouped("HAProxy", overrides, namespace="shop", service="c", deployments=["c"], quantile=0.9)) == {
        "in_flight", "arrival_rate"}
    assert grouped("Custom", Queries(in_flight="sum(x)"), namespace="shop", service="c", deployments=["c"],
                   quantile=0.9) == {}


def test_a_row_holds_the_names_as_prometheus_answers_them() -> None:
    together = grouped("HAProxy", Queries(), namespace='x"}) or vector(1) #', service="s", deployments=["s"],
                       quantile=0.5)
    assert together["queue_depth"].row[0] == ("namespace", 'x"}) or vector(1) #')
    assert "vector(1)" not in together["queue_depth"].query


# --- observe() reads preset signals together and the rest alone --------------------------------

class FakeGroupedSignals:
    def __init__(self) -> None:
        self.alone: list[dict[str, str]] = []
        self.together: list[dict[str, GroupedQuery]] = []

    def read(self, url: str, timeout_seconds: float, credentials: Credentials, queries: dict[str, str],
             max_age_seconds: float) -> Reading:
        self.alone.append(queries)
        return Reading({s: 1.0 for s in queries})

    def read_grouped(self, url: str, timeout_seconds: float, credentials: Credentials,
                     queries: dict[str, GroupedQuery], max_age_seconds: float, interval_seconds: float) -> Reading:
        self.together.append(queries)
        return Reading({s: 2.0 for s in queries if s != "in_flight"}, {"in_flight": "the query returned no series"})


def test_observe_reads_preset_signals_together_and_overrides_alone() -> None:
    source = FakeGroupedSignals()
    assert isinstance(source, GroupedSignalSource)
    body = resource(minimal_spec(scaling={"prometheus": {"url": "http://prom:9090"},
                                          "queries": {"latency": "max(my_latency)"}}))
    observation = observe(FakeCluster(), source, body)
    assert source.alone == [{"latency": "max(my_latency)"}]
    assert set(source.together[0]) == {"queue_depth", "in_flight", "arrival_rate"}
    assert observation.reading == Reading({"queue_depth": 2.0, "arrival_rate": 2.0, "latency": 1.0},
                                          {"in_flight": "the query returned no series"})
    assert list(observation.reading.values) == ["queue_depth", "arrival_rate", "latency"]


def test_observe_reads_a_pooled_spring_boot_service_alone() -> None:
    source = FakeGroupedSignals()
    body = resource(minimal_spec(scaling={"prometheus": {"url": "http://prom:9090"}, "metricsSource": "SpringBoot"},
                                 pools=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]))
    observe(FakeCluster(), source, body)
    assert source.together == [] and set(source.alone[0]) == {"queue_depth", "in_flight", "arrival_rate", "latency"}
