"""One answer for many askers: a single-flight cache whose answers stay fresh for a moment.

Every scaling interval runs in a worker thread of its own; a thousand services sharing one
grouped query would otherwise send it a thousand times. The first asker of a key runs the
fetch; whoever asks while it runs waits for that same answer, and whoever asks within
`fresh_seconds` of its start gets it too. A fetch that raised is not kept: the next asker tries
again. No I/O of its own; keys should be values whose repr holds no secret.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


class SharedAnswers(Generic[V]):
    """Answers by key, each fetched once per freshness window however many threads ask.

    `keep_seconds` bounds what any asker may call fresh; older answers are dropped, so the cache
    holds about one entry per key in use."""

    def __init__(self, keep_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[V]] = {}

    def get(self, key: Hashable, fetch: Callable[[], V], fresh_seconds: float,
            wait_seconds: float) -> tuple[V, bool]:
        """The answer for `key` and whether another asker's fetch gave it. Raises what the fetch
        raised, or TimeoutError when another asker's fetch outlasts `wait_seconds`."""
        fresh_seconds = min(fresh_seconds, self.keep_seconds)
        with self._lock:
            now = self.clock()
            flight = self._flights.get(key)
            if flight is not None and (not flight.done.is_set() or now - flight.started <= fresh_seconds):
                leader = False
            else:
                self._forget_older_than(now - self.keep_seconds)
                flight = self._flights[key] = _Flight(started=now)
                leader = True
        if leader:
            try:
                value = fetch()
                flight.value = value
            except BaseException as err:
                flight.error = err
                with self._lock:
                    if self._flights.get(key) is flight:
                        del self._flights[key]
                raise
            finally:
                flight.done.set()
            return value, False
        if not flight.done.wait(wait_seconds):
            raise TimeoutError(f"the shared query did not answer within {wait_seconds:g}s")
        if flight.error is not None:
            raise flight.error
        return cast(V, flight.value), True  # set by the leader before `done`

    def _forget_older_than(self, cutoff: float) -> None:
        stale = [k for k, f in self._flights.items() if f.done.is_set() and f.started < cutoff]
        for key in stale:
            del self._flights[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._flights)
