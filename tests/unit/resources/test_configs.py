"""Content-named, immutable ConfigMaps: the name follows the content, and a ConfigMap is retired
only when it is not the current one and no live pod mounts it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from spillway.resources.meta import Owner, content_name, unused_configs

OWNER = Owner(name="checkout", namespace="shop", uid="u")
files = st.dictionaries(st.sampled_from(["haproxy.cfg", "redis.conf", "start.sh"]), st.text(max_size=20), min_size=1)


@given(files, files)
def test_the_name_changes_exactly_when_the_content_does(a: dict[str, str], b: dict[str, str]) -> None:
    assert (content_name(OWNER, "haproxy", a) == content_name(OWNER, "haproxy", b)) == (a == b)
    assert content_name(OWNER, "haproxy", a).startswith("checkout-haproxy-")


def test_a_long_owner_name_still_gives_a_dns_label() -> None:
    name = content_name(Owner(name="x" * 63, namespace="shop", uid="u"), "haproxy", {"haproxy.cfg": "a"})
    assert len(name) <= 63 and not name.endswith("-")


def _pod(config_map: str, terminating: bool) -> dict[str, Any]:
    metadata = {"deletionTimestamp": "2026-12-08T00:00:00Z"} if terminating else {}
    return {"metadata": metadata, "spec": {"volumes": [{"name": "c", "configMap": {"name": config_map}},
                                                      {"name": "t", "emptyDir": {}}]}}


names = st.sampled_from([f"cm-{i}" for i in range(6)])


@given(st.sets(names), st.lists(st.tuples(names, st.booleans()), max_size=6), st.sets(names, max_size=2))
def test_only_what_is_neither_current_nor_mounted_by_a_live_pod_is_retired(
        existing: set[str], pods: list[tuple[str, bool]], current: set[str]) -> None:
    config_maps = [{"metadata": {"name": n}} for n in sorted(existing)]
    retired = set(unused_configs(config_maps, [_pod(n, t) for n, t in pods], current))
    live = {n for n, terminating in pods if not terminating}
    assert retired == existing - current - live
