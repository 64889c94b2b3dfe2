"""The replica count to run between scaling decisions. Pure: no I/O."""

from __future__ import annotations

from spillway.api.spec import Replicas, Scaling


def clamp(count: int, bounds: Replicas) -> int:
    return max(bounds.min, min(bounds.max, count))


def standing_replicas(bounds: Replicas, scaling: Scaling, decided: int | None, live: int | None) -> int:
    """The count to run now, always within bounds.

    - without Prometheus, exactly `min`: the scale subresource moves `min`, so `kubectl scale
      ssvc`, an HPA or KEDA aimed at the ScalableService set the count directly;
    - paused, what runs now;
    - otherwise the last decision of the scaling engine, else what runs, else `min`.
    A change of `min` or `max` takes effect at once, without waiting for the next interval.
    """
    if scaling.prometheus is None:
        return bounds.min
    if scaling.paused:
        return clamp(live if live is not None else decided if decided is not None else bounds.min, bounds)
    if decided is not None:
        return clamp(decided, bounds)
    if live is not None:
        return clamp(live, bounds)
    return bounds.min
