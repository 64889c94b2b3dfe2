"""PromQL per signal, per metrics source, with the service's names filled in. Pure: no I/O.

Placeholders: `{namespace}`, `{service}` (the ScalableService's name, which is also its Service
and, for the HAProxy provider, its backend), `{selector}` (label matchers of the app's pods
by namespace and pod name, ready to paste inside braces) and `{quantile}`. Values are escaped for PromQL string literals, so
a name can never break out of its label matcher.
"""

from __future__ import annotations

from spillway.api.spec import MetricsSource, Queries

SIGNALS = ("queue_depth", "in_flight", "arrival_rate", "latency")

# HAProxy's built-in exporter (`http-request use-service prometheus-exporter`), backend metrics:
# https://github.com/haproxy/haproxy/blob/master/addons/promex/README
# It reports response time as an average over the last 1024 requests, not a quantile.
_HAPROXY = {
    "queue_depth": 'sum(haproxy_backend_current_queue{namespace="{namespace}", proxy="{service}"})',
    "in_flight": 'sum(haproxy_backend_current_sessions{namespace="{namespace}", proxy="{service}"})',
    "arrival_rate": 'sum(rate(haproxy_backend_http_requests_total{namespace="{namespace}", proxy="{service}"}[1m]))',
    "latency": 'max(haproxy_backend_response_time_average_seconds{namespace="{namespace}", proxy="{service}"})',
}

# Spring Boot Actuator with Micrometer's Tomcat binder and percentile histograms enabled
# (management.metrics.distribution.percentiles-histogram.http.server.requests=true).
# Tomcat exposes no queue gauge; waiting connections are those open and neither busy nor idle
# in keep-alive.
_SPRING_BOOT = {
    "queue_depth": (
        'sum(clamp_min(sum by (pod) (tomcat_connections_current_connections{{selector}})'
        ' - sum by (pod) (tomcat_threads_busy_threads{{selector}})'
        ' - sum by (pod) (tomcat_connections_keepalive_current_connections{{selector}}), 0))'
    ),
    "in_flight": "sum(tomcat_threads_busy_threads{{selector}})",
    "arrival_rate": "sum(rate(http_server_requests_seconds_count{{selector}}[1m]))",
    "latency": "histogram_quantile({quantile}, sum by (le) (rate(http_server_requests_seconds_bucket{{selector}}[1m])))",
}

# Istio's standard metrics from the sidecars, plus Envoy's pending-request gauge of the
# inbound cluster (needs `envoy_cluster_upstream_rq_pending_active` in proxyStatsMatcher).
_ISTIO_DEST = 'destination_service_namespace="{namespace}", destination_service_name="{service}", reporter="destination"'
_ISTIO = {
    "queue_depth": 'sum(envoy_cluster_upstream_rq_pending_active{{selector}, cluster_name=~"inbound.*"})',
    "in_flight": 'sum(envoy_cluster_upstream_rq_active{{selector}, cluster_name=~"inbound.*"})',
    "arrival_rate": "sum(rate(istio_requests_total{" + _ISTIO_DEST + "}[1m]))",
    "latency": (
        "histogram_quantile({quantile}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{"
        + _ISTIO_DEST + "}[1m]))) / 1000"
    ),
}

PRESETS: dict[MetricsSource, dict[str, str]] = {
    "HAProxy": _HAPROXY, "SpringBoot": _SPRING_BOOT, "Istio": _ISTIO, "Custom": {},
}


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
