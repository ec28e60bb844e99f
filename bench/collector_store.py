"""Benchmark: events per second through ``collector.store.write()`` into PostgreSQL.

Writes ``--events`` realistic events (mostly ``tag.sampled`` and ``production.counted``,
some state changes and order changes, ``--equipment`` machines, ``--batch-size`` events
per batch, ``--batches-per-write`` batches per ``write()`` call) into a fresh database,
then the same amount again with every other batch a resend of an already written one
(50% duplicates). All events are built before the timed part: the validator hands the
store ready ``AcceptedBatch`` values. ``--writers N`` writes from N connections at once
(one thread each, each with its own share of the equipment). Prints events/s, per-write
latency p50/p99, this process's CPU against wall time, the PostgreSQL backends' CPU, WAL
bytes per event and the load average.

    ./lineside bench collector_store
    ./lineside bench collector_store --events 200000 --batches-per-write 1
    ./lineside bench collector_store --writers 2
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from collector.records import AcceptedBatch, Equipment, EventRow  # noqa: E402
from collector.store import apply_migrations, ensure_partitions, write  # noqa: E402
from lineside_protocol.ids import UUIDv7Generator  # noqa: E402

STATES = ("running", "idle", "starved", "blocked", "unplanned_stop", "planned_stop")
TAGS = ("hydraulic_pressure", "oil_temperature", "spindle_speed", "motor_current", "vibration")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Machine:
    """One simulated equipment: its own seq, clock and current state and order."""

    def __init__(self, index: int, start: datetime, rng: random.Random) -> None:
        self.equipment = Equipment(
            "acme", "plant-1", f"area-{index % 4}", f"line-{index % 10}", f"m-{index:03d}"
        )
        self.agent_id = f"agent-{index % 10}"
        self.seq = 0
        self.time = start
        self.state = "running"
        self.order = f"order-{index}-0"
        self.rng = rng

    def events(self, count: int, ids: list[str]) -> list[EventRow]:
        rows = []
        for event_id in ids[:count]:
            self.time += timedelta(milliseconds=20)
            kind, payload = self._next()
            rows.append(
                EventRow(
                    event_id,
                    kind,
                    self.seq,
                    self.time,
                    self.time + timedelta(milliseconds=5),
                    self.order,
                    None,
                    False,
                    payload,
                )
            )
            self.seq += 1
        return rows

    def _next(self) -> tuple[str, dict[str, Any]]:
        roll = self.rng.random()
        if roll < 0.78:
            tag = TAGS[self.rng.randrange(len(TAGS))]
            value: Any = round(self.rng.uniform(0, 500), 2)
            return "tag.sampled", {
                "tag": f"{self.equipment.equipment}.{tag}",
                "value": value,
                "unit": "bar",
                "quality": "good",
                "status": "Good",
            }
        if roll < 0.985:
            good = self.rng.randrange(0, 5)
            return "production.counted", {
                "good": good,
                "scrap": 0,
                "total": good,
                "product_id": "bracket-a",
                "order_id": self.order,
                "counter_reset": False,
                "interval_start": (self.time - timedelta(seconds=1)).isoformat(),
            }
        if roll < 0.997:
            previous, self.state = self.state, STATES[self.rng.randrange(len(STATES))]
            return "equipment.state_changed", {
                "state": self.state,
                "previous_state": previous,
                "raw_value": 1,
                "reason_code": None,
            }
        if roll < 0.9985:
            return "production.ended", {
                "order_id": self.order,
                "product_id": "bracket-a",
                "reason": "order_changed",
            }
        self.order = f"order-{self.rng.randrange(10**6)}"
        return "production.started", {
            "order_id": self.order,
            "product_id": "bracket-a",
            "ideal_cycle_time_s": 2.5,
        }


@dataclass
class Phase:
    name: str
    offered: int = 0
    inserted: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    backend_cpu_s: float = 0.0
    wal_bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def batch_stream(machines: list[Machine], batch_size: int) -> Iterator[AcceptedBatch]:
    """Batches round-robin over the machines, each batch the next events of one machine."""
    ids = UUIDv7Generator()
    while True:
        for machine in machines:
            events = machine.events(batch_size, ids.new_many(batch_size))
            yield AcceptedBatch(
                f"lineside/v1/acme/plant-1/x/y/{machine.equipment.equipment}/events",
                ids.new(),
                machine.agent_id,
                machine.equipment,
                datetime.now(UTC),
                events,
                550 * len(events),
            )


def plan_calls(
    stream: Iterator[AcceptedBatch], per_write: int, events: int, duplicates: bool, seed: int
) -> list[list[AcceptedBatch]]:
    """The write() calls of one writer, built before timing. With ``duplicates`` every other
    batch is a resend of a batch this writer sent before (a lost ack, say)."""
    rng = random.Random(seed)
    sent: list[AcceptedBatch] = []
    calls = []
    offered = 0
    slot = 0
    while offered < events:
        batches = []
        for _ in range(per_write):
            if duplicates and slot % 2 == 1 and sent:
                batches.append(sent[rng.randrange(len(sent))])
            else:
                batches.append(next(stream))
            slot += 1
        sent.extend(batches)
        offered += sum(len(batch.events) for batch in batches)
        calls.append(batches)
    return calls


def backend_cpu_s(pid: int) -> float:
    """utime + stime of a local PostgreSQL backend (0 when not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_phase(
    connections: list[psycopg.Connection], phase: Phase, plans: list[list[list[AcceptedBatch]]]
) -> None:
    """Each connection writes its own plan in its own thread (own equipment, so writers do
    not wait for each other's per-equipment locks)."""
    wal_start = connections[0].execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    pids = [conn.info.backend_pid for conn in connections]
    backend_start = sum(backend_cpu_s(pid) for pid in pids)
    barrier = threading.Barrier(len(connections) + 1)
    lock = threading.Lock()

    def writer(conn: psycopg.Connection, calls: list[list[AcceptedBatch]]) -> None:
        barrier.wait()
        for batches in calls:
            wall = time.perf_counter()
            result = write(conn, batches, [])
            wall = time.perf_counter() - wall
            with lock:
                phase.latencies_ms.append(wall * 1000)
                phase.offered += sum(len(batch.events) for batch in batches)
                phase.inserted += result.events_inserted

    threads = [
        threading.Thread(target=writer, args=(conn, calls))
        for conn, calls in zip(connections, plans, strict=True)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    phase.wall_s = time.perf_counter() - wall
    phase.cpu_s = time.process_time() - cpu
    phase.backend_cpu_s = sum(backend_cpu_s(pid) for pid in pids) - backend_start
    phase.wal_bytes = (
        connections[0]
        .execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (wal_start,))
        .fetchone()[0]
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(phase: Phase) -> None:
    print(f"\n{phase.name}")
    rows = [
        ("events offered", f"{phase.offered:,}"),
        ("events inserted", f"{phase.inserted:,}"),
        ("write() calls", f"{len(phase.latencies_ms):,}"),
        ("offered events/s", f"{phase.offered / phase.wall_s:,.0f}"),
        ("inserted events/s", f"{phase.inserted / phase.wall_s:,.0f}"),
        (
            "latency p50 / p99",
            f"{pct(phase.latencies_ms, 0.5):.1f} / {pct(phase.latencies_ms, 0.99):.1f} ms",
        ),
        (
            "Python CPU / wall",
            f"{phase.cpu_s:.1f} s / {phase.wall_s:.1f} s ({phase.cpu_s / phase.wall_s:.0%})",
        ),
        ("Python CPU per event", f"{phase.cpu_s / phase.offered * 1e6:.1f} us"),
        (
            "backend CPU / wall",
            f"{phase.backend_cpu_s:.1f} s ({phase.backend_cpu_s / phase.wall_s:.0%})",
        ),
        ("WAL per offered event", f"{phase.wal_bytes / phase.offered:.0f} bytes"),
    ]
    for name, value in rows:
        print(f"  {name:<22}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000, help="events per phase")
    parser.add_argument("--equipment", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batches-per-write", type=int, default=4)
    parser.add_argument(
        "--writers", type=int, default=1, help="connections writing at once, one thread each"
    )
    parser.add_argument(
        "--admin-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = f"lineside_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    dsn = psycopg.conninfo.make_conninfo(args.admin_dsn, dbname=name)
    print(f"database {name}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{args.events:,} events per phase, {args.equipment} equipment, batches of "
        f"{args.batch_size}, {args.batches_per_write} batches per write(), "
        f"{args.writers} writer connection(s)"
    )
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
            ensure_partitions(conn, back_days=1, ahead_days=2)
        start = datetime.now(UTC) - timedelta(hours=2)
        rng = random.Random(7)
        machines = [Machine(i, start, rng) for i in range(args.equipment)]
        streams = [
            batch_stream(machines[k :: args.writers], args.batch_size) for k in range(args.writers)
        ]
        share = args.events // args.writers
        connections = [psycopg.connect(dsn, autocommit=True) for _ in range(args.writers)]
        try:
            for name_, duplicates in (
                ("unique events", False),
                ("50% duplicates (every other batch a resend)", True),
            ):
                plans = [
                    plan_calls(stream, args.batches_per_write, share, duplicates, seed=k)
                    for k, stream in enumerate(streams)
                ]
                phase = Phase(name_)
                run_phase(connections, phase, plans)
                report(phase)
        finally:
            for conn in connections:
                conn.close()
    finally:
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if not args.keep:
            with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
