"""Every haproxy.cfg the HAProxy provider renders passes `haproxy -c` on Debian's HAProxy (2.6,
the oldest the provider supports) with no warning, for each algorithm, affinity, hash key and
pool layout."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing import Context, haproxy
from spillway.resources.meta import Owner
from tests.integration.components import ensure_installed

OWNER = Owner(name="checkout", namespace="shop", uid="u-1")
TEMPLATE = {"spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"name": "http", "containerPort": 8080}]}]}}
POOLS = [{"name": "large", "weight": 3, "capacity": {"concurrency": 400, "queueLimit": 50}}, {"name": "small", "weight": 1}]
ALGORITHMS = [None, "RoundRobin", "Random", "LeastConnection", "Weighted", "ConsistentHash"]
AFFINITIES = ["None", "ClientIP", "Cookie"]
# The last two: every character the CRD's pattern lets into a header or cookie name (HTTP_TOKEN).
HASHES = [{"source": "SourceIP"}, {"source": "Header", "name": "X-User"}, {"source": "Cookie", "name": "JSESSIONID"},
          {"source": "Header", "name": "X-User!%&*+.^_`|~-9"}, {"source": "Cookie", "name": "SID!%&*+.^_`|~-9"}]


def _cases() -> list[dict[str, Any]]:
    cases = []
    for algorithm, affinity, key in itertools.product(ALGORITHMS, AFFINITIES, HASHES):
        if key["source"] != "SourceIP" and algorithm != "ConsistentHash":
            continue
        balancing: dict[str, Any] = {"provider": "HAProxy", "affinity": {"type": affinity, "ttl": "90m"}, "hash": key}
        if algorithm:
            balancing["algorithm"] = algorithm
        spec: dict[str, Any] = {"template": TEMPLATE, "balancing": balancing,
                                "capacity": {"concurrency": 8, "queueLimit": 4, "timeout": "2500ms"}}
        if algorithm == "Weighted" or affinity == "Cookie":
            spec["pools"] = POOLS
        if affinity == "Cookie" and algorithm in (None, "LeastConnection"):  # yields under load: maxqueue
            spec["sessionStore"] = {"type": "Redis"}
        cases.append(spec)
    return cases


@pytest.mark.parametrize("raw", _cases(), ids=lambda r: "-".join(
    str(x) for x in (r["balancing"].get("algorithm", "default"), r["balancing"]["affinity"]["type"],
                     r["balancing"]["hash"]["source"], "pools" if "pools" in r else "single")))
def test_rendered_config_passes_haproxy_check(raw: dict[str, Any], tmp_path: Path) -> None:
    spec = ScalableServiceSpec.model_validate(raw)
    pools = {p.name: {"pool": p.name} for p in spec.pools}
    plan = haproxy.render(OWNER, spec, Context(selector={"app": "checkout"}, pool_selectors=pools))
    config = next(o for o in plan.objects if o["kind"] == "ConfigMap")["data"]["haproxy.cfg"]
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    env = {**os.environ, haproxy.COOKIE_ENV: "0123456789abcdef"}
    result = subprocess.run([ensure_installed("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True,
                            env=env, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output + config
    assert "Configuration file is valid" in output
    assert "WARNING" not in output and "ALERT" not in output, output + config
