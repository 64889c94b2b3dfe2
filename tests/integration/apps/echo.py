"""A small HTTP app the test bed runs as real pods on the real node (python3 from the Debian base
image, this file from a ConfigMap): it answers with its pod name, is ready only READY_AFTER
seconds after it starts, refuses traffic before that (so a test sees any request that readiness
failed to hold back), serves Prometheus metrics, and drains on SIGTERM. `/slow?seconds=S` answers
after S seconds (at most 30), for a test that holds a replica busy."""

import json
import os
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("READY_AFTER", "2"))
POD = os.environ.get("POD_NAME", "unknown")
counts = {"served": 0, "refused": 0}
lock = threading.Lock()


def ready() -> bool:
    return time.monotonic() - STARTED >= READY_AFTER


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ready":
            self.reply(200 if ready() else 503, {"ready": ready()})
        elif self.path == "/metrics":
            with lock:
                body = (f"echo_requests_total{{outcome=\"served\"}} {counts['served']}\n"
                        f"echo_requests_total{{outcome=\"refused\"}} {counts['refused']}\n")
            self.reply(200, body, "text/plain; version=0.0.4")
        elif not ready():
            with lock:
                counts["refused"] += 1
            self.reply(503, {"pod": POD, "error": "not ready yet"})
        else:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/slow":
                seconds = float(urllib.parse.parse_qs(url.query).get("seconds", ["1"])[0])
                time.sleep(min(max(seconds, 0.0), 30.0))
            with lock:
                counts["served"] += 1
            self.reply(200, {"pod": POD})

    def reply(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


server = ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler)
# Drain on SIGTERM the way a well-behaved server does: stop accepting (the listening socket
# closes, so a balancer's next connection is refused and goes elsewhere), finish every request
# in flight (non-daemon threads, joined by server_close), then exit.
server.daemon_threads = False
server.block_on_close = True
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
