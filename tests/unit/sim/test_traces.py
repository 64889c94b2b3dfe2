"""Load traces: the synthetic shapes, CSV replay in shared/traces/' format, scaling to a peak,
and refusal of what is not a trace."""

from __future__ import annotations

import math
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from spillway.sim import traces

def test_the_spike_is_ten_times_the_base_within_ten_seconds_and_comes_back() -> None:
    trace = traces.spike(base=20.0, factor=10.0, at=60.0, rise=10.0, hold=60.0, duration=300.0)
    assert trace.rate(59.0) == 20.0 and trace.rate(70.0) == 200.0 and trace.rate(129.0) == 200.0
    assert trace.rate(250.0) == 20.0 and trace.peak == 200.0


def test_shapes_hold_their_bounds() -> None:
    day = traces.diurnal(low=10.0, high=90.0, period=600.0, duration=1200.0)
    assert min(day.rates) == pytest.approx(10.0) and day.rate(300.0) == pytest.approx(90.0)
    assert traces.step(5.0, 50.0, at=30.0, duration=60.0).rate(29.0) == 5.0
    assert traces.ramp(0.0, 100.0, 100.0).rate(50.0) == pytest.approx(50.0)
    bursts = traces.on_off(40.0, on=20.0, off=40.0, duration=120.0)
    assert [bursts.rate(t) for t in (0.0, 19.0, 20.0, 59.0, 60.0)] == [40.0, 40.0, 0.0, 0.0, 40.0]
    assert bursts.rate(-1.0) == 0.0 and bursts.rate(120.0) == 0.0


def test_a_csv_replays_per_second_and_scales_to_a_stated_peak() -> None:
    trace = traces.from_csv("t", "t_seconds,rate_rps\n0,1\n1,7\n2,4\n3,0\n")
    assert (trace.rate(1.5), trace.duration, trace.peak) == (7.0, 4.0, 7.0)
    scaled = trace.scaled_to(700.0)
    assert scaled.rate(1.0) == pytest.approx(700.0) and scaled.rate(2.0) == pytest.approx(400.0)


@pytest.mark.parametrize(("text", "message"), [
    ("time,rate\n0,1\n", "expected the header t_seconds,rate_rps"),
    ("t_seconds,rate_rps\n0,x\n", "could not convert"),
    ("t_seconds,rate_rps\n0,1\n0,2\n", "times must increase"),
    ("t_seconds,rate_rps\n0,-1\n", "every rate must be"),
    ("t_seconds,rate_rps\n0,nan\n", "every rate must be"),
    ("t_seconds,rate_rps\n0,inf\n", "every rate must be"),
    ("t_seconds,rate_rps\n5,1\n", "times must start at 0"),
])
def test_what_is_not_a_trace_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        traces.from_csv("bad", text)


@example([2.2250738585e-313], 1.0)  # a subnormal peak: a factor peak / 2e-313 would be infinite
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(1e-3, 1e6))
def test_scaling_keeps_the_shape_and_sets_the_peak(rates: list[float], peak: float) -> None:
    trace = traces.Trace("h", tuple(float(i) for i in range(len(rates))), tuple(rates), float(len(rates)))
    if trace.peak == 0:
        with pytest.raises(ValueError):
            trace.scaled_to(peak)
        return
    scaled = trace.scaled_to(peak)
    assert math.isclose(scaled.peak, peak, rel_tol=1e-9)
    for a, b in zip(trace.rates, scaled.rates, strict=True):
        assert math.isclose(b, a / trace.peak * peak, rel_tol=1e-9, abs_tol=1e-12)


def _trace(rates: list[float]) -> traces.Trace:
    return traces.Trace("t", tuple(float(i) for i in range(len(rates))), tuple(rates), float(len(rates)))


rates_lists = st.lists(st.floats(0, 1e4, allow_nan=False, allow_infinity=False), min_size=1, max_size=200)


@given(rates=rates_lists, window=st.integers(1, 90))
def test_smoothing_stays_within_the_rates_bounds_and_changes_nothing_constant(rates: list[float], window: int) -> None:
    smooth = traces.per_second(traces.smoothed(_trace(rates), window))
    assert len(smooth) == len(rates)
    assert all(min(rates) - 1e-6 <= r <= max(rates) + 1e-6 for r in smooth)
    assert traces.per_second(traces.smoothed(_trace([7.0] * len(rates)), window)) == pytest.approx([7.0] * len(rates))
    assert traces.per_second(traces.smoothed(_trace(rates), 1)) == pytest.approx(rates)


def test_smoothing_is_a_centred_moving_average() -> None:
    assert traces.per_second(traces.smoothed(_trace([0, 0, 6, 0, 0]), 3)) == pytest.approx([0, 2, 2, 2, 0])


@given(rates=rates_lists)
def test_the_peak_over_a_window_runs_from_the_peak_down_to_the_mean(rates: list[float]) -> None:
    trace = _trace(rates)
    assert traces.window_peak(trace, 1) == pytest.approx(max(rates))
    assert traces.window_peak(trace, len(rates)) == pytest.approx(sum(rates) / len(rates))
    assert traces.window_peak(trace, 1000) == pytest.approx(sum(rates) / len(rates))  # longer than the trace


def test_a_single_second_is_not_a_one_minute_peak() -> None:
    rates = [10.0] * 120
    rates[30] = 600.0
    assert traces.window_peak(_trace(rates), 60) == pytest.approx(10.0 + 590.0 / 60)


def test_dispersion_is_one_for_poisson_counts_and_zero_for_a_constant_rate() -> None:
    import random
    rng = random.Random(3)
    counts = []
    for _ in range(6000):  # Poisson(20) counts, by unit-rate gaps
        t, n = rng.expovariate(20.0), 0
        while t < 1.0:
            n, t = n + 1, t + rng.expovariate(20.0)
        counts.append(float(n))
    assert traces.dispersion(_trace(counts)) == pytest.approx(1.0, abs=0.08)
    assert traces.dispersion(_trace([5.0] * 120)) == 0.0
    assert traces.dispersion(_trace([0.0] * 120)) is None
    with pytest.raises(ValueError, match="at least"):
        traces.smoothed(_trace([1.0]), 0)
