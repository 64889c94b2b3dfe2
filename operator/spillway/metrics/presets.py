"""PromQL per signal, per metrics source, with the service's names filled in, and what each
source's latency is (a quantile or a mean). Pure: no I/O.

Placeholders: `{namespace}`, `{service}` (the ScalableService's name, which is also its Service
and, for the HAProxy provider, its backend), `{selector}` (label matchers of the app's pods by
namespace and pod name, ready to paste inside braces) and `{quantile}`. Values are escaped for
PromQL string literals, so a name can never break out of its label matcher.

Each preset query also has a grouped form (`grouped`): the same query for every service at once,
summed by the labels that tell services apart, from whose answer each service takes its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spillway.api.spec import MetricsSource, Queries
from spillway.ports import GroupedQuery

SIGNALS = ("queue_depth", "in_flight", "arrival_rate", "latency")
LatencyKind = Literal["quantile", "mean"]

# HAProxy's built-in exporter (`http-request use-service prometheus-exporter`):
# https://github.com/haproxy/haproxy/blob/master/addons/promex/README
# What a real HAProxy 2.6 taught (tests/integration/test_haproxy_signals.py):
# - The exporter labels only `proxy` (and `server`). Which service and namespace a series
#   belongs to comes from the scrape: Kubernetes pod discovery relabeled as the community
#   chart's `kubernetes-pods` job does (`namespace` from the pod's namespace, every pod label
#   mapped, so `app.kubernetes.io/instance` becomes `app_kubernetes_io_instance`). Spillway's
#   balancer pods carry app.kubernetes.io/instance=<service>, and the backend is named after it.
# - `backend_current_sessions` counts queued and served requests; the served ones are the
#   servers' `current_sessions`.
# - With `hash-type consistent` or cookie persistence requests wait in the server's own queue
#   (`server_current_queue`) and the backend's queue reads 0: the queue is both.
# - `response_time_average` is server time only; `total_time_average` includes the queue.
#   Both are means over the last 1024 requests (no quantile), are read only once a balancer has
#   served 1024 (before that 2.6 divides a partial sum by 1024), and freeze when traffic stops:
#   the latency is only read from a balancer whose request counter moved within the window,
#   and is a mean of the balancers' means weighted by their requests.
# - A range vector outlives its target: `rate(x[1m])` answered for a minute after HAProxy died,
#   while an instant selector is empty from the first failed scrape (Prometheus writes
#   staleness markers then). `and <counter>` keeps only series whose target still answers.
_HAPROXY_MATCHERS = 'namespace="{namespace}", app_kubernetes_io_instance="{service}", proxy="{service}"'
_HAPROXY_WINDOW = "1m"
_HAPROXY_SAMPLES = 1024  # TIME_STATS_SAMPLES: the requests HAProxy's time averages span


@dataclass(frozen=True)
class _Form:
    """How a preset names its series. One service's form selects them with `matchers` (holding
    placeholders) and sums them into one number; the grouped form selects every service's and
    sums `by` the labels that tell services apart, one row per service. A query is written once,
    as a function of its form, so that both forms always say the same thing.

    Why grouping is exact: every step between the selector and the outer sum works series by
    series (rate, increase, clamp_min, `*`, `/`, `and`, `> 0`, label_replace) and keeps the
    grouping labels, or aggregates by labels that include them (an inner `sum by`,
    histogram_quantile's groups), so selecting one service's series
    first or taking its row afterwards gives the same series, the same arithmetic, the same number
    (and no series exactly when no row)."""

    matchers: str = ""
    by: tuple[tuple[str, str], ...] = ()  # (label, the placeholder its value is in a service's row)
    # The pod label names the Deployment: `<deployment>-<replicaset hash>-<suffix>`, whose last
    # two parts hold no `-`, so the anchored `(.+)` below captures exactly the name the
    # one-service selector's `pod=~"(<deployment>)-[a-z0-9]+-[a-z0-9]+"` asks for.
    by_deployment: bool = False

    def total(self, *inner: str) -> str:
        """The aggregation prefix: `sum` for one service, `sum by (...) ` grouped."""
        labels = (*(label for label, _ in self.by), *inner)
        return f"sum by ({', '.join(labels)}) " if labels else "sum"

    def series(self, metric: str, *matchers: str) -> str:
        return self._deployment(self._select(metric, matchers))

    def over(self, function: str, metric: str, window: str, *matchers: str) -> str:
        """`function(metric{...}[window])`, e.g. a rate."""
        return self._deployment(f"{function}({self._select(metric, matchers)}[{window}])")

    def _select(self, metric: str, matchers: tuple[str, ...]) -> str:
        joined = ", ".join(m for m in (self.matchers, *matchers) if m)
        return f"{metric}{{{joined}}}" if joined else metric

    def _deployment(self, expression: str) -> str:
        if not self.by_deployment:
            return expression
        return f'label_replace({expression}, "{DEPLOYMENT_LABEL}", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+")'


DEPLOYMENT_LABEL = "spillway_deployment"  # added by the grouped queries, never read from a scrape


def _haproxy(form: _Form) -> dict[str, str]:
    requests = form.series("haproxy_backend_http_requests_total")
    # The mean is over the last 1024 requests; before a balancer has served that many, HAProxy
    # 2.6 still divides their sum by 1024 (it read 0.23 s where clients waited 0.96 s), and
    # later versions divide by the count: read it only once its window is full.
    total_time = (f"({form.series('haproxy_backend_total_time_average_seconds')}"
                  f" and ({requests} > {_HAPROXY_SAMPLES}))")
    moved = f"({form.over('increase', 'haproxy_backend_http_requests_total', _HAPROXY_WINDOW)} > 0)"
    total = form.total()
    return {
        "queue_depth": (f"{total}({form.series('haproxy_backend_current_queue')})"
                        f" + {total}({form.series('haproxy_server_current_queue')})"),
        "in_flight": f"{total}({form.series('haproxy_server_current_sessions')})",
        "arrival_rate": f"{total}({form.over('rate', 'haproxy_backend_http_requests_total', _HAPROXY_WINDOW)}"
                        f" and {requests})",
        "latency": f"{total}({total_time} * {moved}) / {total}({moved} and {total_time})",
    }


# Spring Boot Actuator with Micrometer's Tomcat binder (server.tomcat.mbeanregistry.enabled=true)
# and percentile histograms (management.metrics.distribution.percentiles-histogram.http.server.requests=true).
# What a real Tomcat 10.1 (NIO connector, Spring Boot 3.5) taught, 40 clients on 8 threads
# (tests/integration/test_session_app.py, examples/session-app):
# - `tomcat_connections_current_connections` is the connection limit's count: the open
#   connections plus the one the acceptor counts before each accept (1 idle, 41 with 40 open).
# - `tomcat_connections_keepalive_current_connections` is every socket registered with the
#   poller, served or waiting, not only idle ones (40 with 40 open and 8 busy): current minus busy
#   minus keep-alive is at most 1 - busy, so it always read 0.
# - Tomcat has no queue gauge. A request waits for a thread only while every thread is busy;
#   then the open connections no thread serves are waiting (a saturated server's clients leave
#   few idle). So per connector (`name`) of a pod: open - busy while busy >= max threads, else 0.
# - `http_server_requests_seconds` starts when a thread takes the request: the time waited in
#   Tomcat's queue is not in it (clients waited 7.5 s on average, the histogram's p95 read 2.13 s).
#   The latency is the service time; waiting shows in the queue.
# - Connections beyond max-connections wait in the kernel's accept queue, unseen by Tomcat.
# - On the app's own port, /actuator/prometheus waits in that queue too (8 to 13 s there): the
#   actuator wants a port of its own (management.server.port), whose connector is not in these
#   series and whose requests are not in http_server_requests.
def _spring_boot(form: _Form) -> dict[str, str]:
    per_connector = form.total("pod", "name")
    connections = f"({per_connector}({form.series('tomcat_connections_current_connections')}) - 1)"
    busy = f"{per_connector}({form.series('tomcat_threads_busy_threads')})"
    threads = f"{per_connector}({form.series('tomcat_threads_config_max_threads')})"
    return {
        "queue_depth": f"{form.total()}(clamp_min({connections} - {busy}, 0) * ({busy} >= bool {threads}))",
        "in_flight": f"{form.total()}({form.series('tomcat_threads_busy_threads')})",
        "arrival_rate": f"{form.total()}({form.over('rate', 'http_server_requests_seconds_count', '1m')})",
        "latency": (f"histogram_quantile({{quantile}}, {form.total('le')}"
                    f"({form.over('rate', 'http_server_requests_seconds_bucket', '1m')}))"),
    }


# Istio's standard metrics from the sidecars, plus Envoy's pending-request gauge of the
# inbound cluster (needs `envoy_cluster_upstream_rq_pending_active` in proxyStatsMatcher).
# The destination's series are pinned to the service's namespace twice: by the labels the sidecar
# writes and by the scrape target's `namespace`, so that a pod in another namespace exporting
# series that name this service (any pod can) counts for nothing.
_ISTIO_DEST = ('namespace="{namespace}", destination_service_namespace="{namespace}", '
               'destination_service_name="{service}", reporter="destination"')
_INBOUND = 'cluster_name=~"inbound.*"'


def _istio(pods: _Form, destination: _Form) -> dict[str, str]:
    return {
        "queue_depth": f"{pods.total()}({pods.series('envoy_cluster_upstream_rq_pending_active', _INBOUND)})",
        "in_flight": f"{pods.total()}({pods.series('envoy_cluster_upstream_rq_active', _INBOUND)})",
        "arrival_rate": f"{destination.total()}({destination.over('rate', 'istio_requests_total', '1m')})",
        "latency": (f"histogram_quantile({{quantile}}, {destination.total('le')}"
                    f"({destination.over('rate', 'istio_request_duration_milliseconds_bucket', '1m')})) / 1000"),
    }


_PODS = _Form(matchers="{selector}")
# `{deployment}` is known only for a service with one Deployment: the pods of several (pools)
# make one number only together, and a quantile of their union is no sum of rows.
_PODS_GROUPED = _Form(by=(("namespace", "{namespace}"), (DEPLOYMENT_LABEL, "{deployment}")), by_deployment=True)
_DESTINATION_GROUPED = _Form(matchers='reporter="destination"',
                             by=(("namespace", "{namespace}"), ("destination_service_namespace", "{namespace}"),
                                 ("destination_service_name", "{service}")))
_HAPROXY_GROUPED = _Form(by=(("namespace", "{namespace}"), ("app_kubernetes_io_instance", "{service}"),
                             ("proxy", "{service}")))

PRESETS: dict[MetricsSource, dict[str, str]] = {
    "HAProxy": _haproxy(_Form(matchers=_HAPROXY_MATCHERS)),
    "SpringBoot": _spring_boot(_PODS),
    "Istio": _istio(_PODS, _Form(matchers=_ISTIO_DEST)),
    "Custom": {},
}

# The same queries for every service at once, each with the form that says which row is whose.
GROUPED: dict[MetricsSource, dict[str, tuple[str, _Form]]] = {
    "HAProxy": {s: (q, _HAPROXY_GROUPED) for s, q in _haproxy(_HAPROXY_GROUPED).items()},
    "SpringBoot": {s: (q, _PODS_GROUPED) for s, q in _spring_boot(_PODS_GROUPED).items()},
    "Istio": {s: (q, _PODS_GROUPED if s in ("queue_depth", "in_flight") else _DESTINATION_GROUPED)
              for s, q in _istio(_PODS_GROUPED, _DESTINATION_GROUPED).items()},
    "Custom": {},
}

# What each preset's latency query measures. Custom latency queries are expected to be
# quantiles (the `{quantile}` placeholder is there for them).
_LATENCY_KINDS: dict[MetricsSource, LatencyKind] = {
    "HAProxy": "mean", "SpringBoot": "quantile", "Istio": "quantile", "Custom": "quantile",
}


def latency_kind(source: MetricsSource) -> LatencyKind:
    """Whether the preset's latency is a quantile (at `targets.latency.quantile`) or a mean."""
    return _LATENCY_KINDS[source]


def escape(value: str) -> str:
    """A value safe inside a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector_matchers(namespace: str, deployments: list[str]) -> str:
    """Matchers for the app's pods by their names (`<deployment>-<replicaset hash>-<suffix>`),
    which every common scrape setup keeps as the `pod` label."""
    names = "|".join(d.replace(".", r"\.") for d in sorted(deployments))
    return f'namespace="{escape(namespace)}", pod=~"{escape(f"({names})-[a-z0-9]+-[a-z0-9]+")}"'


def render(source: MetricsSource, overrides: Queries, *, namespace: str, service: str,
           deployments: list[str], quantile: float) -> dict[str, str]:
    """The query of each configured signal; a signal with no query is not configured."""
    chosen = dict(PRESETS[source])
    for signal in SIGNALS:
        override = getattr(overrides, signal)
        if override:
            chosen[signal] = override
    values = {
        "{namespace}": escape(namespace),
        "{service}": escape(service),
        "{selector}": selector_matchers(namespace, deployments),
        "{quantile}": repr(quantile),
    }
    rendered = {}
    for signal, template in chosen.items():
        query = template
        for placeholder, value in values.items():
            query = query.replace(placeholder, value)
        rendered[signal] = query
    return rendered


def grouped(source: MetricsSource, overrides: Queries, *, namespace: str, service: str, deployments: list[str],
            quantile: float) -> dict[str, GroupedQuery]:
    """The grouped query of each preset signal that `overrides` leaves alone, with this service's
    row, where one is exact for it; any other configured signal is read on its own (`render`).
    Row values are the names themselves, as Prometheus' answer carries them: no escaping."""
    names = {"{namespace}": namespace, "{service}": service}
    if len(deployments) == 1:
        names["{deployment}"] = deployments[0]
    chosen = {}
    for signal, (template, form) in GROUPED[source].items():
        if getattr(overrides, signal) or any(placeholder not in names for _, placeholder in form.by):
            continue
        chosen[signal] = GroupedQuery(query=template.replace("{quantile}", repr(quantile)),
                                      row=tuple((label, names[placeholder]) for label, placeholder in form.by))
    return chosen
