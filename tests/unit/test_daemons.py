"""The operator's async daemons pause without a task of their own: kopf cancels them at once
when it stops them, and a timer task of `stopped.wait(n)` could outlive that cancellation and end
in a TimeoutError that kopf re-raises when the operator exits."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from kopf._cogs.aiokits.aioenums import FlagSetter

from spillway import handlers


class _NoPrimary:
    """A follower's Cluster and probe stand-in: no store pod, so nothing changes."""

    def list(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return []

    def get(self, *_: Any, **__: Any) -> None:
        return None


async def _paused_tasks() -> tuple[set[str], bool]:
    setter: FlagSetter[Any] = FlagSetter()
    memo = SimpleNamespace(cluster=_NoPrimary(), probe=_NoPrimary())
    daemon = asyncio.create_task(handlers.primary_follower(
        stopped=setter.async_waiter, name="shop", namespace="shop", uid="u", memo=memo), name="daemon")
    await asyncio.sleep(0.3)  # well into its pause of FOLLOW_SECONDS
    others = {t.get_name() for t in asyncio.all_tasks() if t not in (daemon, asyncio.current_task())}
    daemon.cancel()
    try:
        await daemon
    except asyncio.CancelledError:
        pass
    return others, daemon.cancelled()


def test_the_primary_follower_pauses_without_a_task_of_its_own_and_ends_when_cancelled() -> None:
    others, cancelled = asyncio.run(_paused_tasks())
    assert others == set(), others
    assert cancelled
