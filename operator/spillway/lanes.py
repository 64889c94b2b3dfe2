"""Blocking work run from the operator's coroutines on a bounded pool of threads, in lanes: no
key (a namespace, one tenant) may hold more than `per_key` of the pool's threads at once, so
one tenant's Prometheus that never answers, or answers a byte at a time, delays only its own
services' intervals. Each kind of work has its own pool (the scaling intervals apart from the
Sentinel followers), so neither can starve the other.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Lanes:
    def __init__(self, name: str, threads: int, per_key: int) -> None:
        if not 1 <= per_key <= threads:
            raise ValueError(f"per_key must lie between 1 and threads ({threads}), not {per_key}")
        self.threads, self.per_key = threads, per_key
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"spillway-{name}")
        # By event loop too: a semaphore belongs to the loop it first waited in.
        self._lanes: dict[tuple[int, str], asyncio.Semaphore] = {}
        self._waiting: dict[tuple[int, str], int] = {}

    async def run(self, key: str, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the pool, once `key` has fewer than `per_key` running."""
        loop = asyncio.get_running_loop()
        lane_key = (id(loop), key)
        lane = self._lanes.get(lane_key)
        if lane is None:
            lane = self._lanes[lane_key] = asyncio.Semaphore(self.per_key)
        self._waiting[lane_key] = self._waiting.get(lane_key, 0) + 1
        try:
            async with lane:
                return await loop.run_in_executor(self.pool, functools.partial(function, *args))
        finally:
            self._waiting[lane_key] -= 1
            if not self._waiting[lane_key]:  # nobody holds or awaits the lane: it goes (keys come and go)
                del self._waiting[lane_key]
                self._lanes.pop(lane_key, None)
