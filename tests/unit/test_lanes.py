"""spillway.lanes: one key's hung work holds at most its lane, never the pool."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from spillway.lanes import Lanes


def test_a_hung_tenant_holds_only_its_lane_and_the_others_run_at_once() -> None:
    lanes = Lanes("test", threads=4, per_key=2)
    release = threading.Event()
    started: list[str] = []

    def hang(key: str) -> str:
        started.append(key)
        release.wait(10)  # bounded: released below, or gives up by itself
        return key

    def quick(key: str) -> tuple[str, float]:
        return key, time.monotonic()

    async def scenario() -> tuple[list[str], list[tuple[str, float]], float]:
        hung = [asyncio.ensure_future(lanes.run("slow-tenant", hang, "slow")) for _ in range(6)]
        await asyncio.sleep(0.2)
        began = time.monotonic()
        others = await asyncio.gather(*(lanes.run(f"tenant-{i}", quick, f"tenant-{i}") for i in range(8)))
        running = list(started)
        release.set()
        await asyncio.gather(*hung)
        return running, others, began

    running, others, began = asyncio.run(scenario())
    assert running == ["slow", "slow"], "the hung tenant holds its two threads, no more"
    assert all(at - began < 1.0 for _, at in others), "the others ran while it hung"
    assert lanes._lanes == {} and lanes._waiting == {}, "lanes go when nobody uses them"
    lanes.pool.shutdown()


def test_a_lane_wider_than_the_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="per_key must lie between 1 and threads"):
        Lanes("test", threads=2, per_key=3)
