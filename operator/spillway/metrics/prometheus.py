"""Instant queries against Prometheus, one per signal, on prometheus-api-client.

Each answer becomes a number or a named reason why there is none: an empty result, NaN, a
stale sample, several series where one was expected, a scalar, string or range-vector result,
an answer that does not parse, or a failed query are all *missing*, never zero, so that
missing data can never scale a service down; reading never raises. Credentials come in as
values already read from Secrets and are never logged.

An instant query's sample carries the evaluation time, not the scrape's: the age check below
catches a Prometheus answering for another moment (a skewed clock, a caching proxy), not a
dead exporter. That one is the queries' job (Prometheus' staleness markers empty an instant
selector from the first failed scrape; a range vector needs `and <instant selector>`).

Services that share a Prometheus, its credentials and a preset are read together: one grouped
query per signal (`presets.grouped`), asked once however many services' threads want it at
the same moment and shared for about a second (`SharedAnswers`); each service takes its own row,
read by the same rules as a one-service answer, so that the load on Prometheus stays flat as
services are added.
"""

from __future__ import annotations

import math
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from spillway import telemetry
from spillway.metrics.sharing import SharedAnswers
from spillway.ports import Credentials, GroupedQuery, Reading


def interpret(result: Any, now: float, max_age_seconds: float) -> float | str:
    """An instant-query result (the API's `data.result`) as one number, or the reason it cannot
    be one. Total: any shape of answer gives one or the other."""
    if not isinstance(result, list):
        return f"the answer is not a query result ({_clip(result)})"
    if not result:
        return "the query returned no series"
    if len(result) == 2 and not isinstance(result[0], dict):  # [time, "text"]: a scalar or a string
        kind = "a scalar" if _number(result[1]) is not None else "a string"
        return f"the query returned {kind} ({_clip(result[1])}), not a series; it must be an instant vector"
    if not all(isinstance(series, dict) for series in result):
        return f"the answer is not a query result ({_clip(result)})"
    if any("values" in series for series in result):
        return "the query returned a range vector; it must be an instant vector (e.g. rate(x[1m]), not x[1m])"
    if len(result) > 1:
        return f"the query returned {len(result)} series; it must aggregate to one (use sum or max)"
    sample = result[0].get("value")
    if not isinstance(sample, list) or len(sample) != 2:
        return f"the answer's sample is not [time, value] ({_clip(sample)})"
    stamp, value = _number(sample[0]), _number(sample[1])
    if stamp is None or value is None:
        return f"the answer's sample does not parse ({_clip(sample)})"
    if math.isnan(value) or math.isinf(value):
        return f"the query returned {sample[1]}"
    if now - stamp > max_age_seconds:
        return f"the sample is {now - stamp:.0f}s old"
    if value < 0:
        return f"the query returned a negative value ({value:g})"
    return value


def _number(text: Any) -> float | None:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        return None
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# The most an answer may hold, decoded: a grouped query over a thousand services answers a few
# hundred kilobytes; an endpoint that sends more is refused rather than held in memory.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class AnswerTooLarge(requests.RequestException):
    """An answer over MAX_ANSWER_BYTES."""


class BoundedSession(requests.Session):
    """A requests session whose every answer is read whole within `deadline_seconds` of the
    request and up to `max_bytes`: a per-read timeout alone lets a server that trickles a byte at
    a time hold a reader forever, and an unbounded body lets it fill the operator's memory."""

    def __init__(self, deadline_seconds: float, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        super().__init__()
        self.deadline_seconds, self.max_bytes = deadline_seconds, max_bytes

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        began = time.monotonic()
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        body = bytearray()
        try:
            while True:
                if time.monotonic() - began > self.deadline_seconds:
                    raise requests.Timeout(f"no whole answer within {self.deadline_seconds:g}s")
                chunk = response.raw.read1(64 * 1024, decode_content=True)  # what has arrived, at once
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes:
                    raise AnswerTooLarge(f"the answer is over {self.max_bytes} bytes")
        finally:
            response.close()
        response._content = bytes(body)  # read here, as `response.content` would have
        response._content_consumed = True
        return response


class TrustAdapter(HTTPAdapter):
    """Verifies servers against the CA in `context` (loaded from memory) and that CA alone:
    requests would otherwise add its default bundle, or need the CA as a file."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: Any, cert: Any = None
                                             ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        pool["ssl_context"] = self.context
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None


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
        self.retries, self.backoff_seconds = retries, backoff_seconds
        self.clock = clock
        session = BoundedSession(timeout_seconds)
        session.verify = not creds.insecure_skip_verify
        self.client = PrometheusConnect(url=url.rstrip("/"), headers=headers, disable_ssl=creds.insecure_skip_verify,
                                        retry=retry, auth=creds.basic_auth, timeout=timeout_seconds, session=session)
        if creds.ca_pem and not creds.insecure_skip_verify:
            # After the client's own adapter, at the same prefix: this one replaces it.
            session.mount(self.client.url, TrustAdapter(ssl.create_default_context(cadata=creds.ca_pem),
                                                        max_retries=retry))

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
        result, failure = self.fetch(signal, query, scope="service")
        answer = failure if failure is not None else interpret(result, self.clock(), max_age_seconds)
        if isinstance(answer, str):
            telemetry.QUERY_ERRORS.labels(signal=signal).inc()
        return answer

    def fetch(self, signal: str, query: str, scope: str) -> tuple[Any, str | None]:
        """One instant query's `data.result`, or why there is none. Never raises."""
        started = time.perf_counter()
        telemetry.QUERIES.labels(signal=signal, scope=scope).inc()
        try:
            return self.client.custom_query(query, params={"timeout": f"{self.timeout_seconds:g}s"},
                                            timeout=self.timeout_seconds), None
        # ValueError: a body that is not JSON; KeyError, TypeError, IndexError: JSON without
        # `data.result` where the client looks for it.
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError, TypeError,
                IndexError) as err:
            return None, f"the query failed: {_reason(err, self.timeout_seconds)}"
        finally:
            telemetry.QUERY_SECONDS.labels(signal=signal).observe(time.perf_counter() - started)

    @property
    def longest_seconds(self) -> float:
        """The longest a fetch can take: every attempt timing out, plus the backoffs."""
        return float(self.timeout_seconds * (self.retries + 1) + self.backoff_seconds * 2.0 ** self.retries)


_STATUS = re.compile(r"HTTP Status Code (\d{3})")


def _reason(err: Exception, timeout_seconds: float) -> str:
    """Why a query failed, in a short fixed phrase: never the server's body (a condition message
    must not carry what any endpoint a tenant names chooses to send) nor an exception's text."""
    # With retries spent, urllib3 wraps a read timeout in MaxRetryError and requests in ConnectionError.
    cause = getattr(err.args[0], "reason", None) if err.args else None
    # (urllib3's NewConnectionError, a refused connection, is a ConnectTimeoutError by class.)
    timed_out = (isinstance(cause, urllib3.exceptions.TimeoutError)
                 and not isinstance(cause, urllib3.exceptions.NewConnectionError))
    if isinstance(err, requests.Timeout) or timed_out:
        return f"no answer within {timeout_seconds:g}s"
    if isinstance(err, AnswerTooLarge):
        return f"the answer is over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB"
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS verification failed"
    if isinstance(err, requests.ConnectionError):
        return "the connection failed"
    if isinstance(err, ValueError):  # requests' JSONDecodeError is a RequestException too
        return "the answer is not JSON"
    if isinstance(err, requests.RequestException):
        return f"the request failed ({type(err).__name__})"
    if isinstance(err, PrometheusApiClientException):
        status = _STATUS.search(str(err))
        return f"HTTP {status.group(1)}" if status else "the server refused the query"
    return "the answer has no data.result"


@dataclass(frozen=True)
class Grouped:
    """A grouped query's answer with its series indexed by the values of the row labels, or why
    it has none for anyone: a failed query (`failure`), or an answer that is no list of instant
    series (`rows` None: `interpret` names its shape for every service)."""

    result: Any
    rows: dict[tuple[str, ...], list[dict[str, Any]]] | None
    failure: str | None = None

    @classmethod
    def of(cls, result: Any, failure: str | None, labels: tuple[str, ...]) -> Grouped:
        if failure is not None:
            return cls(None, None, failure)
        if not isinstance(result, list) or not all(isinstance(s, dict) and "values" not in s for s in result):
            return cls(result, None)
        rows: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for series in result:
            metric = series.get("metric")
            names = metric if isinstance(metric, dict) else {}
            rows.setdefault(tuple(str(names.get(label, "")) for label in labels), []).append(series)
        return cls(result, rows)

    def answer(self, values: tuple[str, ...], now: float, max_age_seconds: float) -> float | str:
        """One service's reading: its row as a one-service query would have answered (no row:
        no series), read by the same rules."""
        if self.failure is not None:
            return self.failure
        if self.rows is None:
            return interpret(self.result, now, max_age_seconds)
        return interpret(self.rows.get(values, []), now, max_age_seconds)


# A reader (its connections and the credentials it holds) unused this long is dropped.
READER_IDLE_SECONDS = 600.0

# Grouped answers are shared for at most this long (and at most a quarter of the asker's interval,
# so a service reading every 2 s never acts on a reading 1 s old); at any count of services each
# grouped query then runs about once a second per Prometheus, credentials and quantile.
SHARE_SECONDS = 1.0


class PrometheusSignals:
    """`spillway.ports.GroupedSignalSource` over Prometheus: one reader per endpoint and
    credentials, and one shared answer per grouped query."""

    def __init__(self, share_seconds: float = SHARE_SECONDS, idle_seconds: float = READER_IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.share_seconds, self.idle_seconds, self.clock = share_seconds, idle_seconds, clock
        self.readers: dict[tuple[str, float, Credentials], PrometheusReader] = {}
        self._used: dict[tuple[str, float, Credentials], float] = {}
        self._lock = threading.Lock()
        self.grouped: SharedAnswers[Grouped] = SharedAnswers(keep_seconds=share_seconds)

    def read(self, url: str, timeout_seconds: float, credentials: Credentials, queries: dict[str, str],
             max_age_seconds: float) -> Reading:
        return self._reader(url, timeout_seconds, credentials).read(queries, max_age_seconds)

    def read_grouped(self, url: str, timeout_seconds: float, credentials: Credentials,
                     queries: dict[str, GroupedQuery], max_age_seconds: float,
                     interval_seconds: float) -> Reading:
        reader = self._reader(url, timeout_seconds, credentials)
        fresh_seconds = min(self.share_seconds, interval_seconds / 4)
        values: dict[str, float] = {}
        missing: dict[str, str] = {}
        for signal, grouped in queries.items():
            labels = tuple(label for label, _ in grouped.row)

            def fetch(signal: str = signal, query: str = grouped.query, labels: tuple[str, ...] = labels) -> Grouped:
                return Grouped.of(*reader.fetch(signal, query, scope="grouped"), labels)

            # Credentials are compared by value and print as <redacted>: the key holds no secret in a repr.
            key = (url, credentials, grouped.query)
            try:
                shared, reused = self.grouped.get(key, fetch, fresh_seconds, reader.longest_seconds + 1)
            except TimeoutError as err:
                answer: float | str = f"the query failed: {err}"
            else:
                if reused:
                    telemetry.SHARED_READS.labels(signal=signal).inc()
                answer = shared.answer(tuple(value for _, value in grouped.row), reader.clock(), max_age_seconds)
            if isinstance(answer, str):
                telemetry.QUERY_ERRORS.labels(signal=signal).inc()
                missing[signal] = answer
            else:
                values[signal] = answer
        return Reading(values=values, missing=missing)

    def _reader(self, url: str, timeout_seconds: float, credentials: Credentials) -> PrometheusReader:
        key = (url, timeout_seconds, credentials)  # by value; prints as <redacted>
        with self._lock:
            now = self.clock()
            # A reader nobody used for idle_seconds goes, with its connections (and the
            # credentials it holds): URLs and Secrets come and go with the ScalableServices.
            for stale in [k for k, used in self._used.items() if now - used > self.idle_seconds and k != key]:
                self.readers.pop(stale).client.close()
                del self._used[stale]
            reader = self.readers.get(key)
            if reader is None:
                reader = self.readers[key] = PrometheusReader(url, timeout_seconds, credentials)
            self._used[key] = now
        return reader
