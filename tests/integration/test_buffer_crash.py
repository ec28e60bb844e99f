"""kill -9 durability: whatever the buffer announced as committed survives, intact.

A child process submits events in a loop and prints each commit it is told about; it
is killed with SIGKILL at random moments, several times over the same file. Afterwards
every reported event is there byte for byte, each equipment's numbers run without a
gap or a reuse, and the deriver snapshots match the committed events exactly (they are
committed in the same transaction).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _buffer_helpers import body_of, open_buffer

from lineside_protocol import EVENT_ADAPTER

pytestmark = pytest.mark.integration

CHILD = Path(__file__).parent / "_buffer_crash_child.py"
KILL_AFTER_COMMITS = [0, 1, 5, 15, 30, 60]
"""One round per entry, in random order: kill right after opening, or after that many
commits were reported (the child keeps running for a random while after the last one)."""


class Child:
    """The child process with its stdout lines arriving on a queue."""

    def __init__(self, db: Path, seed: int, stderr_path: Path) -> None:
        self._stderr = stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(seed)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, deadline: float) -> str:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("the child reported nothing before the deadline") from None
        if line is None:
            raise AssertionError(f"the child ended: {self.process.wait()}")
        return line

    def kill(self) -> list[str]:
        """SIGKILL, then every line the child had written before it died."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        self._stderr.close()
        rest = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                rest.append(line)
        return rest


def test_kill_9_keeps_every_reported_commit_and_never_reuses_its_numbers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "buffer.db"
    seed = random.randrange(1_000_000)
    rnd = random.Random(seed)
    reported: dict[int, tuple[str, int]] = {}
    kill_after = rnd.sample(KILL_AFTER_COMMITS, len(KILL_AFTER_COMMITS))
    for round_, commits in enumerate(kill_after):
        child = Child(db, seed + round_, tmp_path / f"child-{round_}.err")
        try:
            deadline = time.monotonic() + 60
            kind, sequences_text, snapshots_text = child.next_line(deadline).split(" ", 2)
            assert kind == "O"
            opened_with = json.loads(sequences_text)
            snapshots = json.loads(snapshots_text)
            for rowid, (equipment, seq) in reported.items():
                assert opened_with[equipment] > seq, (seed, round_, rowid, equipment)
            assert {eq: s["next_seq"] for eq, s in snapshots.items()} == opened_with, seed
            for _ in range(commits):
                record(reported, child.next_line(deadline))
        finally:
            lines = child.kill()  # also when an assertion failed: never leave it running
        for line in lines:
            record(reported, line)
    assert len(reported) >= sum(KILL_AFTER_COMMITS)

    with open_buffer(db) as buffer:
        rows = buffer.read_after(0, 10_000_000)
        sequences = buffer.next_sequences()
        snapshots = buffer.load_snapshots()
    by_rowid = {row.rowid: row for row in rows}
    for rowid, (equipment, seq) in reported.items():
        row = by_rowid.get(rowid)
        assert row is not None, f"seed {seed}: reported commit {rowid} is gone"
        assert (row.equipment, row.seq) == (equipment, seq), seed
    seqs: dict[str, list[int]] = {}
    for row in rows:
        assert row.body == body_of(row.equipment, row.seq), f"seed {seed}: row {row.rowid}"
        seqs.setdefault(row.equipment, []).append(row.seq)
    EVENT_ADAPTER.validate_json(rows[-1].body)
    for equipment, numbers in seqs.items():
        assert numbers == list(range(len(numbers))), f"seed {seed}: {equipment} gap or reuse"
        assert sequences[equipment] == len(numbers)
        assert snapshots[equipment] == {"next_seq": len(numbers)}


def record(reported: dict[int, tuple[str, int]], line: str) -> None:
    kind, rowid, equipment, seq = line.split(" ")
    assert kind == "C", line
    reported[int(rowid)] = (equipment, int(seq))
