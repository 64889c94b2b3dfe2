"""The demo's report: the numbers from synthetic logs, the text built from them, and the two files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo import report
from demo import summary as run_summary

T0 = 1_800_000_000.0  # the load's start, unix time
PROFILE = (("steady", 20, 10.0), ("surge", 40, 50.0), ("calm", 40, 5.0))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _phase(offset: float, profile: tuple[tuple[str, int, float], ...]) -> tuple[str, float]:
    start = 0
    for name, seconds, rate in profile:
        if offset < start + seconds:
            return name, rate
        start += seconds
    return "drain", 0.0


def load_rows(p95: Callable[[int], float | None] = lambda s: 0.25, errors: Callable[[int], int] = lambda s: 0,
              logged_out: Callable[[int], int] = lambda s: 0, profile: tuple[tuple[str, int, float], ...] = PROFILE,
              summary: bool = True) -> list[dict[str, Any]]:
    """A line a second (window start `s` = 0, 1, ...), then the summary line as demo.load writes it."""
    rows: list[dict[str, Any]] = []
    for s in range(sum(seconds for _, seconds, _ in profile)):
        name, rate = _phase(s, profile)
        failed = errors(s)
        rows.append({"t": T0 + s + 1, "phase": name, "target_rps": rate, "sent": int(rate), "ok": int(rate) - failed,
                     "errors": failed, "error_kinds": {"503": failed} if failed else {}, "p50": None,
                     "p95": p95(s), "p99": None, "in_flight": 3, "logged_out": logged_out(s), "logins": 200,
                     "login_errors": 0, "replicas_seen": 2})
    if summary:
        phases, start = [], T0
        for name, seconds, rate in profile:
            mine = [r for r in rows if r["phase"] == name]
            phases.append({"name": name, "seconds": seconds, "target_rps": rate, "start": start,
                           "sent": sum(r["sent"] for r in mine), "ok": sum(r["ok"] for r in mine),
                           "errors": sum(r["errors"] for r in mine), "p95": max(r["p95"] or 0 for r in mine)})
            start += seconds
        rows.append({"summary": True, "t": T0 + len(rows) + 0.5, "sent": sum(r["sent"] for r in rows),
                     "ok": sum(r["ok"] for r in rows), "errors": sum(r["errors"] for r in rows), "p95": 0.3,
                     "logged_out": rows[-1]["logged_out"], "logins": 200, "duration": float(len(rows)),
                     "users": 200, "work_ms": 200, "phases": phases})
    return rows


def desired(t: float) -> int:
    """2, then 6 from 30 s into the run, 8 from 40 s, 4 from 76 s and 2 again from 90 s."""
    return 2 if t < 30 else 6 if t < 40 else 8 if t < 76 else 4 if t < 90 else 2


def status_rows(want: Callable[[float], int] = desired, lag: float = 10) -> list[dict[str, Any]]:
    """A sample every 2 s from 4 s before the load; ready follows desired `lag` seconds late."""
    return [{"t": T0 + t, "desired": want(t), "ready": want(t - lag), "replicas": want(t - lag), "queue": 0.0,
             "latency": 0.2, "in_flight": 1, "arrival_rate": 10.0, "conditions": {"Ready": "Serving"}}
            for t in range(-4, 110, 2)]


def surge_p95(s: int) -> float:
    return 1.2 if 22 <= s <= 44 else 0.25


def onset_and_later_errors(s: int) -> int:
    return {21: 3, 55: 2}.get(s, 0)


EVENTS = [{"t": T0 + 45, "what": "app pod web-abc deleted"}, {"t": T0 + 30, "what": "ScaledUp 2 -> 6"}]


def _summary(**changes: Any) -> run_summary.Summary:
    arguments: dict[str, Any] = {"load_rows": load_rows(surge_p95, onset_and_later_errors),
                                 "status_rows": status_rows(), "events": EVENTS, "objective": 0.5}
    arguments.update(changes)
    return run_summary.summarize(**arguments)


def test_the_scale_out_and_in_are_timed_from_the_phases() -> None:
    s = _summary()
    assert (s.surge, s.calm, s.started_at) == ("surge", "calm", T0)
    assert (s.baseline_replicas, s.first_scale_up_to, s.min_replicas) == (2, 6, 2)
    assert s.scale_up_seconds == 10 and s.ready_seconds == 20  # surge at 20 s, 6 asked at 30 s, ready at 40 s
    assert (s.peak_replicas, s.peak_replicas_at, s.scaled_in) == (8, 40, True)
    assert s.scale_in_seconds == 16 and s.back_to_baseline_seconds == 30  # calm at 60 s: 4 at 76 s, 2 at 90 s


def test_latency_is_timed_against_the_objective() -> None:
    s = _summary()
    assert s.seconds_over_objective == 23  # seconds 22 to 44
    assert s.p95_recovered_seconds == 25  # under it from 45 s on, the surge began at 20 s
    assert [(p.name, p.p95_seconds) for p in s.phases] == [("steady", 0.25), ("surge", 1.2), ("calm", 0.25)]


def test_errors_in_the_surges_first_seconds_are_told_apart() -> None:
    s = _summary()
    assert (s.sent, s.errors, s.ok) == (200 + 2000 + 200, 5, 2395)
    assert s.error_rate == pytest.approx(5 / 2400) and s.error_kinds == {"503": 5}
    assert s.errors_outside_surge_onset == 2
    assert _summary(grace_seconds=40).errors_outside_surge_onset == 0


def test_events_are_in_seconds_from_the_start_in_order() -> None:
    assert [(e.seconds, e.what) for e in _summary().events] == [(30, "ScaledUp 2 -> 6"), (45, "app pod web-abc deleted")]


def test_a_run_that_never_scaled_has_no_scaling_times() -> None:
    s = _summary(status_rows=status_rows(lambda t: 2))
    assert s.scale_up_seconds is None and s.ready_seconds is None and s.first_scale_up_to is None
    assert s.scale_in_seconds is None and s.back_to_baseline_seconds is None and not s.scaled_in
    assert s.peak_replicas == s.min_replicas == 2
    assert "did not scale up" in report.narrative(s)


def test_without_status_samples_there_are_no_replica_numbers() -> None:
    s = _summary(status_rows=[])
    assert s.peak_replicas is None and s.baseline_replicas is None and s.scale_up_seconds is None
    assert "No status samples" in report.narrative(s)


def test_a_p95_that_never_comes_back_has_no_recovery_and_one_never_over_recovers_at_once() -> None:
    assert _summary(load_rows=load_rows(lambda s: 2.0 if s >= 20 else 0.2)).p95_recovered_seconds is None
    calm = _summary(load_rows=load_rows())
    assert calm.p95_recovered_seconds == 0 and calm.seconds_over_objective == 0


def test_a_second_where_everything_failed_counts_as_over_the_objective() -> None:
    rows = load_rows(lambda s: None if s == 30 else 0.25, lambda s: 50 if s == 30 else 0)
    s = _summary(load_rows=rows)
    assert s.seconds_over_objective == 1 and s.p95_recovered_seconds == 11


def test_equal_rates_have_no_surge_unless_named() -> None:
    flat = (("a", 30, 10.0), ("b", 30, 10.0))
    s = _summary(load_rows=load_rows(profile=flat))
    assert s.surge is None and s.calm is None and s.scale_up_seconds is None
    assert s.errors_outside_surge_onset == s.errors
    named = _summary(load_rows=load_rows(profile=flat), surge_phase="a")
    assert (named.surge, named.calm) == ("a", "b")


def test_without_a_summary_line_the_phases_are_rebuilt_from_the_seconds() -> None:
    torn = _summary(load_rows=load_rows(surge_p95, onset_and_later_errors, summary=False))
    whole = _summary()
    assert [(p.name, p.start_seconds, p.seconds, p.sent, p.errors) for p in torn.phases] == \
        [(p.name, p.start_seconds, p.seconds, p.sent, p.errors) for p in whole.phases]
    assert (torn.sent, torn.errors, torn.started_at, torn.scale_up_seconds) == (whole.sent, whole.errors, T0, 10)
    assert torn.phases[1].p95_seconds == 1.2 and torn.users is None


def test_an_empty_run_still_summarizes() -> None:
    s = run_summary.summarize([], [], [], 0.5)
    assert (s.sent, s.errors, s.error_rate, s.phases, s.surge, s.logged_out) == (0, 0, 0.0, (), None, 0)
    assert "None of the 0 requests failed" in report.narrative(s)


@settings(deadline=None)  # builds whole logs; a busy machine must not fail it
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.integers(0, 20))
def test_scaling_times_keep_their_order(counts: list[int], lag: int) -> None:
    samples = [{"t": T0 + 2 * i - 4, "desired": c, "ready": counts[max(0, i - lag // 2)]} for i, c in enumerate(counts)]
    s = run_summary.summarize(load_rows(), samples, [], 0.5)
    assert s.min_replicas is not None and s.peak_replicas is not None
    assert s.min_replicas <= (s.baseline_replicas or 0) <= s.peak_replicas
    if s.ready_seconds is not None:
        assert s.scale_up_seconds is not None and s.ready_seconds >= s.scale_up_seconds >= 0
    if s.back_to_baseline_seconds is not None:
        assert s.scale_in_seconds is not None and s.back_to_baseline_seconds >= s.scale_in_seconds >= 0
    assert s.scaled_in == any(c < s.peak_replicas for c in counts[counts.index(s.peak_replicas):])


def test_the_narrative_states_the_numbers() -> None:
    text = report.narrative(_summary())
    for claim in ("from 10 to 50 requests/s at 20 s", "10 s later (2 → 6)", "ready 20 s after the surge began",
                  "peaked at 8 at 40 s", "in 23 seconds", "back under it to stay 25 s", "5 of 2400 requests failed",
                  "2 of them outside the surge's first 30 s", "scaled in after 16 s", "back at 2 replicas after 30 s",
                  "No user was logged out; the run had 1 deletion."):
        assert claim in text, claim


def test_logged_out_users_are_reported_as_lost_sessions() -> None:
    s = _summary(load_rows=load_rows(logged_out=lambda s: 3 if s > 50 else 0))
    assert s.logged_out == 3
    assert "3 users were logged out: sessions were lost; the run had 1 deletion." in report.narrative(s)
    assert "| logged-out users (must be 0) | **3** — sessions were lost |" in report.render_markdown(s, "t", "x.png")


def test_the_markdown_has_parameters_results_events_picture_and_story() -> None:
    text = report.render_markdown(_summary(), "Spillway demo", "demo.png")
    assert text.startswith("# Spillway demo\n")
    for part in ("`steady` 20 s at 10 req/s → `surge` 40 s at 50 req/s → `calm` 40 s at 5 req/s", "200 users",
                 "`GET /whoami?ms=200`", "| requests sent | 2400 |", "| errors | 5 (0.21 %): 503 5 |",
                 "| errors outside the surge's first 30 s | 2 |", "| p95 in surge | 1200 ms |",
                 "| peak replicas (desired) | 8, at 40 s (surge + 20 s) |",
                 "| surge start → first scale-up | 10 s (2 → 6 replicas) |", "| surge start → those replicas ready | 20 s |",
                 "| surge start → p95 back under 500 ms | 25 s (over it in 23 s of the run) |",
                 "| calm start → first scale-in | 16 s |", "| calm start → back to 2 replicas | 30 s |",
                 "| logged-out users (must be 0) | **0** |", "| 45 s (surge + 25 s) | app pod web-abc deleted |",
                 "![load, replicas, queue, latency and errors over the run](demo.png)", "## What happened"):
        assert part in text, part


def test_the_figure_has_five_panels_sharing_time_and_the_logged_out_axis() -> None:
    s = _summary()
    figure = report.report_figure(load_rows(surge_p95), status_rows(), s)
    load, replicas, queue, latency, errors, logged_out = figure.axes
    assert len(load.lines) == 2 + len(s.events) and len(replicas.lines) == 3 + len(s.events)
    assert len(latency.lines) == 3 + len(s.events)  # client p95, Spillway's signal, the objective
    assert latency.get_yscale() == "log" and len(logged_out.lines) == 1


def _write(tmp_path: Path, load: list[dict[str, Any]], status: list[dict[str, Any]]) -> tuple[Path, Path]:
    load_log, status_log = tmp_path / "load.jsonl", tmp_path / "status.jsonl"
    load_log.write_text("".join(json.dumps(r) + "\n" for r in load) + '{"t": 17')  # a torn last line
    status_log.write_text("".join(json.dumps(r) + "\n" for r in status))
    return load_log, status_log


def test_write_report_writes_the_markdown_and_the_picture(tmp_path: Path) -> None:
    load_log, status_log = _write(tmp_path, load_rows(surge_p95, onset_and_later_errors), status_rows())
    markdown = report.write_report(load_log, status_log, EVENTS, tmp_path / "out", 0.5, "Spillway demo")
    assert markdown == tmp_path / "out" / "demo-report.md"
    picture = (tmp_path / "out" / "demo.png").read_bytes()
    assert picture.startswith(PNG_SIGNATURE) and len(picture) > 20_000
    text = markdown.read_text()
    assert "| requests sent | 2400 |" in text and "(demo.png)" in text and "web-abc" in text
    assert dataclasses.asdict(_summary())["sent"] == 2400


def test_write_report_survives_empty_and_missing_logs(tmp_path: Path) -> None:
    (tmp_path / "load.jsonl").write_text("")
    markdown = report.write_report(tmp_path / "load.jsonl", tmp_path / "missing.jsonl", [], tmp_path, 0.5, "empty")
    assert "| requests sent | 0 |" in markdown.read_text() and "None recorded." in markdown.read_text()
    assert (tmp_path / "demo.png").read_bytes().startswith(PNG_SIGNATURE)


def test_torn_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n{"b": 2}\n{"c": ')
    assert run_summary.read_lines(path) == [{"a": 1}, {"b": 2}]


# ---------------------------------------------------------------------- the replicas' starts
def cpu_rows(pods: dict[str, tuple[str, str, float, float | None]], seconds: int = 60,
             cpu_per_second: float = 0.25) -> list[dict[str, Any]]:
    """`tests.cluster.cpu.Watch`'s lines: a row per pod (uid -> name, owner, created, ready offsets)
    and a sample a second; each pod uses `cpu_per_second` from its creation and waits as much."""
    rows: list[dict[str, Any]] = [{"pod": uid, "name": f"demo/{name}", "owner": owner, "created": T0 + created,
                                   "started": T0 + created + 1, "ready": None} for uid, (name, owner, created, _)
                                  in pods.items()]
    rows += [{"pod": uid, "ready": T0 + ready} for uid, (_, _, _, ready) in pods.items() if ready is not None]
    for s in range(seconds):
        alive = {uid: [cpu_per_second * (s - created), cpu_per_second * (s - created), 0.0, 0]
                 for uid, (_, _, created, _) in pods.items() if s >= created}
        rows.append({"t": T0 + s, "host": 1.5 * s, "node": 1.0 * s, "bed": 0.25 * s, "pods": alive})
    return rows


PODS = {"u-old": ("web-5d8f9-aaaaa", "ReplicaSet/web-5d8f9", 0.0, 5.0),
        "u-new": ("web-5d8f9-bbbbb", "ReplicaSet/web-5d8f9", 22.0, 34.0),
        "u-late": ("web-5d8f9-ccccc", "ReplicaSet/web-5d8f9", 24.0, None),
        "u-balancer": ("web-balancer-77c4-ddddd", "ReplicaSet/web-balancer-77c4", 23.0, 27.0),
        "u-redis": ("web-sessions-0", "StatefulSet/web-sessions", 23.0, 30.0)}


def test_the_replicas_created_from_the_surge_on_are_timed_and_costed_to_ready() -> None:
    starts, window = run_summary.replica_starts(cpu_rows(PODS), "web", T0 + 20, T0)
    assert [s.name for s in starts] == ["web-5d8f9-bbbbb", "web-5d8f9-ccccc"]  # not the balancer's, not before
    new, late = starts
    assert new.created_seconds == 22 and new.ready_after_seconds == 12
    assert new.cpu_seconds == pytest.approx(3.0) and new.waited_seconds == pytest.approx(3.0)
    assert late.ready_after_seconds is None and late.cpu_seconds is None
    assert window is not None and window.seconds == 12
    assert (window.busy_cores, window.node_cores, window.bed_cores) == pytest.approx((1.5, 1.0, 0.25))


def test_the_machines_share_counts_only_the_seconds_when_a_replica_was_starting() -> None:
    pods = {"a": ("web-1-aaaaa", "ReplicaSet/web-1", 22.0, 30.0), "b": ("web-1-bbbbb", "ReplicaSet/web-1", 25.0, 32.0),
            "c": ("web-1-ccccc", "ReplicaSet/web-1", 50.0, 54.0)}
    _, window = run_summary.replica_starts(cpu_rows(pods), "web", T0 + 20, T0)
    assert window is not None and window.seconds == 14  # 22-32 and 50-54, not 22-54


def test_without_the_nodes_figures_there_are_no_starts() -> None:
    s = run_summary.summarize(load_rows(), status_rows(), EVENTS, 0.5)
    assert s.starts == () and s.start_window is None
    assert "Replica starts" not in report.render_markdown(s, "t", "p.png")


def test_the_report_tells_each_start_and_the_machines_share() -> None:
    s = run_summary.summarize(load_rows(), status_rows(), EVENTS, 0.5, cpu_rows=cpu_rows(PODS), deployment="web")
    text = report.render_markdown(s, "t", "p.png")
    assert "| web-5d8f9-bbbbb | 22 s (surge + 2 s) | 12 s | 3.0 s | 3.0 s | 0.0 s |" in text
    assert "2 replicas started; 1 of them was Ready 12 s after creation, on 3.0 CPU-seconds each; 1 never " \
        "became Ready while watched." in text
    assert "the node's pods 1.00, the test bed's control plane and Prometheus 0.25, everything else 0.25" in text
