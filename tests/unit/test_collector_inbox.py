"""The collector's inbox (paho thread -> ingest thread): how long a group waits."""

from __future__ import annotations

import threading
import time

from collector.ingest.subscriber import Inbox, Received


def message(received_at: float, size: int = 500) -> Received:
    return Received("t", b"x" * size, 1, 1, 0, received_at)


def test_a_fresh_message_waits_max_wait_for_others() -> None:
    inbox = Inbox()
    inbox.put(message(time.time()))
    started = time.monotonic()
    taken = inbox.take(10_000, 0.1, 1.0, threading.Event())
    assert len(taken) == 1
    assert 0.08 <= time.monotonic() - started < 1.0


def test_messages_that_already_waited_are_taken_at_once() -> None:
    inbox = Inbox()
    for _ in range(3):  # queued while the ingest thread validated the group before
        inbox.put(message(time.time() - 0.2))
    started = time.monotonic()
    taken = inbox.take(10_000, 0.1, 1.0, threading.Event())
    assert len(taken) == 3
    assert time.monotonic() - started < 0.05


def test_a_full_group_is_taken_without_waiting() -> None:
    inbox = Inbox()
    inbox.put(message(time.time(), size=5000))  # 10 events' worth at 500 bytes each
    started = time.monotonic()
    assert len(inbox.take(10, 5.0, 1.0, threading.Event())) == 1
    assert time.monotonic() - started < 0.05


def test_stopping_or_a_wake_up_returns_nothing_from_an_empty_inbox() -> None:
    inbox = Inbox()
    stop = threading.Event()
    stop.set()
    assert inbox.take(10_000, 0.1, 1.0, stop) == []
    inbox.wake()
    assert inbox.take(10_000, 0.1, 1.0, threading.Event()) == []
