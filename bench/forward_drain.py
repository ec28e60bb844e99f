"""Benchmark: how fast the MQTT forwarder drains a full buffer, and live latency meanwhile.

Fills a fresh SQLite buffer with N events (~500 bytes each, spread over E equipment),
starts a confirming consumer in its own process (it parses every batch with orjson,
keeps every event id and publishes a BatchAck per batch, like the collector after its
commit), then runs the forwarder in this process until the consumer has every event.
While the backlog drains, a trickle of live events is submitted to the buffer; the
consumer measures their latency (arrival - received_time, i.e. capture -> consumer).

Prints the drain rate (backlog events/s until the last one arrived and until the buffer
was empty), live latency p50/p95/max, resends, and CPU of both processes.

    ./lineside bench forward_drain
    ./lineside bench forward_drain --events 200000 --live-rate 50 --backlog-rate 50000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from edge_agent.buffer import BufferConfig, EventBuffer  # noqa: E402
from edge_agent.forward import Forwarder, MqttConfig  # noqa: E402
from lineside_common.gctune import settle_long_lived_objects  # noqa: E402
from lineside_protocol import new_event_id  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOCATION = {"site": "plant-1", "area": "pressing", "line": "line-3"}
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of this process's threads, summed per thread name (without digits)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    totals: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(task.name), "other")
        name = "".join(c for c in name if not c.isdigit()).rstrip("_-") or name
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return totals


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wire_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(agent_id: str, path: dict[str, str], seq: int, at: datetime) -> dict[str, Any]:
    """A ``tag.sampled`` event of about 500 bytes encoded."""
    stamp = wire_time(at)
    return {
        "schema_version": 1,
        "event_id": new_event_id(),
        "type": "tag.sampled",
        "agent_id": agent_id,
        "equipment": path,
        "seq": seq,
        "event_time": stamp,
        "received_time": stamp,
        "correlation_id": "order-4711-2026-03-02-morning-shift",
        "causation_id": None,
        "payload": {
            "tag": f"{path['equipment']}.hydraulic_pressure_main_cylinder",
            "value": round(150 + (seq % 997) * 0.1, 1),
            "unit": "bar",
            "quality": "good",
            "status": "Good",
        },
    }


def consumer_main(host: str, port: int, subscription: str, client_id: str, conn: Any) -> None:
    """The consumer process: confirm every batch until told to stop, then report."""
    from _confirming_consumer import ConfirmingConsumer

    consumer = ConfirmingConsumer(
        port,
        host=host,
        client_id=client_id,
        validate=False,
        keep_events=False,
        measure_live_latency=True,
        subscription=subscription,
        session_expiry_s=60,
    )
    consumer.start()
    conn.send("ready")
    while True:
        if conn.poll(0.05):
            conn.recv()
            break
        conn.send(("count", consumer.event_count(), consumer.historical_count()))
    consumer.stop()
    received = consumer.received
    conn.send(
        (
            "done",
            {
                "events": len(received.ids),
                "duplicates": received.duplicates,
                "batches": len(received.batch_ids),
                "latency": received.live_latency_s,
                "cpu_s": time.process_time(),
            },
        )
    )


def fill(buffer: EventBuffer, agent_id: str, paths: list[dict[str, str]], total: int) -> None:
    chunk: list[dict[str, Any]] = []
    for index in range(total):
        equipment = index % len(paths)
        seq = index // len(paths)
        at = T0 + timedelta(milliseconds=index)
        chunk.append(make_event(agent_id, paths[equipment], seq, at))
        if len(chunk) == 5000:
            buffer.submit(chunk)
            chunk = []
            if index % 100_000 < 5000:
                buffer.flush(60)  # keep the writer's queue (and memory) bounded
    buffer.submit(chunk)
    buffer.flush(120)


class ConsumerProcess:
    """The confirming consumer in its own process; its progress arrives over a pipe."""

    def __init__(self, host: str, port: int, enterprise: str, client_id: str) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        subscription = f"lineside/v1/{enterprise}/+/+/+/+/events"
        self.process = ctx.Process(
            target=consumer_main, args=(host, port, subscription, client_id, child), daemon=True
        )
        self.process.start()
        assert self._pipe.recv() == "ready"
        self.count = self.historical = 0
        self.results: dict[str, Any] = {}
        self._follower = threading.Thread(target=self._follow, daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        while True:
            message = self._pipe.recv()
            if message[0] != "count":
                self.results.update(message[1])
                return
            self.count, self.historical = message[1], message[2]

    def cpu_s(self) -> float:
        return cpu_seconds(self.process.pid)

    def finish(self) -> dict[str, Any]:
        self._pipe.send("stop")
        self._follower.join(30)
        self.process.join(30)
        return self.results


async def drain(args: argparse.Namespace, buffer: EventBuffer, paths: list, agent_id: str) -> None:
    enterprise = paths[0]["enterprise"]
    consumer = ConsumerProcess(args.host, args.port, enterprise, f"{agent_id}-consumer")
    config = MqttConfig(
        host=args.host,
        port=args.port,
        client_id=agent_id,
        session_expiry_s=60,
        backlog_events_per_s=args.backlog_rate or None,
        max_inflight_batches=args.max_inflight,
        batch={"max_events": args.batch_events},
    )
    location = SimpleNamespace(enterprise=enterprise, **LOCATION)
    forwarder = Forwarder(config, buffer, agent_id, location, "bench", "bench")
    stop = asyncio.Event()
    cpu0, consumer_cpu0, t0 = time.process_time(), consumer.cpu_s(), time.monotonic()
    threads0 = thread_cpu_seconds()
    task = asyncio.create_task(forwarder.run(stop))
    live_seq = {index: args.events // len(paths) + 1 for index in range(len(paths))}
    live_sent = 0
    drained_at = emptied_at = None
    interval = 1.0 / args.live_rate if args.live_rate > 0 else None
    next_live, next_report = t0, t0 + 5.0
    while time.monotonic() - t0 < args.timeout:
        now = time.monotonic()
        if now >= next_report:
            next_report += 5.0
            progress = forwarder.status()
            print(
                f"    {now - t0:5.1f} s: consumer has {consumer.count:,} "
                f"({consumer.historical:,} historical), confirmed "
                f"{progress.confirmed_events_total:,}, inflight {progress.inflight_batches}",
                flush=True,
            )
        if interval is not None and now >= next_live:  # a live event, captured now
            equipment = live_sent % len(paths)
            event = make_event(agent_id, paths[equipment], live_seq[equipment], datetime.now(UTC))
            live_seq[equipment] += 1
            buffer.submit([event])
            live_sent += 1
            next_live += interval
        if drained_at is None and consumer.historical >= args.events:
            drained_at = time.monotonic() - t0
        if drained_at is not None:
            first = await asyncio.to_thread(buffer.first_rowid)
            if first == 0 or first > args.events:  # the fill has rowids 1..events
                emptied_at = time.monotonic() - t0
                break
        await asyncio.sleep(min(0.01, interval or 0.01))
    status = forwarder.status()
    cpu, consumer_cpu = time.process_time() - cpu0, consumer.cpu_s() - consumer_cpu0
    threads = {
        name: seconds - threads0.get(name, 0.0)
        for name, seconds in thread_cpu_seconds().items()
        if seconds - threads0.get(name, 0.0) >= 0.05
    }
    stop.set()
    await task
    results = consumer.finish()
    elapsed = drained_at or (time.monotonic() - t0)
    latency_ms = [seconds * 1000 for seconds in results.get("latency", [])]
    rows = [
        (
            "backlog drained",
            f"{args.events:,} events in {elapsed:.1f} s = {args.events / elapsed:,.0f} "
            "events/s (until the consumer had them all)",
        ),
        (
            "buffer empty after",
            f"{emptied_at:.1f} s = {args.events / emptied_at:,.0f} events/s"
            if emptied_at
            else "NOT empty at the timeout",
        ),
        ("live events", f"{live_sent} injected at {args.live_rate}/s, {len(latency_ms)} measured"),
        (
            "live latency",
            f"p50 {pct(latency_ms, 0.5):.0f} ms, p95 {pct(latency_ms, 0.95):.0f} ms, "
            f"max {max(latency_ms, default=float('nan')):.0f} ms (capture -> consumer)",
        ),
        (
            "consumer",
            f"{results.get('events', 0):,} unique events, {results.get('duplicates', 0):,} "
            f"duplicates, {results.get('batches', 0):,} batches, CPU {consumer_cpu:.1f} s",
        ),
        (
            "forwarder",
            f"{status.published_batches_total:,} batches, {status.resent_batches_total} resent, "
            f"{status.rejected_batches_total} rejected, last_error={status.last_error!r}",
        ),
        ("agent CPU", f"{cpu:.1f} s ({cpu / elapsed * 100:.0f} % of a core; buffer included)"),
        (
            "agent CPU by thread",
            ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(threads.items())),
        ),
        (
            "agent peak RSS",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (with the fill)",
        ),
    ]
    for name, value in rows:
        print(f"  {name:<19} : {value}")


def clear_retained(host: str, port: int, topic: str) -> None:
    """Remove the bench agent's retained status from the (shared) broker."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-cleanup-{os.getpid()}")
    client.connect(host, port)
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="backlog size")
    parser.add_argument("--equipment", type=int, default=100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument(
        "--live-rate", type=float, default=20.0, help="live events/s during the drain"
    )
    parser.add_argument(
        "--backlog-rate", type=float, default=0.0, help="backlog_events_per_s (0: unlimited)"
    )
    parser.add_argument("--max-inflight", type=int, default=32)
    parser.add_argument("--batch-events", type=int, default=500)
    parser.add_argument("--durability", default="full", choices=["full", "normal", "off"])
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    pid = os.getpid()
    agent_id = f"bench-{pid}"
    enterprise = f"bench{pid}"
    paths = [
        {"enterprise": enterprise, **LOCATION, "equipment": f"press-{index:03d}"}
        for index in range(args.equipment)
    ]
    with tempfile.TemporaryDirectory(prefix="forward-bench-") as tmp:
        buffer = EventBuffer.open(BufferConfig(durability=args.durability), Path(tmp) / "buffer.db")
        try:
            t0 = time.monotonic()
            fill(buffer, agent_id, paths, args.events)
            took = time.monotonic() - t0
            size = buffer.status().bytes
            print(
                f"filled {args.events:,} events ({size / args.events:.0f} bytes each, "
                f"{args.equipment} equipment) in {took:.1f} s; draining to {args.host}:{args.port}"
            )
            settle_long_lived_objects()  # as edge-agent run does once its parts are built
            asyncio.run(drain(args, buffer, paths, agent_id))
            status_topic = f"lineside/v1/{enterprise}/plant-1/_agents/{agent_id}/status"
            clear_retained(args.host, args.port, status_topic)
        finally:
            buffer.close()


if __name__ == "__main__":
    main()
