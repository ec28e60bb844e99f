"""A stand-in for systemd's side of ``Type=notify``: an AF_UNIX datagram socket that
records what a service sends to NOTIFY_SOCKET (sd_notify)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time


class FakeSystemd:
    """Receives notifications in a thread, recording (monotonic time, message)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode("utf-8")))

    def texts(self) -> list[str]:
        return [text for _, text in self.messages]

    def lines(self) -> list[str]:
        """Every line of every message (one message may carry several)."""
        return [line for text in self.texts() for line in text.splitlines()]

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} messages, got {self.texts()}")
            time.sleep(0.005)
        return self.texts()

    async def await_for(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} messages, got {self.texts()}")
            await asyncio.sleep(0.005)
        return self.texts()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
