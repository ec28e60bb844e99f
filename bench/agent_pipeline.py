"""Benchmark: agent CPU per value for derivation and stamping alone (no I/O).

Feeds the agent's pipeline (derivers + stamper, events as wire dicts) with samples
shaped like polling the load-100-machines scenario: every tag read each poll, each
process value changing once per simulated second, states and counters moving now
and then. Prints CPU per value and per event, so a change to the pure core can be
measured without servers (and without the noise of a simulator on the same cores).

    ./lineside bench agent_pipeline --machines 100 --polls-per-second 5 --seconds 20
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agent_sources import agent_config  # noqa: E402

from edge_agent.config.roles import tags_by_connection  # noqa: E402
from edge_agent.pipeline import EventPipeline  # noqa: E402
from edge_agent.samples import Quality, Sample  # noqa: E402
from edge_agent.sequences import SequenceCounter  # noqa: E402


def run(machines: int, polls_per_second: int, seconds: int, per_request: int) -> None:
    sim = SimpleNamespace(opcua_port=4840, modbus_port=502, scenario="load-100-machines")
    config = agent_config("modbus", machines, 1 / polls_per_second, [sim], Path("/tmp"))
    tags = [tag_id for pairs in tags_by_connection(config).values() for tag_id, _ in pairs]
    events = 0
    pipeline = EventPipeline(config, SequenceCounter(), lambda batch: None)
    rng = random.Random(7)
    values: dict[str, object] = {}
    for tag in tags:
        values[tag] = (
            1
            if tag.endswith(".State")
            else "order-1"
            if tag.endswith((".Order", ".Product"))
            else 0
        )
    start = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    polled = 0
    cpu = 0.0
    for second in range(seconds):
        for tag in tags:  # once per simulated second, like the simulator
            if tag.endswith("Count"):
                values[tag] = int(values[tag]) + rng.randint(0, 1)
            elif tag.endswith(".State"):
                values[tag] = 1 if rng.random() < 0.98 else 6
            elif tag.endswith((".Order", ".Product", ".Reason")):
                continue
            else:
                values[tag] = round(rng.uniform(10, 90), 3)
        for poll in range(polls_per_second):
            received = start + timedelta(seconds=second + poll / polls_per_second)
            requests = [
                [
                    Sample(tag, values[tag], Quality.GOOD, "Good", None, None, received)
                    for tag in tags[i : i + per_request]
                ]
                for i in range(0, len(tags), per_request)
            ]
            t0 = time.process_time()
            for request in requests:  # the intake hands ~one request's samples per call
                events += len(pipeline.on_items(request))
            cpu += time.process_time() - t0
            polled += len(tags)
    print(f"{len(tags):,} tags, {polls_per_second} polls/s, {seconds} simulated s")
    print(f"  values : {polled:,}   events: {events:,}")
    per_value, per_event = cpu / polled * 1e6, cpu / max(events, 1) * 1e6
    print(f"  CPU    : {per_value:.2f} us per value, {per_event:.1f} us per event")
    print(f"  rate   : {polled / cpu:,.0f} values/s per core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--polls-per-second", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--per-request", type=int, default=100)
    args = parser.parse_args()
    run(args.machines, args.polls_per_second, args.seconds, args.per_request)


if __name__ == "__main__":
    main()
