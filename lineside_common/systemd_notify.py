"""systemd integration: readiness, status text, watchdog pings, stop and reload.

Shared by the edge agent and the collector. Active only when systemd started the
service with ``Type=notify`` (``NOTIFY_SOCKET`` is set); otherwise every call does
nothing, so the same code runs in a terminal.

The agent pings the watchdog from a task on its event loop (``start_watchdog``): when
the loop is stuck the pings stop, and after ``WatchdogSec=`` systemd kills and restarts
it. A threaded service calls ``watchdog_ping`` from the loop it wants watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping

import sdnotify

log = logging.getLogger("lineside.systemd")

_MAX_STATUS_CHARS = 200  # systemctl status shows one line; keep it short


class SystemdNotifier:
    """Sends sd_notify messages to systemd (no-op without ``NOTIFY_SOCKET``).

    Messages are single non-blocking datagrams, so the methods may be called from
    coroutines on the loop. Failures are logged, never raised: a lost notification
    must not take the agent down.
    """

    def __init__(self) -> None:
        self._socket_path = os.environ.get("NOTIFY_SOCKET") or None
        self.watchdog_interval_s = _watchdog_interval_s(os.environ)
        self._notifier: sdnotify.SystemdNotifier | None = None
        self._task: asyncio.Task[None] | None = None
        if self._socket_path is not None:
            self._notifier = _connect(self._socket_path)

    @property
    def active(self) -> bool:
        """True when connected to systemd's notification socket."""
        return self._notifier is not None

    def ready(self, status: str | None = None) -> None:
        """Tell systemd the agent has started (``READY=1``), with an optional status."""
        self._send("READY=1", status)

    def status(self, text: str) -> None:
        """Set the one-line status shown by ``systemctl status edge-agent``."""
        self._send(None, text)

    def stopping(self, status: str | None = None) -> None:
        """Tell systemd the agent is shutting down (``STOPPING=1``)."""
        self._send("STOPPING=1", status)

    def watchdog_ping(self) -> None:
        """Send one ``WATCHDOG=1`` (the watchdog task does this periodically)."""
        self._send("WATCHDOG=1", None)

    @contextlib.contextmanager
    def reloading(self, status: str = "reloading configuration") -> Iterator[None]:
        """Wrap a configuration reload: ``RELOADING=1`` before, ``READY=1`` after.

        ``READY=1`` is sent even when the reload fails (the agent carries on with
        its previous configuration); set a status saying so in the except branch.
        """
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec}", status)
        try:
            yield
        finally:
            self._send("READY=1", None)

    def start_watchdog(self) -> None:
        """Ping at half of ``WATCHDOG_USEC`` from a task; call on the agent's loop.

        Does nothing when systemd set no watchdog for this process.
        """
        if self._notifier is None or self.watchdog_interval_s is None:
            return
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(
            self._ping_forever(self.watchdog_interval_s), name="lineside-systemd-watchdog"
        )
        log.info("event=watchdog_enabled interval_s=%.3g", self.watchdog_interval_s)

    async def stop_watchdog(self) -> None:
        """Stop the watchdog task (before ``stopping()`` at shutdown)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def close(self) -> None:
        """Close the notification socket."""
        notifier, self._notifier = self._notifier, None
        if notifier is not None and notifier.socket is not None:
            notifier.socket.close()

    async def _ping_forever(self, interval_s: float) -> None:
        while True:
            self.watchdog_ping()
            await asyncio.sleep(interval_s)

    def _send(self, assignment: str | None, status: str | None) -> None:
        if self._notifier is None:
            return
        lines = [] if assignment is None else [assignment]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        message = "\n".join(lines)
        try:
            # sdnotify encodes latin-1; pass UTF-8 bytes through it unchanged.
            self._notifier.notify(message.encode("utf-8").decode("latin-1"))
        except OSError as exc:
            log.warning("event=sd_notify_failed socket=%s error=%r", self._socket_path, exc)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_STATUS_CHARS else flat[: _MAX_STATUS_CHARS - 3] + "..."


def _watchdog_interval_s(env: Mapping[str, str]) -> float | None:
    """Half of ``WATCHDOG_USEC`` when the watchdog is meant for this process."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2 / 1_000_000


def _connect(path: str) -> sdnotify.SystemdNotifier | None:
    try:
        notifier = sdnotify.SystemdNotifier(debug=True)  # reads NOTIFY_SOCKET itself
    except Exception as exc:
        log.warning("event=sd_notify_unavailable socket=%s error=%r", path, exc)
        return None
    notifier.socket.setblocking(False)  # a full socket queue must not stall the loop
    return notifier
