"""The operator, run in process under kopf's KopfRunner or as a `spillway run` process, against
whatever cluster the `kube` fixture gives, plus small kubectl helpers the scenarios share.

An operator process is stopped by its PID (SIGTERM, then SIGKILL after a grace) and leaves a PID
file while it runs, so the next session stops one an interrupted run left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kopf.testing import KopfRunner

from tests.integration.components import wait_until

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "scalableservices.spillway.io.yaml"
SPILLWAY = str(Path(sys.executable).parent / "spillway")
PID_DIR = Path(os.environ.get("SPILLWAY_CACHE", Path.home() / ".cache" / "spillway")) / "test-operators"


class OperatorProcess:
    """`spillway run ARGS` in its own session, its output in `log`."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.argv, self.log = [SPILLWAY, "run", *args], log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        assert self.proc is not None
        return PID_DIR / f"{self.proc.pid}.json"

    def start(self) -> OperatorProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        PID_DIR.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(json.dumps({"pid": self.proc.pid, "argv": self.argv}))
        return self

    def kill(self) -> None:
        """SIGKILL, as a node failure or the OOM killer would."""
        self._signal(signal.SIGKILL)
        self._reap(30)

    def stop(self, grace: float = 10) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        if not self._reap(grace):
            self._signal(signal.SIGKILL)
            self._reap(30)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _reap(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        self.pid_file.unlink(missing_ok=True)
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def stop_stale_operators() -> list[int]:
    """Stops operator processes an interrupted run left, by the PID files they wrote (a PID is
    signalled only while it still runs `spillway run`)."""
    stopped = []
    for pid_file in PID_DIR.glob("*.json") if PID_DIR.exists() else []:
        try:
            recorded = json.loads(pid_file.read_text())
            argv = Path(f"/proc/{recorded['pid']}/cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, KeyError):
            pid_file.unlink(missing_ok=True)
            continue
        if argv[:2] == recorded["argv"][:2] or (len(argv) > 2 and argv[1:3] == recorded["argv"][:2]):
            try:
                os.killpg(recorded["pid"], signal.SIGKILL)
                stopped.append(recorded["pid"])
            except ProcessLookupError:
                pass
            time.sleep(0.2)
        pid_file.unlink(missing_ok=True)
    return stopped


@contextmanager
def running_operator(kubeconfig: str, *extra: str) -> Iterator[KopfRunner]:
    """`kopf run` of Spillway's handlers; stops when the block ends and fails the test if the
    operator crashed."""
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = kubeconfig
    try:
        with KopfRunner(["run", "--standalone", "--all-namespaces", "--module", "spillway.handlers", *extra],
                        timeout=60) as runner:
            yield runner
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
    assert runner.exception is None, runner.output[-3000:]


class Kubectl:
    def __init__(self, kube: Any) -> None:
        self.kube = kube

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = self.kube.kubectl(*args, input=stdin, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, obj: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", stdin=yaml.safe_dump(obj), check=check)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.run("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def items(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
        found: list[dict[str, Any]] = json.loads(self.run(*args).stdout)["items"]
        return found

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}})
        wait_until(lambda: self.get("serviceaccount", "default", name), 30, f"the default ServiceAccount in {name}")
        return name

    def wait_for(self, kind: str, name: str, namespace: str, check: Any, timeout: float = 60,
                 what: str = "") -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(kind, name, namespace)
            return obj if obj is not None and check(obj) else None
        found: dict[str, Any] = wait_until(probe, timeout, what or f"{kind}/{name} in {namespace}", every=0.5)
        return found


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def scalable_service(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": {"spec": {"containers": [{
            "name": "app", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
            "args": ["netexec", "--http-port=8080"], "ports": [{"name": "http", "containerPort": 8080}],
            "securityContext": {"runAsUser": 65532}}]}},
    }
    body.update(spec)
    return {"apiVersion": "spillway.io/v1alpha1", "kind": "ScalableService",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def operator_writes(kube: Any, namespace: str, since: int) -> list[str]:
    """Write requests Spillway's own client made in `namespace` after byte `since` of the API
    server's audit log (kopf's bookkeeping, with its own user agent, is not counted)."""
    lines = kube.audit_log.read_bytes()[since:].decode().splitlines()
    writes = []
    for line in lines:
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if ref.get("namespace") == namespace and event.get("userAgent", "").startswith("spillway/"):
            writes.append(f"{event['verb']} {ref.get('resource')}/{ref.get('subresource', '')} {ref.get('name')}")
    return writes


def audit_offset(kube: Any) -> int:
    return kube.audit_log.stat().st_size if kube.audit_log.exists() else 0
