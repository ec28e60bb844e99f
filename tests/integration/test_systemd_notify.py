"""sd_notify messages arrive on a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fake_systemd import FakeSystemd

from edge_agent.service import SystemdNotifier

pytestmark = pytest.mark.integration


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    # A short directory: AF_UNIX paths are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="sdn-") as directory:
        path = str(Path(directory) / "notify")
        fake = FakeSystemd(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield fake
        fake.close()


def test_inactive_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notifier = SystemdNotifier()
    assert notifier.active is False
    notifier.ready("started")  # no socket, no error
    notifier.stopping()


def test_ready_status_and_stopping(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier()
    assert notifier.active
    notifier.ready("reading 3 devices")
    notifier.status("2 of 3 devices connected;\nbroker down")
    notifier.stopping("stopping")
    assert systemd.wait_for(3) == [
        "READY=1\nSTATUS=reading 3 devices",
        "STATUS=2 of 3 devices connected; broker down",  # one line for systemctl status
        "STOPPING=1\nSTATUS=stopping",
    ]
    notifier.close()


def test_status_text_arrives_as_utf8_and_is_kept_short(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier()
    notifier.status("Störung an Presse 1")
    notifier.status("x" * 500)
    first, second = systemd.wait_for(2)
    assert first == "STATUS=Störung an Presse 1"
    assert second == "STATUS=" + "x" * 197 + "..."


def test_reload_is_wrapped_in_reloading_and_ready(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier()
    with notifier.reloading():
        pass
    with pytest.raises(ValueError, match="bad yaml"), notifier.reloading():
        raise ValueError("bad yaml")
    messages = systemd.wait_for(4)
    for reloading, ready in (messages[0:2], messages[2:4]):
        lines = reloading.split("\n")
        assert lines[0] == "RELOADING=1"
        assert lines[1].startswith("MONOTONIC_USEC=")
        assert int(lines[1].split("=")[1]) > 0
        assert lines[2] == "STATUS=reloading configuration"
        assert ready == "READY=1"  # also after a failed reload: the old config runs on


def test_abstract_socket_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"lineside-test-{os.getpid()}-{time.monotonic_ns()}"
    fake = FakeSystemd("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        SystemdNotifier().ready()
        assert fake.wait_for(1) == ["READY=1"]
    finally:
        fake.close()


def test_a_socket_nobody_listens_on_is_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    notifier = SystemdNotifier()
    assert notifier.active is False
    notifier.ready()


async def test_watchdog_pings_at_half_the_interval_and_stop_with_a_stuck_loop(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # 0.1 s: pings every 0.05 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = SystemdNotifier()
    assert notifier.watchdog_interval_s == 0.05
    notifier.start_watchdog()
    try:
        assert set(await systemd.await_for(4)) == {"WATCHDOG=1"}
        before = len(systemd.messages)
        time.sleep(0.5)  # noqa: ASYNC251  (a stuck loop on purpose: no task runs, no pings)
        stuck_for = time.monotonic()
        await systemd.await_for(before + 2)
        during = [t for t, _ in systemd.messages[before:] if t < stuck_for]
        assert len(during) <= 1, systemd.messages  # at most the one already sent
        gaps = [
            b - a for (a, _), (b, _) in zip(systemd.messages, systemd.messages[1:], strict=False)
        ]
        assert max(gaps) >= 0.4
    finally:
        await notifier.stop_watchdog()
    count = len(systemd.messages)
    await asyncio.sleep(0.2)  # several intervals: a ping would have arrived by now
    assert len(systemd.messages) == count


def test_no_watchdog_for_another_pid_or_without_usec(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert SystemdNotifier().watchdog_interval_s is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert SystemdNotifier().watchdog_interval_s == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    notifier = SystemdNotifier()
    assert notifier.watchdog_interval_s is None
    notifier.start_watchdog()  # nothing to do, no error outside a loop either
