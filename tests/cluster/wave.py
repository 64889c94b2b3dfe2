"""The demo's traffic signal: an exporter of HAProxy's backend metrics whose queue follows a
wave (quiet, a surge, quiet again), so that `make demo` shows Spillway scaling out and back in.

    python -m tests.cluster.wave --port 9101 --proxy demo [--surge 60] [--cycles 10]

`curl -d 80 http://127.0.0.1:PORT/queue` pins the queue at 80 (`-d wave` resumes the wave).
Serves loopback only, and ends by itself after `--cycles` waves.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QUIET_SECONDS, SURGE_SECONDS, CALM_SECONDS = 20.0, 60.0, 120.0
CYCLE_SECONDS = QUIET_SECONDS + SURGE_SECONDS + CALM_SECONDS
REQUESTS_PER_SECOND = 50


def queue_at(elapsed: float, surge: float) -> float:
    """The wave: nothing waits for QUIET_SECONDS, `surge` requests wait for SURGE_SECONDS, then
    nothing for CALM_SECONDS, long enough to see the scale-down window pass."""
    phase = elapsed % CYCLE_SECONDS
    return surge if QUIET_SECONDS <= phase < QUIET_SECONDS + SURGE_SECONDS else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--proxy", required=True, help="backend name: the ScalableService's name")
    parser.add_argument("--surge", type=float, default=60.0)
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    pinned: list[float | None] = [None]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            elapsed = time.monotonic() - started
            queue = pinned[0] if pinned[0] is not None else queue_at(elapsed, args.surge)
            backend, server = f'{{proxy="{args.proxy}"}}', f'{{proxy="{args.proxy}",server="s1"}}'
            served = min(queue, 20.0) + 5
            # Every series the HAProxy preset reads, as a balancer with one server exports them:
            # one that is missing would (rightly) keep Spillway from ever scaling back in.
            body = (f"haproxy_backend_current_queue{backend} {queue}\n"
                    f"haproxy_server_current_queue{server} 0\n"
                    f"haproxy_backend_current_sessions{backend} {queue + served}\n"
                    f"haproxy_server_current_sessions{server} {served}\n"
                    f"haproxy_backend_http_requests_total{backend} {int(REQUESTS_PER_SECOND * elapsed)}\n"
                    f"haproxy_backend_total_time_average_seconds{backend} {0.02 + queue / 1000}\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            text = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode().strip()
            try:
                pinned[0] = None if text == "wave" else max(0.0, float(text))
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.cycles * CYCLE_SECONDS, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
