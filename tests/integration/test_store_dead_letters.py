"""Reading dead letters back and marking replays (collector.store.dead_letters)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from _pg_helpers import T0, migrated_database

from collector.records import AckTarget, DeadLetter
from collector.store import write
from collector.store.dead_letters import get_dead_letters, list_dead_letters, mark_replayed

pytestmark = pytest.mark.integration


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with migrated_database("store_dead") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def letter(n: int, reason: str, payload: bytes = b"{}") -> DeadLetter:
    ack = AckTarget("acme", "plant-1", "agent-7", f"batch-{n}") if n % 2 else None
    return DeadLetter(f"topic/{n}", payload, reason, f"detail {n}", T0 + timedelta(seconds=n), ack)


def test_list_newest_first_filtered_by_reason_and_replay(conn: psycopg.Connection) -> None:
    write(conn, [], [letter(1, "not_json"), letter(2, "invalid_event"), letter(3, "not_json")])
    assert [row.topic for row in list_dead_letters(conn)] == ["topic/3", "topic/2", "topic/1"]
    assert [row.topic for row in list_dead_letters(conn, reason="not_json", limit=1)] == ["topic/3"]
    newest = list_dead_letters(conn)[0]
    assert (newest.agent_id, newest.batch_id) == ("agent-7", "batch-3")

    assert mark_replayed(conn, [newest.id]) == 1
    assert mark_replayed(conn, [newest.id]) == 0  # marked once
    assert [row.topic for row in list_dead_letters(conn)] == ["topic/2", "topic/1"]
    replayed = list_dead_letters(conn, include_replayed=True)[0]
    assert replayed.topic == "topic/3"
    assert replayed.replayed_at is not None


def test_get_by_id_tells_whether_the_payload_was_cut(conn: psycopg.Connection) -> None:
    write(conn, [], [letter(1, "too_large", b"x" * 100)], payload_cap_bytes=10)
    write(conn, [], [letter(2, "not_json", b"short")], payload_cap_bytes=10)
    ids = sorted(row.id for row in list_dead_letters(conn))
    rows = get_dead_letters(conn, [*ids, 999_999])
    assert [(row.payload, row.payload_bytes, row.complete) for row in rows] == [
        (b"x" * 10, 100, False),
        (b"short", 5, True),
    ]
