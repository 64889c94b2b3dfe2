"""While the demo's load runs: a status sample every STATUS_EVERY s (the ScalableService's
status and its running app pods, into the status log), a status line every SAY_EVERY s, one app
pod and the Redis primary deleted midway through the surge (`deletion_due` and `settled` decide
when, pure), and the ScaledUp/ScaledDown Events the report draws. Bounded in time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demo.summary import read_lines

if TYPE_CHECKING:
    from demo.scenario import Bed, Plan

STATUS_EVERY = 2.0
SAY_EVERY = 5.0


# The deletions, as fractions of the surge: each once the surge is `earliest` through and the
# scale-out has settled (every desired replica ready, the queue at its target), or at `latest`
# whatever the state, and never within SPACING_SECONDS of the one before. On a small machine the
# new replicas may still be starting at mid-surge; a deletion then shows the overload, not what a
# deletion costs.
DELETIONS = (("app", 0.5, 0.75), ("primary", 0.7, 0.9))
SPACING_SECONDS = 15.0


def deletion_due(earliest: float, latest: float, elapsed: float | None, surge_seconds: float,
                 since_last: float | None, settled: bool) -> bool:
    """Whether a deletion is due, `elapsed` seconds into the surge (None: not begun)."""
    if elapsed is None or (since_last is not None and since_last < SPACING_SECONDS):
        return False
    through = elapsed / surge_seconds
    return through >= latest or (through >= earliest and settled)


def settled(status: dict[str, Any], queue_per_replica: float) -> bool:
    """Every desired replica ready and the queue at most its target for them."""
    desired, ready, queue = status.get("desired"), status.get("ready"), status.get("queue")
    return bool(desired) and ready is not None and ready >= desired and queue is not None \
        and queue <= queue_per_replica * ready


def follow(bed: Bed, namespace: str, name: str, the_plan: Plan, minimum: int, queue_target: float,
           load_done: Callable[[], bool], load_log: Path, status_log: Path, events: list[dict[str, Any]],
           say: Callable[[str], None]) -> None:
    """Samples status every STATUS_EVERY s and says a line every SAY_EVERY s while the load
    runs, deletes an app pod and the Redis primary midway through the surge (DELETIONS, timed
    from the surge's first second in the load's own lines), then waits (bounded) for the scale-in."""
    started = time.time()
    surge_name, surge_seconds = the_plan.phases[1][0], the_plan.phases[1][1]
    pending = list(DELETIONS)
    surge_at: float | None = None
    last_deletion: float | None = None
    said = 0.0
    deadline = started + the_plan.duration + the_plan.window_seconds + 120
    while time.time() < deadline:
        now = time.time()
        status = sample_status(bed, namespace, name, status_log)
        if surge_at is None:
            surge_at = next((r["t"] - 1 for r in read_lines(load_log) if r.get("phase") == surge_name), None)
        if pending and deletion_due(pending[0][1], pending[0][2], None if surge_at is None else now - surge_at,
                                    surge_seconds, None if last_deletion is None else now - last_deletion,
                                    settled(status, queue_target)):
            events.append(delete_pod(bed, namespace, pending.pop(0)[0]))
            last_deletion = now
            say(f"{time.strftime('%H:%M:%S')}  {events[-1]['what']}")
        if now - said >= SAY_EVERY:
            said = now
            say(status_line(status, load_log))
        if load_done() and (status.get("desired") or 0) <= minimum:
            return
        time.sleep(STATUS_EVERY)


def sample_status(bed: Bed, namespace: str, name: str, status_log: Path) -> dict[str, Any]:
    """One sample of the ScalableService's status and its running app pods, appended to `status_log`."""
    ssvc = bed.json("get", "ssvc", name, "-n", namespace) or {}
    status = ssvc.get("status") or {}
    signals = status.get("signals") or {}
    pods = (bed.json("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=app") or {}).get("items", [])
    row = {"t": time.time(), "desired": status.get("desiredReplicas"), "ready": status.get("readyReplicas"),
           "replicas": sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"
                           and not p["metadata"].get("deletionTimestamp")),
           "queue": signals.get("queueDepth"), "latency": signals.get("latencySeconds"),
           "in_flight": signals.get("inFlight"), "arrival_rate": signals.get("arrivalRate"),
           "conditions": {c.get("type"): c.get("reason") for c in status.get("conditions") or []}}
    with status_log.open("a") as out:
        out.write(json.dumps(row) + "\n")
    return row


def status_line(status: dict[str, Any], load_log: Path) -> str:
    rows = [r for r in read_lines(load_log) if not r.get("summary")][-5:]
    ok = sum(r.get("ok", 0) for r in rows) / max(1, len(rows))
    errors = sum(r.get("errors", 0) for r in rows)
    p95s = [r["p95"] for r in rows if r.get("p95") is not None]
    phase = rows[-1]["phase"] if rows else "-"
    logged_out = rows[-1].get("logged_out", 0) if rows else 0
    queue = status.get("queue")
    return (f"{time.strftime('%H:%M:%S')} {phase:>6}  {ok:5.1f} req/s ok  p95 "
            f"{(max(p95s) * 1000 if p95s else 0):6.0f} ms  queue {('-' if queue is None else f'{queue:g}'):>5}  "
            f"replicas {status.get('ready') or 0}/{status.get('desired') or '-'}  errors {errors:3d}  "
            f"logged out {logged_out}")


def delete_pod(bed: Bed, namespace: str, which: str) -> dict[str, Any]:
    if which == "app":
        pods = (bed.json("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=app") or {})["items"]
        running = sorted(p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running")
        name, what = running[0], "app pod {} deleted"
    else:
        pods = (bed.json("get", "pods", "-n", namespace, "-l", "spillway.io/redis-role=primary") or {})["items"]
        name, what = pods[0]["metadata"]["name"], "Redis primary {} deleted"
    bed.run("delete", "pod", name, "-n", namespace, "--wait=false")
    return {"t": time.time(), "what": what.format(name)}


def scale_events(bed: Bed, namespace: str) -> list[dict[str, Any]]:
    found = (bed.json("get", "events.events.k8s.io", "-n", namespace) or {}).get("items", [])
    events = []
    for event in found:
        if event.get("reason") in ("ScaledUp", "ScaledDown") and event.get("eventTime"):
            when = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).timestamp()
            events.append({"t": when, "what": f"{event['reason']} {event.get('note', '').split(':', 1)[0]}"})
    return events
