"""Every haproxy.cfg the HAProxy provider renders passes `haproxy -c` on Debian's HAProxy (2.6,
the oldest the provider supports) with no warning, for each algorithm, affinity, hash key and
pool layout. The same configs are checked on HAProxy 3.x, the balancer image's, on the real node
(tests/integration/test_haproxy_balancer.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from spillway.resources.balancing import haproxy
from tests.integration.components import ensure_installed
from tests.integration.haproxy_cases import CASES, rendered

pytestmark = pytest.mark.integration

@pytest.mark.parametrize("raw", CASES, ids=lambda r: "-".join(
    str(x) for x in (r["balancing"].get("algorithm", "default"), r["balancing"]["affinity"]["type"],
                     r["balancing"]["hash"]["source"], "pools" if "pools" in r else "single")))
def test_rendered_config_passes_haproxy_check(raw: dict[str, Any], tmp_path: Path) -> None:
    config = rendered(raw)
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    env = {**os.environ, haproxy.COOKIE_ENV: "0123456789abcdef"}
    result = subprocess.run([ensure_installed("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True,
                            env=env, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output + config
    assert "Configuration file is valid" in output
    assert "WARNING" not in output and "ALERT" not in output, output + config
