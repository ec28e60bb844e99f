"""A month of plausible production for OEE benchmarks: N machines, written through the
store's real write path (``collector.store.write``).

Each machine alternates running spells with stops (micro-stops, unplanned stops with
reason codes, starvation, changeovers that start a new production run), counts parts
every ``count_every_s`` while running, and samples a process value every 10 minutes.
Machines are spread over lines of ``per_line`` on one site. Deterministic per seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.records import AcceptedBatch, Equipment, EventRow
from collector.store import write
from lineside_protocol.ids import UUIDv7Generator

PRODUCTS = {"bracket-a": 2.5, "bracket-b": 4.0, "housing-c": 6.0}
SITE, AREA = "plant-1", "assembly"

MASTERDATA_YAML = """\
calendars:
  three-shifts:
    timezone: Europe/Berlin
    shifts:
      - {name: early, days: [mon-sat], start: "06:00", end: "14:00",
         breaks: [{start: "09:00", end: "09:15"}, {start: "12:00", end: "12:30"}]}
      - {name: late, days: [mon-sat], start: "14:00", end: "22:00",
         breaks: [{start: "18:00", end: "18:30"}]}
      - {name: night, days: [mon-fri], start: "22:00", end: "06:00",
         breaks: [{start: "02:00", end: "02:30"}]}
assign:
  - {site: plant-1, calendar: three-shifts}
products:
  bracket-a: {ideal_cycle_time_s: 2.5}
  bracket-b: {ideal_cycle_time_s: 4.0}
  housing-c: {ideal_cycle_time_s: 6.0}
"""


@dataclass
class MachineStream:
    """The events of one machine, oldest first."""

    equipment: Equipment
    agent_id: str
    events: list[EventRow]


def machine_path(index: int, per_line: int) -> Equipment:
    return Equipment("acme", SITE, AREA, f"line-{index // per_line + 1}", f"m-{index + 1:02d}")


def simulate(
    index: int, start: datetime, end: datetime, per_line: int, count_every_s: float, seed: int
) -> MachineStream:
    """One machine's events over ``[start, end)``."""
    rng = random.Random(seed * 1000 + index)
    ids = UUIDv7Generator()
    path = machine_path(index, per_line)
    events: list[EventRow] = []
    seq = 0

    def add(kind: str, at: datetime, payload: dict[str, Any]) -> None:
        nonlocal seq
        events.append(
            EventRow(
                str(ids.new()),
                kind,
                seq,
                at,
                at + timedelta(milliseconds=30),
                None,
                None,
                False,
                payload,
            )
        )
        seq += 1

    product = rng.choice(list(PRODUCTS))
    state = "running"
    t = start
    add(
        "production.started",
        t,
        {
            "order_id": f"o-{index}-0",
            "product_id": product,
            "ideal_cycle_time_s": PRODUCTS[product],
        },
    )
    add(
        "equipment.state_changed",
        t,
        {"state": "running", "previous_state": None, "raw_value": 1, "reason_code": None},
    )
    next_sample = t
    order = 0
    while t < end:
        spell = timedelta(seconds=rng.uniform(15 * 60, 80 * 60))
        stop_at = min(t + spell, end)
        ict = PRODUCTS[product]
        cursor = t
        while cursor + timedelta(seconds=count_every_s) <= stop_at:
            cursor += timedelta(seconds=count_every_s)
            made = int(count_every_s / ict * rng.uniform(0.8, 0.98))
            scrap = 1 if rng.random() < 0.08 else 0
            add(
                "production.counted",
                cursor,
                {
                    "good": max(made - scrap, 0),
                    "scrap": scrap,
                    "total": max(made, scrap),
                    "product_id": product,
                    "order_id": f"o-{index}-{order}",
                    "counter_reset": False,
                    "interval_start": None,
                },
            )
            while next_sample <= cursor:
                add(
                    "tag.sampled",
                    next_sample,
                    {
                        "tag": "oil_temperature",
                        "value": round(rng.uniform(38, 61), 2),
                        "unit": "degC",
                        "quality": "good",
                        "status": "Good",
                    },
                )
                next_sample += timedelta(minutes=10)
        t = stop_at
        if t >= end:
            break
        roll = rng.random()
        if roll < 0.45:
            stop, length, reason = "unplanned_stop", rng.uniform(20, 110), rng.randint(1, 3)
        elif roll < 0.75:
            stop, length, reason = "unplanned_stop", rng.uniform(180, 1800), rng.randint(1, 12)
        elif roll < 0.9:
            stop, length, reason = "starved", rng.uniform(120, 600), None
        else:
            stop, length, reason = "changeover", rng.uniform(600, 1800), None
        add(
            "equipment.state_changed",
            t,
            {"state": stop, "previous_state": state, "raw_value": 2, "reason_code": reason},
        )
        state = stop
        t += timedelta(seconds=length)
        if stop == "changeover":
            add(
                "production.ended",
                t,
                {
                    "order_id": f"o-{index}-{order}",
                    "product_id": product,
                    "reason": "order_changed",
                },
            )
            order += 1
            product = rng.choice(list(PRODUCTS))
            add(
                "production.started",
                t,
                {
                    "order_id": f"o-{index}-{order}",
                    "product_id": product,
                    "ideal_cycle_time_s": PRODUCTS[product],
                },
            )
        if t < end:
            add(
                "equipment.state_changed",
                t,
                {"state": "running", "previous_state": state, "raw_value": 1, "reason_code": None},
            )
            state = "running"
    events.sort(key=lambda e: (e.event_time, e.seq))
    return MachineStream(path, f"agent-{index // per_line + 1}", events)


def batches(stream: MachineStream, size: int) -> Iterator[AcceptedBatch]:
    ids = UUIDv7Generator()
    for i in range(0, len(stream.events), size):
        chunk = stream.events[i : i + size]
        yield AcceptedBatch(
            topic=f"lineside/v1/acme/{SITE}/{AREA}/{stream.equipment.line}/"
            f"{stream.equipment.equipment}/events",
            batch_id=str(ids.new()),
            agent_id=stream.agent_id,
            equipment=stream.equipment,
            sent_at=chunk[-1].event_time,
            events=chunk,
            payload_bytes=200 * len(chunk),
        )


def load(
    conn: psycopg.Connection,
    machines: int,
    start: datetime,
    end: datetime,
    *,
    per_line: int = 5,
    count_every_s: float = 40.0,
    seed: int = 1,
    batch_size: int = 2000,
) -> int:
    """Simulate and write every machine; returns the number of events written."""
    total = 0
    for index in range(machines):
        stream = simulate(index, start, end, per_line, count_every_s, seed)
        group: list[AcceptedBatch] = []
        for batch in batches(stream, batch_size):
            group.append(batch)
            if len(group) == 5:
                total += write(conn, group, []).events_inserted
                group = []
        if group:
            total += write(conn, group, []).events_inserted
    return total
