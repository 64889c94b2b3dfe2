from __future__ import annotations

from spillway.resources.compare import FINGERPRINT, covers, fingerprinted


def test_live_object_with_more_fields_covers_the_desired_one() -> None:
    desired = {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    live = {"spec": {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}], "clusterIP": "10.0.0.1"}}
    assert covers(live, desired)


def test_a_different_or_missing_value_is_not_covered() -> None:
    assert not covers({"spec": {"replicas": 2}}, {"spec": {"replicas": 3}})
    assert not covers({"spec": {}}, {"spec": {"replicas": 3}})
    assert not covers({"a": [1, 2]}, {"a": [1]})
    assert not covers({"a": 1}, {"a": True})


def test_numbers_compare_by_value() -> None:
    assert covers({"a": 1.0}, {"a": 1})


def test_fingerprint_changes_with_content_and_is_stable() -> None:
    obj = {"metadata": {"name": "x", "annotations": {"keep": "me"}}, "spec": {"a": 1}}
    first = fingerprinted(obj)
    assert first == fingerprinted(obj)
    assert first["metadata"]["annotations"]["keep"] == "me"
    changed = fingerprinted({**obj, "spec": {"a": 2}})
    assert changed["metadata"]["annotations"][FINGERPRINT] != first["metadata"]["annotations"][FINGERPRINT]
    assert FINGERPRINT not in obj["metadata"]["annotations"], "the input is not modified"
