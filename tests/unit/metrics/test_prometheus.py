"""The reader against a real HTTP server on loopback that speaks the Prometheus query API."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spillway.metrics.prometheus import MAX_ANSWER_BYTES, PrometheusReader, PrometheusSignals, interpret
from spillway.ports import Credentials

NOW = 1_800_000_000.0


class Raw:
    """A response body sent as is, whatever it holds."""

    def __init__(self, body: bytes) -> None:
        self.body = body


class Trickle:
    """A body sent a byte every `every` seconds: each read gets data long before a read times out."""

    def __init__(self, body: bytes, every: float) -> None:
        self.body, self.every = body, every


class Script:
    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, Any, float]]] = {}  # query -> [(status, result, delay)]
        self.seen: list[dict[str, Any]] = []


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            query = parse_qs(urlparse(self.path).query)["query"][0]
            script.seen.append({"query": query, "auth": self.headers.get("Authorization")})
            queue = script.answers[query]
            status, result, delay = queue.pop(0) if len(queue) > 1 else queue[0]
            time.sleep(delay)
            if isinstance(result, Trickle):  # headers, then a byte at a time: bounded, ends by itself
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(result.body)))
                    self.end_headers()
                    for byte in result.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(result.every)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if isinstance(result, Raw):
                body = result.body
            else:
                body = json.dumps({"status": "success", "data": {"resultType": _type_of(result),
                                                                  "result": result}}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


def _type_of(result: Any) -> str:
    if result and not isinstance(result[0], dict):
        return "scalar"
    return "matrix" if result and "values" in result[0] else "vector"


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
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


MATRIX = [{"metric": {"proxy": "web"}, "values": [[NOW - 1, "1"], [NOW, "2"]]}]


@pytest.mark.parametrize(("result", "expected"), [
    (MATRIX, "the query returned a range vector; it must be an instant vector (e.g. rate(x[1m]), not x[1m])"),
    ([NOW, "4"], "the query returned a scalar ('4'), not a series; it must be an instant vector"),
    ([NOW, "up"], "the query returned a string ('up'), not a series; it must be an instant vector"),
    (sample("many"), "the answer's sample does not parse ([1800000000.0, 'many'])"),
    ([{"metric": {}, "value": ["soon", "1"]}], "the answer's sample does not parse (['soon', '1'])"),
    ([{"metric": {}, "value": [NOW, True]}], "the answer's sample does not parse ([1800000000.0, True])"),
    ([{"metric": {}}], "the answer's sample is not [time, value] (None)"),
    ([{"metric": {}, "value": [NOW]}], "the answer's sample is not [time, value] ([1800000000.0])"),
    (None, "the answer is not a query result (None)"),
    ({"resultType": "vector"}, "the answer is not a query result ({'resultType': 'vector'})"),
    ([1, 2, 3], "the answer is not a query result ([1, 2, 3])"),
])
def test_interpret_turns_any_other_shape_into_a_missing_signal(result: Any, expected: str) -> None:
    assert interpret(result, NOW, max_age_seconds=30) == expected


@pytest.mark.parametrize(("answer", "reason"), [
    (MATRIX, "the query returned a range vector"),
    ([NOW, "4"], "the query returned a scalar"),
    ([NOW, "text"], "the query returned a string"),
    (Raw(b"<html>proxy error</html>"), "the query failed"),
    (Raw(b'{"status": "success", "data": null}'), "the query failed"),
    (Raw(b'{"status": "error", "errorType": "bad_data"}'), "the query failed"),
    (Raw(b'{"status": "success", "data": {"resultType": "vector", "result": null}}'),
     "the answer is not a query result"),
])
def test_an_odd_answer_from_the_server_is_missing_and_never_raises(server: tuple[str, Script], answer: Any,
                                                                   reason: str) -> None:
    url, script = server
    script.answers = {"odd": [(200, answer, 0)], "fine": [(200, sample("3"), 0)]}
    reading = PrometheusReader(url, 2, retries=0, clock=lambda: NOW).read({"latency": "odd", "queue_depth": "fine"}, 30)
    assert reading.values == {"queue_depth": 3.0}
    assert reading.missing["latency"].startswith(reason)


@pytest.mark.parametrize(("status", "answer", "reason"), [
    (500, Raw(b"<html>internal: tenant-secret-0451 at db.internal:5432</html>"), "the query failed: HTTP 500"),
    (400, Raw(b'{"status": "error", "error": "tenant-secret-0451"}'), "the query failed: HTTP 400"),
    (200, Raw(b"tenant-secret-0451 is not json"), "the query failed: the answer is not JSON"),
    (200, Raw(b'{"status": "success", "data": {"tenant-secret-0451": 1}}'),
     "the query failed: the answer has no data.result"),
])
def test_a_failed_query_is_named_by_a_fixed_reason_never_the_servers_body(
        server: tuple[str, Script], status: int, answer: Any, reason: str) -> None:
    """Whatever an endpoint a tenant names sends back stays out of the condition message."""
    url, script = server
    script.answers = {"q": [(status, answer, 0)]}
    reading = PrometheusReader(url, 2, retries=0, clock=lambda: NOW).read({"latency": "q"}, 30)
    assert reading.missing == {"latency": reason}


def test_a_timeout_and_a_refused_connection_are_named_by_fixed_reasons(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"slow": [(200, sample("9"), 1.5)]}
    assert PrometheusReader(url, 0.3, retries=0, clock=lambda: NOW).read({"latency": "slow"}, 30).missing == {
        "latency": "the query failed: no answer within 0.3s"}
    with socket.socket() as bound:  # bound, never listening: a connection to it is refused
        bound.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{bound.getsockname()[1]}"
        assert PrometheusReader(refused, 2, retries=0).read({"latency": "q"}, 30).missing == {
            "latency": "the query failed: the connection failed"}


def test_a_server_that_trickles_its_answer_is_cut_at_the_querys_deadline(server: tuple[str, Script]) -> None:
    url, script = server
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": sample("9")}}).encode()
    script.answers = {"slow": [(200, Trickle(body[:40], every=0.1), 0)]}  # 4 s in all, a byte each 0.1 s
    began = time.monotonic()
    reading = PrometheusReader(url, 1.0, retries=0, clock=lambda: NOW).read({"latency": "slow"}, 30)
    assert reading.missing == {"latency": "the query failed: no answer within 1s"}
    assert time.monotonic() - began < 2.0


def test_an_answer_over_the_cap_is_refused_not_held(server: tuple[str, Script]) -> None:
    url, script = server
    padding = "x" * (MAX_ANSWER_BYTES + 1)
    script.answers = {"big": [(200, Raw(json.dumps({"status": "success", "padding": padding}).encode()), 0)],
                      "fine": [(200, sample("3"), 0)]}
    reading = PrometheusReader(url, 5, retries=0, clock=lambda: NOW).read({"latency": "big", "queue_depth": "fine"}, 30)
    assert reading.missing == {"latency": "the query failed: the answer is over 8 MiB"}
    assert reading.values == {"queue_depth": 3.0}


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


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_against_the_ca_from_the_secret(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    script = Script()
    script.answers = {"q": [(200, sample("3"), 0)]}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{httpd.server_address[1]}"
    try:
        trusted = PrometheusReader(url, 2, Credentials(ca_pem=Path(cert).read_text()), retries=0, clock=lambda: NOW)
        assert trusted.read({"queue_depth": "q"}, 30).values == {"queue_depth": 3.0}
        untrusted = PrometheusReader(url, 2, retries=0, clock=lambda: NOW).read({"queue_depth": "q"}, 30)
        assert untrusted.values == {} and untrusted.missing == {"queue_depth": "the query failed: TLS verification failed"}
        (tmp_path / "other").mkdir()
        other, _ = _self_signed(tmp_path / "other")  # another CA: the one named is the only one trusted
        elsewhere = PrometheusReader(url, 2, Credentials(ca_pem=Path(other).read_text()), retries=0, clock=lambda: NOW)
        assert elsewhere.read({"queue_depth": "q"}, 30).missing == {
            "queue_depth": "the query failed: TLS verification failed"}
        skipping = PrometheusReader(url, 2, Credentials(insecure_skip_verify=True), retries=0, clock=lambda: NOW)
        assert skipping.read({"queue_depth": "q"}, 30).values == {"queue_depth": 3.0}
    finally:
        httpd.shutdown()
        httpd.server_close()


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_a_reader_unused_for_ten_minutes_is_dropped_with_its_credentials(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = {"q": [(200, sample("3"), 0)]}
    now = [1000.0]
    signals = PrometheusSignals(clock=lambda: now[0])
    secret = Credentials(bearer_token="kept-only-while-used")
    assert signals.read(url, 2, secret, {"queue_depth": "q"}, 1e12).values == {"queue_depth": 3.0}
    now[0] += 599
    signals.read(url, 3, Credentials(), {"queue_depth": "q"}, 1e12)
    assert len(signals.readers) == 2
    now[0] += 2  # the first reader has now been idle 601 s
    signals.read(url, 3, Credentials(), {"queue_depth": "q"}, 1e12)
    assert [key[2] for key in signals.readers] == [Credentials()]
