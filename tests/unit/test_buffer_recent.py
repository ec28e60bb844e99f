"""The buffer's memory of its latest commits (``edge_agent.buffer._recent``), pure."""

from __future__ import annotations

from edge_agent.buffer import BufferedEvent
from edge_agent.buffer._recent import RecentEvents


def rows(first: int, count: int) -> list[tuple]:
    """Rows as the writer commits them: (rowid, equipment, seq, event_id, event_time,
    captured_ms, size, body)."""
    return [
        (rowid, "press-1", rowid * 10, f"id-{rowid}", "t", 1000 + rowid, 3, b"{%d}" % rowid)
        for rowid in range(first, first + count)
    ]


def test_serves_what_follows_on_from_the_reader_and_forgets_what_it_has() -> None:
    recent = RecentEvents()
    recent.committed(rows(1, 5))
    recent.committed(rows(6, 3))
    assert recent.after(0, 3) == [
        BufferedEvent(1, "press-1", 10, 1001, b"{1}"),
        BufferedEvent(2, "press-1", 20, 1002, b"{2}"),
        BufferedEvent(3, "press-1", 30, 1003, b"{3}"),
    ]
    assert [e.rowid for e in recent.after(3, 100) or []] == [4, 5, 6, 7, 8]
    assert recent.after(2, 10) is None  # forgotten once the reader was past it
    assert recent.after(8, 10) is None  # nothing newer


def test_a_reader_behind_the_kept_events_reads_the_file() -> None:
    recent = RecentEvents(max_events=4)
    recent.committed(rows(1, 6))
    assert recent.after(0, 10) is None  # 1 and 2 were pushed out
    assert [e.rowid for e in recent.after(2, 10) or []] == [3, 4, 5, 6]


def test_clear_and_a_gap_start_over() -> None:
    recent = RecentEvents()
    recent.committed(rows(1, 3))
    recent.clear()
    assert recent.after(0, 10) is None
    recent.committed(rows(4, 2))
    recent.committed(rows(9, 2))  # not contiguous: only the newest run is kept
    assert recent.after(3, 10) is None
    assert [e.rowid for e in recent.after(8, 10) or []] == [9, 10]
