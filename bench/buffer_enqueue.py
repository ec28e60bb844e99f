"""Benchmark: events per second the SQLite buffer commits, commit latency, delete rate.

Submits realistic wire events (~500 bytes of JSON each, 100 equipment, the shape the
stamper produces) to an ``EventBuffer`` from the main thread, as the agent's event loop
would, in batches of ``--batch``. A commit listener timestamps each commit; a submit
batch's latency is the time from its ``submit()`` to the commit listener announcing its
last event. Then deletes every event in acknowledgement-sized batches (``--ack``) and
times that. Prints events/s committed, commit latency p50/p99, rows/s deleted and CPU.

Without ``--rate`` the producer runs as fast as it can while keeping at most
``--window`` events uncommitted (saturation: the throughput ceiling; latency then
includes queueing). With ``--rate`` it paces submits (latency at a given load).

    ./lineside bench buffer_enqueue
    ./lineside bench buffer_enqueue --durability normal --events 500000
    ./lineside bench buffer_enqueue --rate 20000 --seconds 10
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from edge_agent.buffer import BufferConfig, EventBuffer  # noqa: E402
from lineside_protocol import new_event_id  # noqa: E402

POOL = 20_000  # distinct event ids; reused round-robin so building events stays cheap


def templates(equipment: int) -> list[dict[str, Any]]:
    """One ``tag.sampled`` wire event per equipment, as the stamper builds them."""
    out = []
    for i in range(equipment):
        name = f"machine-{i:03d}"
        out.append(
            {
                "schema_version": 1,
                "event_id": new_event_id(),
                "type": "tag.sampled",
                "agent_id": "line2-pc1",
                "equipment": {
                    "enterprise": "acme",
                    "site": "plant9",
                    "area": "machining",
                    "line": "cells",
                    "equipment": name,
                },
                "seq": 0,
                "event_time": "2026-11-28T09:15:02.120Z",
                "received_time": "2026-11-28T09:15:02.161Z",
                "correlation_id": "order-000471100",
                "causation_id": None,
                "payload": {
                    "tag": f"{name}.pv_spindle_temperature_bearing_front",
                    "value": 47.25,
                    "unit": "degC",
                    "quality": "good",
                    "status": "Good",
                },
            }
        )
    return out


class Commits:
    """Commit listener: records (time, highest rowid) and wakes the producer."""

    def __init__(self) -> None:
        self.times: list[tuple[float, int]] = []
        self.highest = 0
        self.changed = threading.Condition()

    def __call__(self, rowid: int) -> None:
        now = time.perf_counter()
        with self.changed:
            self.times.append((now, rowid))
            self.highest = rowid
            self.changed.notify_all()

    def wait_for(self, rowid: int, timeout_s: float = 60.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.highest >= rowid, timeout_s):
                raise SystemExit(f"rowid {rowid} not committed within {timeout_s} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> None:
    shapes = templates(args.equipment)
    ids = [new_event_id() for _ in range(POOL)]
    seqs = [0] * args.equipment
    size = len(orjson.dumps(shapes[0]))
    with tempfile.TemporaryDirectory(prefix="buffer-bench-", dir=args.dir) as tmp:
        config = BufferConfig(
            durability=args.durability,
            commit_interval_ms=args.commit_interval_ms,
            commit_max_events=args.commit_max_events,
            max_bytes=64 * 1024**3,  # no drops during the benchmark
        )
        buffer = EventBuffer.open(config, Path(tmp) / "buffer.db")
        commits = Commits()
        buffer.add_commit_listener(commits)
        print(
            f"buffer: durability {args.durability}, commit every {args.commit_interval_ms} ms"
            f" or {args.commit_max_events} events; {args.equipment} equipment, ~{size} bytes"
            f" per event, batches of {args.batch}"
            + (f", paced at {args.rate:,} events/s" if args.rate else ", as fast as possible"),
            flush=True,
        )
        submitted: list[tuple[float, int]] = []  # (submit time, last rowid of the batch)
        total = args.events if not args.rate else int(args.rate * args.seconds)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        n = 0
        while n < total:
            count = min(args.batch, total - n)
            batch = []
            for k in range(n, n + count):
                i = k % args.equipment
                seqs[i] += 1
                batch.append({**shapes[i], "event_id": ids[k % POOL], "seq": seqs[i]})
            if args.rate:
                due = started + n / args.rate
                while (delay := due - time.perf_counter()) > 0:
                    time.sleep(delay)
            elif n + count - commits.highest > args.window:
                commits.wait_for(n + count - args.window)
            submitted.append((time.perf_counter(), n + count))
            buffer.submit(batch)
            n += count
        commits.wait_for(total)
        elapsed = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        latencies = batch_latencies(submitted, commits.times)
        status = buffer.status()
        file_mb = sum(p.stat().st_size for p in Path(tmp).glob("buffer.db*")) / 1e6
        cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / elapsed
        rate, each = total / elapsed, total / status.commits_total
        print(f"  committed         : {total:,} events in {elapsed:.2f} s = {rate:,.0f} events/s")
        print(f"  commits           : {status.commits_total:,} ({each:,.0f} events each)")
        print(
            f"  submit->committed : p50 {percentile(latencies, 0.5) * 1000:.1f} ms,"
            f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms,"
            f" max {max(latencies) * 1000:.1f} ms"
        )
        print(f"  CPU (process)     : {cpu * 100:.0f}% of one core; files {file_mb:.0f} MB")

        # acknowledgements as the forwarder makes them: one batch holds one equipment's
        # events (every 100th rowid here), equipment take turns
        started = time.perf_counter()
        for ack in ack_batches(total, args.equipment, args.ack):
            buffer.delete(ack)
        if not buffer.flush(timeout_s=600):
            raise SystemExit("deletes did not finish")
        elapsed = time.perf_counter() - started
        left = buffer.status().depth_events
        rate = (total - left) / elapsed
        print(
            f"  deleted           : {total - left:,} rows in {elapsed:.2f} s = {rate:,.0f}"
            f" rows/s (per-equipment acks of {args.ack})"
        )
        buffer.close()


def ack_batches(total: int, equipment: int, size: int) -> list[range]:
    """Rowids of one equipment per batch, ``size`` at a time, equipment in turn."""
    span = size * equipment
    return [
        range(start + i, min(start + span, total + 1), equipment)
        for start in range(1, total + 1, span)
        for i in range(equipment)
        if start + i <= total
    ]


def batch_latencies(
    submitted: list[tuple[float, int]], commits: list[tuple[float, int]]
) -> list[float]:
    """For each submit batch: the first commit whose highest rowid covers its last event."""
    out = []
    index = 0
    for at, last in submitted:
        while commits[index][1] < last:
            index += 1
        out.append(commits[index][0] - at)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--equipment", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500, help="events per submit()")
    parser.add_argument("--durability", choices=["full", "normal", "off"], default="full")
    parser.add_argument("--commit-interval-ms", type=int, default=50)
    parser.add_argument("--commit-max-events", type=int, default=5000)
    parser.add_argument("--window", type=int, default=50_000, help="most uncommitted events")
    parser.add_argument("--rate", type=int, default=0, help="events/s to pace at (0: max)")
    parser.add_argument("--seconds", type=float, default=10, help="duration with --rate")
    parser.add_argument("--ack", type=int, default=500, help="rowids per delete()")
    parser.add_argument("--dir", default=None, help="where the buffer file goes (a temp dir)")
    args = parser.parse_args()
    if not args.rate and args.batch > args.window:
        parser.error("--batch must not exceed --window")
    run(args)


if __name__ == "__main__":
    main()
