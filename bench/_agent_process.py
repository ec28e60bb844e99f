"""The agent side of ``bench/agent_sources.py``, run in its own process.

Imports only the agent (no simulator modules), loads the YAML configuration the way a
running agent does (``load_config_in_child``), runs every source + derivation +
stamping for a warm-up and a measured window, and prints its figures. The parent
reads ``MEASURE start`` / ``MEASURE end`` lines to time the simulator's CPU over the
same window.

    python bench/_agent_process.py CONFIG --seconds 20 --warmup 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.config.loader import load_config_in_child
from edge_agent.config.roles import tags_by_connection
from edge_agent.pipeline import CoalescingIntake, EventPipeline
from edge_agent.samples import Sample
from edge_agent.sequences import SequenceCounter
from edge_agent.sources.factory import build_source
from lineside_common.gctune import settle_long_lived_objects


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or its high-water mark (VmHWM), in MB.

    Not getrusage's ru_maxrss: after fork + exec it reports the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(config_path: str, seconds: float, warmup_s: float) -> None:
    started = time.monotonic()
    config = load_config_in_child(config_path)
    gc.collect()
    tags_of = tags_by_connection(config)
    tag_count = sum(len(tags) for tags in tags_of.values())
    counts = {"values": 0, "events": 0}

    def sink(events: list) -> None:
        counts["events"] += len(events)

    intake = CoalescingIntake(EventPipeline(config, SequenceCounter(), sink))

    def emit(items: list) -> None:
        counts["values"] += sum(1 for item in items if isinstance(item, Sample))
        intake.emit(items)

    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            build_source(config, config.connection(connection_id), tags).run(emit, stop)
        )
        for connection_id, tags in tags_of.items()
    ]
    flusher = asyncio.create_task(intake.run(stop))
    settle_long_lived_objects()  # as edge-agent run does once its parts are built
    print(
        f"agent: {tag_count:,} tags over {len(tags_of)} connection(s), config loaded in"
        f" {time.monotonic() - started:.1f} s, RSS {rss_mb():.0f} MB; warming up {warmup_s:.0f} s",
        flush=True,
    )
    await asyncio.sleep(warmup_s)  # connect, create monitored items, baselines
    values0, events0 = counts["values"], counts["events"]
    print("MEASURE start", flush=True)
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)  # the measurement window itself
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    print("MEASURE end", flush=True)
    values = counts["values"] - values0
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await flusher
    print(f"  values acquired/s : {values / elapsed:,.0f}")
    print(f"  events/s          : {(counts['events'] - events0) / elapsed:,.0f}")
    print(
        f"  agent CPU         : {cpu / elapsed * 100:.0f}% of one core, "
        f"{cpu / max(values, 1) * 1e6:.1f} us per value"
    )
    print(f"  agent RSS         : {rss_mb():.0f} MB now, {rss_mb('VmHWM'):.0f} MB peak", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.config, args.seconds, args.warmup))


if __name__ == "__main__":
    main()
