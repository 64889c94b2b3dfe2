"""A process of the test bed: started in its own session, tracked by PID, stopped by PID
(SIGTERM to its process group, then SIGKILL), and recognised after a restart of the harness only
while its PID still runs the binary that was started (a recycled PID is never signalled)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Component:
    name: str
    argv: list[str]
    log: Path
    pid: int | None = None
    env: dict[str, str] | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            proc = subprocess.Popen(self.argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=self.env)
        self.pid = proc.pid
        self._proc = proc

    def alive(self) -> bool:
        if self.pid is None:
            return False
        proc = getattr(self, "_proc", None)
        if proc is not None:
            return proc.poll() is None
        return runs(self.pid, self.argv[0])

    def stop(self, timeout: float = 10) -> None:
        if self.pid is None or not self.alive():
            return
        kill_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.1)
        if self.alive():
            kill_group(self.pid, signal.SIGKILL)
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # each process leads its own session and process group
    except ProcessLookupError:
        pass


def runs(pid: int, binary: str) -> bool:
    """The PID still runs the binary we started (not a recycled PID)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode() == binary
    except OSError:
        return False
