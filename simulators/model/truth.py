"""Ground-truth records: what the simulated machines really did.

Every run writes them as JSON lines so that end-to-end tests can compute the
expected OEE independently of the agent and collector. Record types:

``run_started``   scenario, seed, speed, start and the machines' static facts
``state``         ``from``/``to`` canonical state, ``reason``, encoded ``code``
``part``          one produced part: ``good``, ``product``, ``order`` and the raw
                  (wrapped) counters after it: ``total``, ``good_count``, ``scrap_count``
``order``         order change: ``order``, ``product``, ``ideal_cycle_time_s``
``counter_reset`` ``cause`` = order_change | command | fault
``end``           the scripted timeline ended
``fault``         a fault was injected (``fault`` and its parameters)
``run_stopped``   the simulator stopped serving
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class TruthRecord:
    ts: datetime
    type: str
    machine: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "ts": format_ts(self.ts),
            "type": self.type,
        }
        if self.machine is not None:
            body["machine"] = self.machine
        body.update(self.data)
        return json.dumps(body, separators=(",", ":"), sort_keys=False)


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and an explicit offset."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Load a ground-truth log; ``ts`` fields become aware datetimes."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                record["ts"] = parse_ts(record["ts"])
                records.append(record)
    return records


class TruthWriter:
    """Appends records to a JSONL file, flushing after every batch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, records: list[TruthRecord]) -> None:
        if not records:
            return
        self._handle.write("".join(record.to_json() + "\n" for record in records))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
