"""Child of test_buffer_crash: submits events in a loop until it is killed.

    python _buffer_crash_child.py BUFFER_FILE SEED

Prints (and flushes) ``O <next_sequences> <snapshots>`` (JSON) after opening, then, from
the commit listener, ``C <rowid> <equipment> <seq>`` for the newest event of each commit
as read back from the buffer: a line on stdout means the commit had completed.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _buffer_helpers import open_buffer, wire_event

EQUIPMENT = ["press-1", "press-2", "weld-1", "pack-1", "robot-7"]
MAX_UNCOMMITTED = 20_000  # keep the producer ahead of the writer, but not unboundedly


def main(path: str, seed: int) -> None:
    rnd = random.Random(seed)
    buffer = open_buffer(Path(path), commit_interval_ms=rnd.choice([1, 5, 20, 50]))
    next_seq = buffer.next_sequences()
    compact = {"separators": (",", ":")}  # no spaces: the test splits the line on them
    print("O", json.dumps(next_seq, **compact), json.dumps(buffer.load_snapshots(), **compact))
    sys.stdout.flush()

    def committed(rowid: int) -> None:
        newest = buffer.read_after(rowid - 1, 1)[0]
        print("C", newest.rowid, newest.equipment, newest.seq, flush=True)

    buffer.add_commit_listener(committed)
    submitted = 0
    pause_s = rnd.choice([0.001, 0.003, 0.01])
    while True:
        batch = []
        for _ in range(rnd.randint(1, 100)):
            equipment = rnd.choice(EQUIPMENT)
            seq = next_seq.get(equipment, 0)
            next_seq[equipment] = seq + 1
            batch.append(wire_event(equipment, seq))
        touched = {event["equipment"]["equipment"] for event in batch}
        # the deriver state that goes with exactly these events
        buffer.submit(
            batch, {equipment: {"next_seq": next_seq[equipment]} for equipment in touched}
        )
        submitted += len(batch)
        time.sleep(pause_s)  # the event loop's other work; keeps the file small enough to check
        while submitted - buffer.status().captured_events_total > MAX_UNCOMMITTED:
            time.sleep(0.001)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
