"""A corrupt buffer file is quarantined at start and a fresh buffer takes over."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _buffer_helpers import events_for, open_buffer, wire_event

from edge_agent.buffer import BufferOpenError

pytestmark = pytest.mark.integration

QUARANTINE = re.compile(r"^buffer\.db\.corrupt-\d{8}T\d{6}Z$")


def filled(db: Path, *, crash_image: Path | None = None) -> dict[str, int]:
    """A buffer with events of two machines; returns its next sequence numbers.

    ``crash_image``: also copy the open buffer's files there (with -wal and -shm, as a
    crash leaves them).
    """
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 3000, "weld-1": 1000}), {"press-1": {"s": 1}})
        assert buffer.flush()
        if crash_image is not None:
            crash_image.mkdir()
            for suffix in ("", "-wal", "-shm"):
                shutil.copy(f"{db}{suffix}", crash_image / f"{db.name}{suffix}")
    return {"press-1": 3000, "weld-1": 1000}


def garbage_everywhere(data: bytes) -> bytes:
    return os.urandom(len(data))


def garbage_in_the_middle(data: bytes) -> bytes:
    middle = len(data) // 2 // 4096 * 4096
    return data[:middle] + os.urandom(3 * 4096) + data[middle + 3 * 4096 :]


def truncated_to_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def truncated_inside_the_header(data: bytes) -> bytes:
    return data[:50]


@pytest.mark.parametrize(
    "damage",
    [garbage_everywhere, garbage_in_the_middle, truncated_to_half, truncated_inside_the_header],
)
def test_a_corrupt_file_is_moved_aside_and_a_fresh_buffer_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes]
) -> None:
    db = tmp_path / "buffer.db"
    filled(db)
    original = db.read_bytes()
    db.write_bytes(damage(original))
    damaged = db.read_bytes()
    with caplog.at_level(logging.ERROR, logger="lineside.agent.buffer"):
        buffer = open_buffer(db)
    with buffer:
        moved = [p for p in tmp_path.iterdir() if QUARANTINE.match(p.name)]
        assert len(moved) == 1, list(tmp_path.iterdir())
        assert moved[0].read_bytes() == damaged  # kept as it was, for a post-mortem
        assert buffer.status().quarantined_files_total == 1
        assert buffer.status().depth_events == 0
        buffer.submit([wire_event("press-1", 7)])
        assert buffer.flush()
        assert [(e.equipment, e.seq) for e in buffer.read_after(0, 10)] == [("press-1", 7)]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert line.startswith("event=buffer_quarantined path=")
    assert f"moved_to={moved[0]}" in line
    with open_buffer(db) as again:  # the fresh file is healthy: no second quarantine
        assert again.status().quarantined_files_total == 0
        assert again.status().depth_events == 1


def test_the_wal_and_shm_files_go_with_the_corrupt_file(tmp_path: Path) -> None:
    crashed = tmp_path / "crashed"
    filled(tmp_path / "buffer.db", crash_image=crashed)
    db = crashed / "buffer.db"
    # every page is still in the WAL, which would hide damage to the main file: damage both
    wal_file = Path(f"{db}-wal")
    wal = os.urandom(32) + wal_file.read_bytes()[32:]
    wal_file.write_bytes(wal)
    db.write_bytes(os.urandom(db.stat().st_size))
    with open_buffer(db) as buffer:
        assert buffer.status().quarantined_files_total == 1
    names = sorted(p.name for p in crashed.iterdir())
    stamp = next(n for n in names if QUARANTINE.match(n))
    assert f"{stamp}-wal" in names
    assert f"{stamp}-shm" in names
    assert (crashed / f"{stamp}-wal").read_bytes() == wal


def test_sequence_numbers_are_salvaged_when_only_events_are_damaged(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    sequences = filled(db)
    db.write_bytes(garbage_in_the_middle(db.read_bytes()))
    with open_buffer(db) as buffer:
        assert buffer.status().quarantined_files_total == 1
        assert buffer.next_sequences() == sequences  # numbers the collector saw stay used
        assert buffer.load_snapshots() == {"press-1": {"s": 1}}
    with open_buffer(db) as reopened:
        assert reopened.next_sequences() == sequences


def test_an_unreadable_file_starts_with_no_numbers_rather_than_not_at_all(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    filled(db)
    db.write_bytes(os.urandom(db.stat().st_size))
    with open_buffer(db) as buffer:
        assert buffer.next_sequences() == {}


def test_someone_elses_sqlite_file_is_refused_not_quarantined(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(BufferOpenError, match="not a Lineside buffer"):
        open_buffer(db)
    assert db.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    with pytest.raises(BufferOpenError):  # and the lock was released on the way out
        open_buffer(db)


def test_a_directory_that_cannot_be_created_is_an_open_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((BufferOpenError, OSError)):
        open_buffer(blocker / "buffer.db")
