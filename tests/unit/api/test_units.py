from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spillway.api.units import format_duration, parse_duration, parse_quantity


@pytest.mark.parametrize(("text", "expected"), [
    ("15s", timedelta(seconds=15)),
    ("5m", timedelta(minutes=5)),
    ("250ms", timedelta(milliseconds=250)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1.5s", timedelta(seconds=1.5)),
    ("300s", timedelta(minutes=5)),
    ("0s", timedelta(0)),
])
def test_durations_parse_like_kubernetes(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "s", "-5s", "1d", "5 m", "1.s", "15S"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(seconds=15), "15s"), (timedelta(minutes=5), "5m"), (timedelta(milliseconds=250), "250ms"),
    (timedelta(hours=1, minutes=30), "1h30m"), (timedelta(seconds=1.5), "1.5s"), (timedelta(0), "0s"),
])
def test_durations_format_in_their_shortest_form(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_any_millisecond_duration_survives_a_round_trip(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(("text", "expected"), [
    ("256Mi", 256 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6), ("1024", 1024), ("1.5Ki", 1536), ("0.5k", 500),
])
def test_quantities_parse_to_bytes(text: str, expected: int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1GB", "-1Gi", "1 Gi", "Mi"])
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a quantity"):
        parse_quantity(text)
