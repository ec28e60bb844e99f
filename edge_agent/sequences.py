"""Per-equipment sequence numbers that survive restarts (SQLite, WAL, fsync'd).

The collector detects lost events by gaps in these numbers, so a number is never
reused and never skipped: ``allocate(equipment, n)`` reserves exactly ``n`` numbers
and commits before returning them.

Durability: WAL with synchronous=NORMAL survives a crash of the agent (kill -9) but
not a power cut, which can lose the last commits and so reuse their numbers. The
pipeline allocates once per group of samples (``allocate_many``), so the commit cost
is paid per group, not per event. The store-and-forward buffer will commit events and
their numbers together in its fsync'd group commits.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SequenceStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sequences (equipment TEXT PRIMARY KEY, next_seq INTEGER)"
        )
        self._lock = threading.Lock()

    def allocate(self, equipment: str, count: int) -> range:
        """Reserve ``count`` consecutive numbers for ``equipment`` (durably)."""
        return self.allocate_many({equipment: count}).get(equipment, range(0))

    def allocate_many(self, counts: dict[str, int]) -> dict[str, range]:
        """Reserve numbers for several equipment in one transaction (one commit)."""
        wanted = {equipment: n for equipment, n in counts.items() if n > 0}
        if not wanted:
            return {}
        out: dict[str, range] = {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for equipment, count in wanted.items():
                    row = self._db.execute(
                        "SELECT next_seq FROM sequences WHERE equipment = ?", (equipment,)
                    ).fetchone()
                    first = row[0] if row else 0
                    self._db.execute(
                        "INSERT INTO sequences (equipment, next_seq) VALUES (?, ?) "
                        "ON CONFLICT(equipment) DO UPDATE SET next_seq = excluded.next_seq",
                        (equipment, first + count),
                    )
                    out[equipment] = range(first, first + count)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def close(self) -> None:
        self._db.close()
