"""The reader against a real HTTP server on loopback that speaks the Prometheus query API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from spillway.metrics.prometheus import PrometheusReader, interpret
from spillway.ports import Credentials

NOW = 1_800_000_000.0


class Script:
    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, Any, float]]] = {}  # query -> [(status, result, delay)]
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            query = parse_qs(urlparse(self.path).query)["query"][0]
            script.seen.append({"query": query, "auth": self.headers.get("Authorization")})
            queue = script.answers[query]
            status, result, delay = queue.pop(0) if len(queue) > 1 else queue[0]
            time.sleep(delay)
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def sample(value: str, at: float = NOW) -> list[dict[str, Any]]:
    return [{"metric": {}, "value": [at, value]}]


@pytest.mark.parametrize(("result", "expected"), [
    (sample("42"), 42.0),
    (sample("0"), 0.0),
    ([], "the query returned no series"),
    (sample("NaN"), "the query returned NaN"),
    (sample("+Inf"), "the query returned +Inf"),
    (sample("3", at=NOW - 100), "the sample is 100s old"),
    (sample("-1"), "the query returned a negative value (-1)"),
    (sample("1") + sample("2"), "the query returned 2 series; it must aggregate to one (use sum or max)"),
])
def test_interpret_turns_every_odd_answer_into_a_missing_signal(result: list[dict[str, Any]],
                                                                 expected: float | str) -> None:
    assert interpret(result, NOW, max_age_seconds=30) == expected


def test_reads_each_signal_and_names_what_is_missing(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"q1": [(200, sample("7"), 0)], "q2": [(200, [], 0)]}
    reading = PrometheusReader(url, 2, clock=lambda: NOW).read({"queue_depth": "q1", "latency": "q2"}, 30)
    assert reading.values == {"queue_depth": 7.0}
    assert reading.missing == {"latency": "the query returned no series"}


def test_retries_a_503_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"q": [(503, [], 0), (200, sample("5"), 0)]}
    reading = PrometheusReader(url, 2, backoff_seconds=0.01, clock=lambda: NOW).read({"in_flight": "q"}, 30)
    assert reading.values == {"in_flight": 5.0}
    assert len(script.seen) == 2


def test_timeout_is_a_missing_signal_not_a_zero(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"slow": [(200, sample("9"), 1.5)]}
    reading = PrometheusReader(url, 0.3, retries=0, clock=lambda: NOW).read({"queue_depth": "slow"}, 30)
    assert reading.values == {}
    assert reading.missing["queue_depth"].startswith("the query failed")


def test_unreachable_prometheus_is_missing_for_every_signal() -> None:
    reader = PrometheusReader("http://127.0.0.1:9", 0.5, retries=0)
    reading = reader.read({"queue_depth": "a", "in_flight": "b"}, 30)
    assert set(reading.missing) == {"queue_depth", "in_flight"} and reading.values == {}


def test_bearer_token_is_sent_and_never_printed(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"q": [(200, sample("1"), 0)]}
    credentials = Credentials(bearer_token="s3cret-token")
    PrometheusReader(url, 2, credentials, clock=lambda: NOW).read({"queue_depth": "q"}, 30)
    assert script.seen[0]["auth"] == "Bearer s3cret-token"
    assert "s3cret" not in repr(credentials) and "s3cret" not in str(credentials)


def test_basic_auth_is_sent(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"q": [(200, sample("1"), 0)]}
    PrometheusReader(url, 2, Credentials(basic_auth=("ops", "pw")), clock=lambda: NOW).read({"queue_depth": "q"}, 30)
    assert script.seen[0]["auth"] == "Basic b3BzOnB3"
