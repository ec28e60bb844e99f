"""Benchmark: the collector's message validator against lineside_protocol.decode_batch.

Builds realistic batch messages as an edge agent publishes them: 500 events of one
equipment per batch (~520 bytes each), mostly ``tag.sampled`` and ``production.counted``
with a few state and order events, all keys present as the agent's stamper writes them,
``historical`` spliced first as the forwarder does. A machine is polled every 100 ms;
the samples of one poll share their times (``--times shared``, what a Modbus or polled
OPC UA source gives) or every event has its own millisecond (``--times unique``, the
worst case for the validator's timestamp cache).

Prints events/s and microseconds per event for ``validate_message`` (median and best of
``--repeat`` passes over all batches, by wall clock and by this process's CPU time) and
for ``decode_batch`` (fewer batches: it is slow), with the load average, since other
work may share the machine.

    ./lineside bench collector_validate
    ./lineside bench collector_validate --times unique --batches 400
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from collector.ingest import _shapes  # noqa: E402
from collector.ingest.validate import validate_message  # noqa: E402
from collector.records import AcceptedBatch  # noqa: E402
from lineside_protocol import decode_batch, new_event_id, new_event_ids  # noqa: E402

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
AGENT = "line3-edge-pc1"
POLL_S = 0.1
TAGS_PER_POLL = 14  # tag.sampled per poll; with the counter: ~70% tags, ~25% counts
STATES = ("running", "idle", "starved", "unplanned_stop")


def wire_time(value: datetime) -> str:
    """The agent's timestamp form: UTC, milliseconds, 'Z'."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def path_of(machine: int) -> dict[str, str]:
    return {
        "enterprise": "acme",
        "site": "plant-1",
        "area": "pressing",
        "line": "line-3",
        "equipment": f"press-{machine}",
    }


def poll_payloads(machine: int, poll: int) -> list[tuple[str, dict[str, Any]]]:
    """The events one poll of one machine yields: tag samples, a count, now and then more."""
    name = f"press-{machine}"
    out: list[tuple[str, dict[str, Any]]] = []
    for tag in range(TAGS_PER_POLL):
        value: Any = round(180.0 + (poll * 7 + tag * 13) % 97 / 10, 2)
        if tag % 7 == 3:
            value = (poll + tag) % 5 == 0
        elif tag % 7 == 5:
            value = poll * 3 + tag
        out.append(
            (
                "tag.sampled",
                {
                    "tag": f"{name}.hydraulics.pressure_channel_{tag:02d}",
                    "value": value,
                    "unit": "bar" if isinstance(value, float) else None,
                    "quality": "good" if poll % 50 else "uncertain",
                    "status": "Good" if poll % 50 else "UncertainLastUsableValue",
                },
            )
        )
    for _ in range(5):
        good = (poll * 5) % 9
        scrap = 1 if poll % 11 == 0 else 0
        out.append(
            (
                "production.counted",
                {
                    "good": good,
                    "scrap": scrap,
                    "total": good + scrap,
                    "product_id": "bracket-a-2026",
                    "order_id": "order-000471100",
                    "counter_reset": False,
                    "interval_start": None,
                },
            )
        )
    if poll % 4 == 0:
        out.append(
            (
                "equipment.state_changed",
                {
                    "state": STATES[poll // 4 % 4],
                    "previous_state": STATES[(poll // 4 - 1) % 4],
                    "raw_value": poll // 4 % 4,
                    "reason_code": None,
                },
            )
        )
    return out


def build_batches(count: int, events_per_batch: int, unique_times: bool) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs: ``count`` batches spread over 20 machines."""
    messages = []
    for number in range(count):
        machine = number % 20
        path = path_of(machine)
        events: list[dict[str, Any]] = []
        poll = number * 1000
        start = T0 + timedelta(seconds=number * 60)
        while len(events) < events_per_batch:
            received = start + timedelta(seconds=(poll - number * 1000) * POLL_S)
            for kind, payload in poll_payloads(machine, poll):
                if unique_times:
                    received += timedelta(milliseconds=1)
                event_time = received - timedelta(milliseconds=4)
                if kind == "production.counted":
                    payload["interval_start"] = wire_time(event_time - timedelta(seconds=POLL_S))
                events.append(
                    {
                        "historical": False,
                        "schema_version": 1,
                        "event_id": "",
                        "type": kind,
                        "agent_id": AGENT,
                        "equipment": path,
                        "seq": number * events_per_batch + len(events),
                        "event_time": wire_time(event_time),
                        "received_time": wire_time(received),
                        "correlation_id": "order-000471100",
                        "causation_id": None,
                        "payload": payload,
                    }
                )
            poll += 1
        del events[events_per_batch:]
        for event, event_id in zip(events, new_event_ids(len(events)), strict=True):
            event["event_id"] = event_id
        batch = {
            "schema_version": 1,
            "batch_id": new_event_id(),
            "agent_id": AGENT,
            "equipment": path,
            "sent_at": events[-1]["received_time"],
            "events": events,
        }
        topic = "lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/events".format(**path)
        messages.append((topic, orjson.dumps(batch)))
    return messages


def received_at_of(payload: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(payload)["sent_at"]) + timedelta(seconds=1)


def time_passes(
    run: Callable[[], None], repeat: int, forget: Callable[[], None] | None = None
) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds of this process) per pass.

    CPU time is the steadier figure on a shared machine: it leaves out the time other
    processes held the core, though not what they did to the caches.
    """
    passes = []
    for _ in range(repeat):
        if forget is not None:
            forget()  # each pass starts cold, as a new batch would
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        passes.append((time.perf_counter() - wall, time.process_time() - cpu))
    return passes


def report(label: str, events: int, passes: list[tuple[float, float]]) -> None:
    wall = statistics.median(seconds for seconds, _ in passes)
    cpu = statistics.median(seconds for _, seconds in passes)
    best = min(seconds for seconds, _ in passes)
    print(
        f"{label:16s} {events / wall:>9,.0f} events/s ({wall / events * 1e6:5.2f} us/event) "
        f"median wall, {events / best:>9,.0f} best wall, "
        f"{events / cpu:>9,.0f} events/CPU-s ({cpu / events * 1e6:5.2f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--events-per-batch", type=int, default=500)
    parser.add_argument("--times", choices=("shared", "unique"), default="shared")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--decode-batches", type=int, default=20)
    args = parser.parse_args()

    messages = build_batches(args.batches, args.events_per_batch, args.times == "unique")
    received = [received_at_of(payload) for _, payload in messages]
    inputs = list(zip(messages, received, strict=True))
    events = args.batches * args.events_per_batch
    size = sum(len(payload) for _, payload in messages)
    for (topic, payload), at in inputs:
        result = validate_message(topic, payload, at)
        if not isinstance(result, AcceptedBatch):
            raise SystemExit(f"bench data refused: {result.reason}: {result.detail}")
    print(
        f"{args.batches} batches x {args.events_per_batch} events, {size / events:.0f} bytes/event "
        f"({size / args.batches / 1024:.0f} KiB/batch), times {args.times}; "
        f"load average before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )

    def validate_all() -> None:
        for (topic, payload), at in inputs:
            validate_message(topic, payload, at)

    report("validate_message", events, time_passes(validate_all, args.repeat, forget))

    few = messages[: args.decode_batches]

    def decode_few() -> None:
        for _, payload in few:
            decode_batch(payload)

    report("decode_batch", len(few) * args.events_per_batch, time_passes(decode_few, args.repeat))

    def parse_only() -> None:
        for _, payload in messages:
            orjson.loads(payload)

    report("(orjson.loads)", events, time_passes(parse_only, args.repeat))
    print(f"load average after: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


def forget() -> None:
    """Empties the validator's timestamp cache, so no pass profits from the one before."""
    _shapes.forget_timestamps()


if __name__ == "__main__":
    main()
