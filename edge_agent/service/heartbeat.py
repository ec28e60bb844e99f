"""A heartbeat ticked by a task on the agent's event loop, read from other threads.

The health endpoint runs in its own thread so that it answers even when the event
loop is stuck; it tells a live loop from a stuck one by the age of the last tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class LoopHeartbeat:
    """Records when a task on the asyncio loop last ran.

    ``start()`` (on the loop) creates the ticking task; ``age_s()`` and ``alive()`` are
    safe to call from any thread (they read one float, written only by the task).
    """

    def __init__(self, interval_s: float = 1.0, stale_after_s: float = 10.0) -> None:
        if interval_s <= 0 or stale_after_s <= interval_s:
            raise ValueError(
                f"heartbeat: need 0 < interval_s ({interval_s}) < stale_after_s ({stale_after_s})"
            )
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._last_tick: float | None = None
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Record a tick now (the task calls this; callable directly from the loop)."""
        self._last_tick = time.monotonic()

    def age_s(self) -> float | None:
        """Seconds since the last tick, or None before the first one."""
        last = self._last_tick
        return None if last is None else time.monotonic() - last

    def alive(self) -> bool:
        """True when the loop has ticked within ``stale_after_s``."""
        age = self.age_s()
        return age is not None and age <= self.stale_after_s

    def start(self) -> None:
        """Start ticking; call from coroutine code running on the agent's loop."""
        if self._task is not None and not self._task.done():
            return
        self.beat()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lineside-heartbeat")

    async def stop(self) -> None:
        """Stop ticking (``alive()`` turns false after ``stale_after_s``)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.beat()
