"""Load traces: request rate as a function of time. The synthetic shapes (step, spike, diurnal,
ramp, on/off) and the replay of a `t_seconds,rate_rps` CSV (one row per second, as in
`shared/traces/`), scaled to a stated peak; a trace's moving average, its peak over a window,
and the dispersion of its per-second counts. Pure: a CSV is read from text the caller passes in.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    """A piecewise-constant rate: `rates[i]` requests per second from `times[i]` until the next
    time (the last one holds until `duration`)."""

    name: str
    times: tuple[float, ...]
    rates: tuple[float, ...]
    duration: float

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.rates) or self.times[0] != 0:
            raise ValueError(f"trace {self.name}: times must start at 0 and match the rates one to one")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError(f"trace {self.name}: times must increase")
        if any(not (r >= 0) or math.isinf(r) for r in self.rates):
            raise ValueError(f"trace {self.name}: every rate must be a finite number of requests per second, 0 or more")
        if not self.duration > self.times[-1] or math.isinf(self.duration):
            raise ValueError(f"trace {self.name}: the duration must end after the last time")

    def rate(self, t: float) -> float:
        if t < 0 or t >= self.duration:
            return 0.0
        return self.rates[bisect.bisect_right(self.times, t) - 1]

    @property
    def peak(self) -> float:
        return max(self.rates)

    def peak_between(self, start: float, end: float) -> float:
        """The highest rate over [start, end)."""
        start, end = max(start, 0.0), min(end, self.duration)
        if end <= start:
            return 0.0
        first = bisect.bisect_right(self.times, start) - 1
        last = bisect.bisect_left(self.times, end)
        return max(self.rates[first:max(last, first + 1)])

    def mean(self) -> float:
        spans = [b - a for a, b in zip(self.times, (*self.times[1:], self.duration), strict=True)]
        return sum(r * s for r, s in zip(self.rates, spans, strict=True)) / self.duration

    def scaled_to(self, peak: float) -> Trace:
        """The same shape with its highest rate at `peak` (each rate is `r / self.peak * peak`: the
        share first, so a tiny peak never makes an infinite factor)."""
        if not peak > 0 or math.isinf(peak) or self.peak == 0:
            raise ValueError(f"trace {self.name}: cannot scale a trace with peak {self.peak} to {peak}")
        return Trace(self.name, self.times, tuple(r / self.peak * peak for r in self.rates), self.duration)


def per_second(trace: Trace) -> list[float]:
    """The trace's rate in each whole second of its duration."""
    return [trace.rate(float(t)) for t in range(math.ceil(trace.duration))]


def smoothed(trace: Trace, window_seconds: int) -> Trace:
    """The per-second rate replaced by its centred moving average over `window_seconds` (fewer at
    the ends, where the window is cut): a source's per-second counts hold the noise of its own
    arrivals, which replaying them as a Poisson rate would add a second time."""
    if window_seconds < 1:
        raise ValueError(f"trace {trace.name}: a smoothing window is at least 1 s, not {window_seconds!r}")
    rates = per_second(trace)
    before, after = (window_seconds - 1) // 2, window_seconds // 2
    averaged = []
    for i in range(len(rates)):
        # Each window summed afresh (fsum): a running sum's differences lose a small rate that
        # follows large ones.
        low, high = max(0, i - before), min(len(rates), i + after + 1)
        averaged.append(math.fsum(rates[low:high]) / (high - low))
    return Trace(trace.name, tuple(float(t) for t in range(len(rates))), tuple(averaged), float(len(rates)))


def window_peak(trace: Trace, window_seconds: int) -> float:
    """The highest mean rate over any `window_seconds` whole seconds in a row (the whole trace
    when it is shorter): the 1-minute peak with 60."""
    rates = per_second(trace)
    if window_seconds < 1:
        raise ValueError(f"trace {trace.name}: a window is at least 1 s, not {window_seconds!r}")
    width = min(window_seconds, len(rates))
    return max(math.fsum(rates[i:i + width]) for i in range(len(rates) - width + 1)) / width


def dispersion(trace: Trace, window_seconds: int = 60) -> float | None:
    """The index of dispersion of the per-second counts within each window (variance over mean;
    a Poisson process gives 1), averaged over the windows with any traffic; None when none has.
    Meaningful on a source's own counts, before any scaling (scaling by k multiplies it by k)."""
    rates = per_second(trace)
    if window_seconds < 2:
        raise ValueError(f"trace {trace.name}: a dispersion window is at least 2 s, not {window_seconds!r}")
    found = []
    for start in range(0, len(rates) - window_seconds + 1, window_seconds):
        chunk = rates[start:start + window_seconds]
        mean = sum(chunk) / len(chunk)
        if mean > 0:
            found.append(sum((r - mean) ** 2 for r in chunk) / (len(chunk) - 1) / mean)
    return sum(found) / len(found) if found else None


def from_csv(name: str, text: str) -> Trace:
    """A `t_seconds,rate_rps` CSV (header required), as in shared/traces/."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"t_seconds", "rate_rps"} <= set(rows[0]):
        raise ValueError(f"trace {name}: expected the header t_seconds,rate_rps")
    try:
        points = [(float(r["t_seconds"]), float(r["rate_rps"])) for r in rows]
    except (TypeError, ValueError) as err:
        raise ValueError(f"trace {name}: {err}") from err
    times = tuple(t for t, _ in points)
    step = times[1] - times[0] if len(times) > 1 else 1.0
    return Trace(name, times, tuple(r for _, r in points), times[-1] + step)


def _sampled(name: str, duration: float, shape: object, step: float = 1.0) -> Trace:
    assert callable(shape)
    count = max(1, math.ceil(duration / step))
    times = tuple(i * step for i in range(count))
    return Trace(name, times, tuple(float(shape(t)) for t in times), count * step)


def step(base: float, high: float, at: float, duration: float) -> Trace:
    return _sampled("step", duration, lambda t: high if t >= at else base)


def spike(base: float, factor: float = 10.0, at: float = 60.0, rise: float = 10.0, hold: float = 60.0,
          duration: float = 300.0) -> Trace:
    """A flash crowd: `base` climbing to `factor` times it within `rise` seconds, held, then back."""
    def shape(t: float) -> float:
        if t < at or t >= at + rise + hold + rise:
            return base
        if t < at + rise:
            return base + (factor - 1) * base * (t - at) / rise
        if t < at + rise + hold:
            return base * factor
        return base * factor - (factor - 1) * base * (t - at - rise - hold) / rise
    return _sampled("spike", duration, shape)


def diurnal(low: float, high: float, period: float = 600.0, duration: float = 1200.0) -> Trace:
    """A day compressed into `period` seconds: a sine between `low` and `high`, lowest at 0."""
    return _sampled("diurnal", duration,
                    lambda t: low + (high - low) * (1 - math.cos(2 * math.pi * t / period)) / 2)


def ramp(start: float, end: float, duration: float) -> Trace:
    return _sampled("ramp", duration, lambda t: start + (end - start) * t / duration)


def on_off(high: float, on: float = 20.0, off: float = 40.0, duration: float = 600.0) -> Trace:
    """Bursts: `high` for `on` seconds, nothing for `off` seconds, repeated."""
    return _sampled("on-off", duration, lambda t: high if (t % (on + off)) < on else 0.0)
