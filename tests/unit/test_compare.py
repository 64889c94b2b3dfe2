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


def test_quantities_the_api_server_normalises_are_the_same_quantity() -> None:
    live = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "500m"}}}
    desired = {"resources": {"requests": {"cpu": 1, "memory": "1024Mi"}, "limits": {"cpu": 0.5}}}
    assert covers(live, desired)
    assert covers({"emptyDir": {"sizeLimit": "1Gi"}}, {"emptyDir": {"sizeLimit": "1073741824"}})


def test_a_different_quantity_is_a_difference() -> None:
    assert not covers({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1100m"}})
    assert not covers({"limits": {"memory": "1Gi"}}, {"limits": {"memory": "1G"}})


def test_strings_outside_quantities_compare_literally() -> None:
    assert not covers({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "1.0"}]})
    assert not covers({"image": "app:1"}, {"image": "app:1.0"})


def test_empty_lists_maps_and_nulls_the_api_server_drops_are_covered() -> None:
    assert covers({"spec": {"containers": [{"name": "a"}]}},
                  {"spec": {"containers": [{"name": "a", "args": [], "env": [], "resources": {}}],
                            "tolerations": [], "nodeSelector": {}, "priorityClassName": None}})
    assert not covers({"spec": {}}, {"spec": {"tolerations": [{"key": "x"}]}})
