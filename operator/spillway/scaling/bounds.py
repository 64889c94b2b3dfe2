"""The replica count to run between scaling decisions. Pure: no I/O."""

from __future__ import annotations

from spillway.api.spec import Replicas, Scaling


def clamp(count: int, bounds: Replicas) -> int:
    return max(bounds.min, min(bounds.max, count))


def _count(value: object) -> int | None:
    """A replica count, or None for anything else: `decided` comes from status, which a person
    may have edited, and a string or a negative number there must not stop the reconcile."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def standing_replicas(bounds: Replicas, scaling: Scaling, decided: object, live: object) -> int:
    """The count to run now, always within bounds.

    - without Prometheus, exactly `min`: the scale subresource moves `min`, so `kubectl scale
      ssvc`, an HPA or KEDA aimed at the ScalableService set the count directly;
    - paused, what runs now;
    - otherwise the last decision of the scaling engine, else what runs, else `min`.
    A change of `min` or `max` takes effect at once, without waiting for the next interval.
    A `decided` or `live` that is not a count is taken as absent.
    """
    decided, live = _count(decided), _count(live)
    if scaling.prometheus is None:
        return bounds.min
    if scaling.paused:
        return clamp(live if live is not None else decided if decided is not None else bounds.min, bounds)
    if decided is not None:
        return clamp(decided, bounds)
    if live is not None:
        return clamp(live, bounds)
    return bounds.min
