"""Instant queries against Prometheus, one per signal, on prometheus-api-client.

Each answer becomes a number or a named reason why there is none: an empty result, NaN, a
stale sample, several series where one was expected, or a failed query are all *missing*,
never zero, so that missing data can never scale a service down. Credentials come in as
values already read from Secrets and are never logged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from spillway import telemetry
from spillway.ports import Credentials, Reading


def interpret(result: list[dict[str, Any]], now: float, max_age_seconds: float) -> float | str:
    """An instant-query result as one number, or the reason it cannot be one."""
    if not result:
        return "the query returned no series"
    if len(result) > 1:
        return f"the query returned {len(result)} series; it must aggregate to one (use sum or max)"
    stamp, text = result[0]["value"]
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        return f"the query returned {text}"
    if now - float(stamp) > max_age_seconds:
        return f"the sample is {now - float(stamp):.0f}s old"
    if value < 0:
        return f"the query returned a negative value ({value:g})"
    return value


class PrometheusReader:
    """Reads every configured signal in one pass; a failure of one never hides the others."""

    def __init__(self, url: str, timeout_seconds: float, credentials: Credentials | None = None,
                 retries: int = 2, backoff_seconds: float = 0.2,
                 clock: Callable[[], float] = time.time) -> None:
        creds = credentials or Credentials()
        headers = {"Authorization": f"Bearer {creds.bearer_token}"} if creds.bearer_token else None
        retry = Retry(total=retries, backoff_factor=backoff_seconds, status_forcelist=(429, 502, 503, 504),
                      allowed_methods=("GET",), raise_on_status=False)
        self.timeout_seconds = timeout_seconds
        self.clock = clock
        self.client = PrometheusConnect(url=url.rstrip("/"), headers=headers, disable_ssl=creds.insecure_skip_verify,
                                        retry=retry, auth=creds.basic_auth, timeout=timeout_seconds)
        if creds.ca_file and not creds.insecure_skip_verify:
            self.client._session.verify = creds.ca_file

    def read(self, queries: dict[str, str], max_age_seconds: float) -> Reading:
        values: dict[str, float] = {}
        missing: dict[str, str] = {}
        for signal, query in queries.items():
            answer = self._query(signal, query, max_age_seconds)
            if isinstance(answer, str):
                missing[signal] = answer
            else:
                values[signal] = answer
        return Reading(values=values, missing=missing)

    def _query(self, signal: str, query: str, max_age_seconds: float) -> float | str:
        started = time.perf_counter()
        try:
            result = self.client.custom_query(query, params={"timeout": f"{self.timeout_seconds:g}s"},
                                              timeout=self.timeout_seconds)
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError) as err:
            telemetry.QUERY_ERRORS.labels(signal=signal).inc()
            return f"the query failed: {_short(err)}"
        finally:
            telemetry.QUERY_SECONDS.labels(signal=signal).observe(time.perf_counter() - started)
        answer = interpret(result, self.clock(), max_age_seconds)
        if isinstance(answer, str):
            telemetry.QUERY_ERRORS.labels(signal=signal).inc()
        return answer


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:300]


class PrometheusSignals:
    """`spillway.ports.SignalSource` over Prometheus: one reader per endpoint and credentials."""

    def __init__(self) -> None:
        self.readers: dict[tuple[str, float, int], PrometheusReader] = {}

    def read(self, url: str, timeout_seconds: float, credentials: Credentials, queries: dict[str, str],
             max_age_seconds: float) -> Reading:
        key = (url, timeout_seconds, hash((credentials.bearer_token, credentials.basic_auth, credentials.ca_file,
                                           credentials.insecure_skip_verify)))
        if key not in self.readers:
            self.readers[key] = PrometheusReader(url, timeout_seconds, credentials)
        return self.readers[key].read(queries, max_age_seconds)
