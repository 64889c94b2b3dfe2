"""A bounded load for the demo: client threads on the host send requests to one test-bed address
(the sample's Service) through phases of a profile, then stop by themselves.

    python -m tests.cluster.load --url http://10.96.0.20/slow?seconds=0.1 \
        --phase steady:30:4 --phase surge:60:40 --phase calm:40:2 --log load.jsonl

Each phase is `name:seconds:clients`. Every second one JSON line goes to `--log`: the phase,
requests answered and failed in that second, their p95 latency, and the clients running.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MAX_SECONDS = 1800  # no profile runs longer than this, whatever it says
# The test bed's own addresses: loopback, its Service range and its pod range (tests/cluster).
TEST_BED = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.96.0.0/12", "10.245.0.0/24")]


def allowed(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in TEST_BED)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: list[float] = field(default_factory=list)
    failed: int = 0

    def take(self) -> tuple[list[float], int]:
        with self.lock:
            ok, failed = self.ok, self.failed
            self.ok, self.failed = [], 0
        return ok, failed


def _client(url: str, active: threading.Event, stop: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        if not active.wait(0.2):
            continue
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=15) as response:
                response.read()
                good = response.status == 200
        except (urllib.error.URLError, OSError):
            good = False
        with tally.lock:
            if good:
                tally.ok.append(time.monotonic() - started)
            else:
                tally.failed += 1


def run(url: str, phases: list[tuple[str, float, int]], log: Path) -> None:
    stop = threading.Event()
    tally = Tally()
    most = max(clients for _, _, clients in phases)
    switches = [threading.Event() for _ in range(most)]
    threads = [threading.Thread(target=_client, args=(url, s, stop, tally), daemon=True) for s in switches]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + min(MAX_SECONDS, sum(seconds for _, seconds, _ in phases))
    with log.open("a") as out:
        for name, seconds, clients in phases:
            for i, switch in enumerate(switches):
                (switch.set if i < clients else switch.clear)()
            end = min(time.monotonic() + seconds, deadline)
            while time.monotonic() < end:
                time.sleep(1)
                ok, failed = tally.take()
                ok.sort()
                p95 = ok[int(0.95 * (len(ok) - 1))] if ok else None
                out.write(json.dumps({"t": round(time.time(), 1), "phase": name, "clients": clients,
                                      "ok": len(ok), "failed": failed, "p95": p95}) + "\n")
                out.flush()
    stop.set()
    for thread in threads:
        thread.join(timeout=20)


def _phase(text: str) -> tuple[str, float, int]:
    name, seconds, clients = text.split(":")
    return name, float(seconds), int(clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--phase", action="append", type=_phase, required=True, help="name:seconds:clients")
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    if not allowed(args.url):
        parser.error(f"{args.url}: the load goes only to the test bed's own addresses ({TEST_BED})")
    run(args.url, args.phase, args.log)


if __name__ == "__main__":
    main()
