"""The HAProxy provider's configs the tests check with `haproxy -c`: one per algorithm, affinity,
hash key and pool layout (on the host's HAProxy 2.6 in test_haproxy_config.py, on the balancer
image's 3.x on the real node in test_haproxy_balancer.py)."""

from __future__ import annotations

import itertools
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.resources.balancing import Context, haproxy
from spillway.resources.meta import Owner

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


def rendered(raw: dict[str, Any]) -> str:
    """The haproxy.cfg the provider renders for a spec."""
    spec = ScalableServiceSpec.model_validate(raw)
    pools = {p.name: {"pool": p.name} for p in spec.pools}
    plan = haproxy.render(OWNER, spec, Context(selector={"app": "checkout"}, pool_selectors=pools))
    return str(next(o for o in plan.objects if o["kind"] == "ConfigMap")["data"]["haproxy.cfg"])


CASES = _cases()
