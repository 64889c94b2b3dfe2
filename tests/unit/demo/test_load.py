"""The demo's load generator: its pure parts, then real runs against a small session app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from demo import load
from demo.load import Phase, Tally

ROOT = Path(__file__).resolve().parents[3]


# --- phases and arrivals ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, phase", [
    ("steady:60:20", Phase("steady", 60.0, 20.0)),
    ("surge:120:90.5", Phase("surge", 120.0, 90.5)),
    ("pause:5:0", Phase("pause", 5.0, 0.0)),
])
def test_a_phase_is_name_seconds_and_rate(text: str, phase: Phase) -> None:
    assert load.parse_phase(text) == phase


@pytest.mark.parametrize("text", ["steady:60", "steady:60:20:1", ":60:20", "steady:x:20", "steady:0:20",
                                  "steady:-1:20", "steady:60:-1", "steady:nan:20", "steady:60:inf", "long:1801:1",
                                  "drain:10:10"])
def test_a_malformed_or_unbounded_phase_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        load.parse_phase(text)


def test_the_phase_at_an_offset_starts_inclusive_and_none_follows_the_last() -> None:
    phases = [Phase("a", 10, 1), Phase("b", 5, 1)]
    assert [load.phase_at(phases, t) for t in (0, 9.99, 10, 14.99, 15, 100)] == [0, 0, 1, 1, None, None]


phase_lists = st.lists(st.builds(Phase, st.sampled_from(["a", "b", "c"]), st.floats(0.1, 30), st.floats(0, 50)),
                       min_size=1, max_size=4)


@given(phase_lists, st.one_of(st.none(), st.integers(0, 1000)))
def test_arrivals_are_ordered_and_inside_their_phase(phases: list[Phase], seed: int | None) -> None:
    rng = None if seed is None else random.Random(seed)
    times = list(load.arrivals(phases, rng))
    assert [t for t, _ in times] == sorted(t for t, _ in times)
    for offset, index in times:
        start = sum(p.seconds for p in phases[:index])
        assert start <= offset < start + phases[index].seconds + 1e-9
        assert phases[index].rps > 0


@given(phase_lists)
def test_even_arrivals_send_each_phase_its_rate_times_its_length(phases: list[Phase]) -> None:
    counts = Counter(index for _, index in load.arrivals(phases))
    for index, phase in enumerate(phases):
        assert abs(counts[index] - phase.seconds * phase.rps) <= 1


def test_poisson_arrivals_are_reproducible_and_keep_the_rate() -> None:
    phases = [Phase("long", 1000, 10)]
    first = list(load.arrivals(phases, random.Random(7)))
    assert first == list(load.arrivals(phases, random.Random(7)))
    assert abs(len(first) - 10_000) < 400  # four standard deviations


# --- the URL check ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://10.96.0.10:80", "http://10.111.255.1/",
                                 "http://10.244.3.4:8080", "http://10.245.0.1", "http://10.245.0.7:8080",
                                 "http://[::1]:9000", "http://10.96.0.10/prefix"])
def test_the_test_beds_addresses_are_allowed(url: str) -> None:
    assert load.refusal(url) is None and load.allowed(url)


@pytest.mark.parametrize("url", ["http://8.8.8.8", "http://10.0.0.1", "http://10.112.0.1", "http://10.246.0.1",
                                 "http://192.168.1.1", "http://localhost:8080", "http://example.com",
                                 "https://10.96.0.1", "ftp://127.0.0.1", "http://10.96.0.1/?x=1", "http://[::ffff:8.8.8.8]",
                                 "http://127.0.0.1:notaport", "http://", "10.96.0.1"])
def test_anything_else_is_refused_with_a_reason(url: str) -> None:
    assert load.refusal(url) and not load.allowed(url)


def test_the_cli_refuses_an_outside_url_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load.main(["--url", "http://8.8.8.8", "--phase", "a:1:1", "--log", str(tmp_path / "load.jsonl")])
    assert exited.value.code == 2
    assert "outside the test bed" in capsys.readouterr().err
    assert not (tmp_path / "load.jsonl").exists()



def test_allow_adds_exactly_one_address_not_its_neighbours() -> None:
    service = load.ipaddress.ip_address("34.118.224.10")  # a cluster's Service address outside the bed
    assert load.refusal("http://34.118.224.10:80") is not None
    assert load.refusal("http://34.118.224.10:80", (service,)) is None
    assert "outside the test bed" in (load.refusal("http://34.118.224.11:80", (service,)) or "")
    assert load.refusal("http://example.com", (service,)) is not None  # still no names


@pytest.mark.parametrize("value", ["34.118.224.0/20", "0.0.0.0/0", "example.com", ""])
def test_the_cli_allows_one_address_never_a_network_or_a_name(value: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load.main(["--url", "http://34.118.224.10", "--allow", value, "--phase", "a:1:1",
                   "--log", str(tmp_path / "load.jsonl")])
    assert exited.value.code == 2
    assert "not one IP address" in capsys.readouterr().err


def test_it_runs_as_a_lone_file_as_in_a_pod(tmp_path: Path) -> None:
    """demo.incluster mounts only this file into the load's pod: it must import nothing of the project."""
    lone = tmp_path / "load.py"
    lone.write_text((ROOT / "demo" / "load.py").read_text())
    # -I: no PYTHONPATH, no user site, no current directory; the repository is not on the path
    # (the editable install adds only operator/).
    result = subprocess.run([sys.executable, "-I", str(lone), "--help"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--allow ADDRESS" in result.stdout

# --- cookies ---------------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def test_set_cookies_are_merged_per_name_without_their_attributes() -> None:
    jar = load.merge_set_cookies({"SERVERID": "web-a"}, [
        "SESSION=YTVkNmQ2MjA=; Path=/; HttpOnly; SameSite=Lax", "SERVERID=web-b; path=/", "garbage", "=x"], NOW)
    assert jar == {"SERVERID": "web-b", "SESSION": "YTVkNmQ2MjA="}  # base64 padding kept
    assert load.cookie_header(jar) == "SERVERID=web-b; SESSION=YTVkNmQ2MjA="


@pytest.mark.parametrize("attributes, kept", [
    ("Max-Age=0", False), ("Max-Age=-1", False), ("Max-Age=60", True),
    ("Expires=Thu, 01 Jan 1970 00:00:00 GMT", False), ("Expires=Fri, 01 Jan 2100 00:00:00 GMT", True),
    ("Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True), ("Expires=never", True),
])
def test_an_expired_cookie_leaves_the_jar(attributes: str, kept: bool) -> None:
    jar = load.merge_set_cookies({"SESSION": "old"}, [f"SESSION=new; Path=/; {attributes}"], NOW)
    assert jar == ({"SESSION": "new"} if kept else {})


# --- quantiles and lines ---------------------------------------------------------------------------

latency_lists = st.lists(st.floats(0, 60, allow_nan=False), max_size=200)


def test_quantiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert [load.quantile(values, q) for q in (0.5, 0.95, 0.99, 1.0, 0.0)] == [50, 95, 99, 100, 1]
    assert load.quantile([], 0.95) is None


@given(latency_lists, st.floats(0, 1), st.floats(0, 1))
def test_a_quantile_is_one_of_the_values_and_grows_with_q(values: list[float], q: float, r: float) -> None:
    low, high = load.quantile(values, min(q, r)), load.quantile(values, max(q, r))
    if not values:
        assert low is None and high is None
    else:
        assert low in values and high in values and low is not None and high is not None and low <= high


@dataclass
class Second:
    sent: int
    latencies: list[float]
    errors: list[str]
    replicas: list[str] = field(default_factory=list)


seconds = st.builds(Second, st.integers(0, 100), latency_lists, st.lists(st.sampled_from(["503", "timeout",
                                                                                          "connection"])),
                    st.lists(st.sampled_from(["web-a", "web-b", "web-c"])))


@given(seconds)
def test_a_seconds_line_counts_what_completed_in_it(second: Second) -> None:
    tally = Tally(sent=second.sent, latencies=second.latencies, error_kinds=Counter(second.errors),
                  replicas=set(second.replicas))
    line = load.second_line(tally, t=NOW, phase="surge", target_rps=90, in_flight=3, logged_out=0, logins=200)
    assert json.loads(json.dumps(line)) == line  # plain JSON
    assert line["ok"] + line["errors"] == len(second.latencies) + len(second.errors)
    assert sum(line["error_kinds"].values()) == line["errors"] and line["sent"] == second.sent
    assert line["replicas_seen"] == len(set(second.replicas))
    if second.latencies:
        assert min(second.latencies) - 1e-4 <= line["p50"] <= line["p95"] <= line["p99"] <= max(second.latencies) + 1e-4
    else:
        assert line["p50"] is None and line["p95"] is None and line["p99"] is None


def test_an_empty_second_is_still_a_line() -> None:
    line = load.second_line(Tally(), t=NOW, phase="calm", target_rps=10, in_flight=0, logged_out=2, logins=202)
    assert line == {"t": NOW, "phase": "calm", "target_rps": 10, "sent": 0, "ok": 0, "errors": 0, "error_kinds": {},
                    "p50": None, "p95": None, "p99": None, "in_flight": 0, "logged_out": 2, "logins": 202,
                    "login_errors": 0, "replicas_seen": 0}


@settings(deadline=None)  # builds whole logs; a busy machine must not fail it
@given(st.lists(seconds, min_size=1, max_size=4))
def test_the_summary_totals_its_phases(per_phase: list[Second]) -> None:
    phases = [Phase(f"p{i}", 10.0, 5.0) for i in range(len(per_phase))]
    tallies = [Tally(sent=s.sent, latencies=s.latencies, error_kinds=Counter(s.errors)) for s in per_phase]
    line = load.summary_line(phases, tallies, started_at=NOW, t=NOW + 50, duration_seconds=40.5, logged_out=0,
                             logins=3, login_errors=0, params={"users": 3})
    assert line["summary"] is True and line["users"] == 3
    for key in ("sent", "ok", "errors"):
        assert line[key] == sum(p[key] for p in line["phases"])
    assert [p["start"] for p in line["phases"]] == [NOW + 10 * i for i in range(len(phases))]


# --- real runs -------------------------------------------------------------------------------------

@dataclass
class SessionApp:
    """The session app's contract, small: /login sets a SESSION cookie (and a balancer's SERVERID
    when the request has none), /whoami answers the session's user after `ms`; it forgets
    user-0002's session once (at its third request) and answers user-0003 with 503 always."""

    sessions: dict[str, str] = field(default_factory=dict)
    asked: Counter[str] = field(default_factory=Counter)
    forgot: bool = False

    async def login(self, request: web.Request) -> web.Response:
        user = str((await request.post())["user"])
        token = secrets.token_urlsafe(12)
        self.sessions[token] = user
        response = web.json_response({"user": user, "replica": "web-a"})
        response.set_cookie("SESSION", token, httponly=True)
        if "SERVERID" not in request.cookies:
            response.set_cookie("SERVERID", "web-a")
        return response

    async def whoami(self, request: web.Request) -> web.Response:
        if "SERVERID" not in request.cookies:
            return web.json_response({"error": "the balancer's cookie went missing"}, status=400)
        await asyncio.sleep(int(request.query["ms"]) / 1000)
        token = request.cookies.get("SESSION", "")
        user = self.sessions.get(token)
        if user == "user-0003":
            return web.json_response({"error": "busy"}, status=503)
        if user is not None:
            self.asked[user] += 1
            if user == "user-0002" and self.asked[user] == 3 and not self.forgot:
                self.forgot, user = True, None
                del self.sessions[token]
        return web.json_response({"user": user, "replica": "web-a" if sum(self.asked.values()) % 2 else "web-b"})


@pytest.fixture
def session_app() -> Iterator[str]:
    app = web.Application()
    state = SessionApp()
    app.add_routes([web.post("/login", state.login), web.get("/whoami", state.whoami)])
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def _lines(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1].get("summary") is True and not any(line.get("summary") for line in lines[:-1])
    return lines[:-1], lines[-1]


def test_the_generator_runs_its_phases_counts_logouts_and_errors_and_ends_by_itself(session_app: str,
                                                                                   tmp_path: Path) -> None:
    log = tmp_path / "load.jsonl"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "demo.load", "--url", session_app, "--phase", "warm:1:20",
                           "--phase", "busy:2:40", "--users", "5", "--work-ms", "20", "--timeout", "2",
                           "--arrivals", "even", "--log", str(log)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 3 + 2 * 2 + 2.5 + 2  # phases, logins, drain and the interpreter's start
    rows, summary = _lines(log)
    assert [row["phase"] for row in rows][:3] == ["warm", "busy", "busy"]
    assert {row["phase"] for row in rows[3:]} <= {"drain", "busy"}
    assert summary["sent"] == sum(row["sent"] for row in rows) == 100  # 20 + 2 x 40, evenly spaced
    # Round robin over five users: every fifth request is user-0003's, answered 503.
    assert summary["error_kinds"] == {"503": 20} and summary["errors"] == sum(row["errors"] for row in rows)
    assert summary["ok"] == sum(row["ok"] for row in rows) == 80
    assert summary["logged_out"] == rows[-1]["logged_out"] == 1  # user-0002, forgotten once
    assert summary["logins"] == 6 and summary["login_errors"] == 0
    assert max(row["replicas_seen"] for row in rows) == 2
    assert all(row["p95"] >= 0.02 for row in rows if row["ok"])
    assert [p["name"] for p in summary["phases"]] == ["warm", "busy"] and summary["phases"][1]["sent"] == 80
    assert "1 users logged out" in done.stderr


def test_requests_beyond_the_cap_fail_at_once_and_slow_ones_time_out(session_app: str, tmp_path: Path) -> None:
    settings = load.Settings(session_app, (Phase("burst", 1.0, 20.0),), users=2, work_ms=1000,
                             log=tmp_path / "load.jsonl", timeout_seconds=0.5, max_in_flight=3, poisson=False)
    started = time.monotonic()
    summary = asyncio.run(load.run(settings))
    assert time.monotonic() - started < 1 + 0.5 + 0.5 + 1  # the phase, the drain, and a margin
    rows, written = _lines(settings.log)
    assert written == summary and summary["sent"] == 20 and summary["ok"] == 0
    assert summary["error_kinds"][load.OVERLOADED] > 10 and summary["error_kinds"]["timeout"] >= 3
    assert summary["errors"] == 20 and all(row["in_flight"] <= 3 for row in rows)
    assert all(row["p95"] is None for row in rows) and math.isclose(summary["duration"], 1.5, abs_tol=0.5)


def test_sigterm_stops_the_sending_and_still_writes_the_summary(session_app: str, tmp_path: Path) -> None:
    log = tmp_path / "load.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "demo.load", "--url", session_app, "--phase", "long:60:20",
                                "--users", "3", "--work-ms", "10", "--timeout", "1", "--log", str(log)], cwd=ROOT)
    deadline = time.monotonic() + 15
    while (not log.exists() or not log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)  # the first line: logins are done and the phase is running
    process.terminate()
    assert process.wait(timeout=15) == 0
    rows, summary = _lines(log)
    assert summary["interrupted"] is True and summary["duration"] < 10 and summary["sent"] == sum(r["sent"] for r in rows)
