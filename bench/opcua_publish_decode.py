"""Benchmark: decoding one OPC UA PublishResponse, asyncua's decoder against the agent's.

Builds the PublishResponse a PLC's server sends for a busy subscription: one
DataChangeNotification with ``--items`` Double values (default 1,300), each with a
source timestamp and a server timestamp, status Good (so not encoded), encoded by
asyncua's own ``struct_to_binary``. The source timestamps of ``--same-source`` items
are equal (a PLC samples tags together; 1 = every item has its own), the server
timestamps of the whole message are equal.

Decodes it with ``struct_from_binary(ua.PublishResponse, ...)`` (what asyncua's
``UaSession.publish`` does, with the agent's ``_speedups`` installed as in the agent)
and with ``edge_agent.sources.opcua._publish_decode.decode_publish_response``, checks
that both give equal responses, and prints microseconds per notification, best of
``--repeat`` passes, by wall clock and by this process's CPU time.

    ./lineside bench opcua_publish_decode
    ./lineside bench opcua_publish_decode --items 100 --same-source 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asyncua import ua  # noqa: E402
from asyncua.common.utils import Buffer  # noqa: E402
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary  # noqa: E402

import edge_agent.sources.opcua  # noqa: E402, F401  (installs _speedups, as the agent does)
from edge_agent.sources.opcua._publish_decode import decode_fast, decode_publish_response  # noqa: E402

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def publish_response(items: int, same_source: int) -> bytes:
    """The encoded body of one PublishResponse with ``items`` Double data changes."""
    server_time = T0 + timedelta(milliseconds=250)
    notifications = [
        ua.MonitoredItemNotification(
            ClientHandle=1000 + number,
            Value=ua.DataValue(
                Value=ua.Variant(180.0 + number * 0.37, ua.VariantType.Double),
                SourceTimestamp=T0 + timedelta(microseconds=number // same_source * 13),
                ServerTimestamp=server_time,
            ),
        )
        for number in range(items)
    ]
    response = ua.PublishResponse()
    response.ResponseHeader.Timestamp = server_time
    response.ResponseHeader.RequestHandle = 42
    response.Parameters = ua.PublishResult(
        SubscriptionId=7,
        AvailableSequenceNumbers=[311],
        MoreNotifications=False,
        NotificationMessage=ua.NotificationMessage(
            SequenceNumber=311,
            PublishTime=server_time,
            NotificationData=[ua.DataChangeNotification(MonitoredItems=notifications)],
        ),
        Results=[],
    )
    return struct_to_binary(response)


def best_pass(decode: Callable[[Buffer], Any], body: bytes, repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of ``repeat`` decodes."""
    walls, cpus = [], []
    for _ in range(repeat):
        buffer = Buffer(body)
        wall, cpu = time.perf_counter(), time.process_time()
        decode(buffer)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1300)
    parser.add_argument("--same-source", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    body = publish_response(args.items, max(1, args.same_source))
    expected = struct_from_binary(ua.PublishResponse, Buffer(body))
    if decode_fast(Buffer(body)) is None:
        raise SystemExit("the fast decoder refused the bench message")
    if decode_publish_response(Buffer(body)) != expected:
        raise SystemExit("the fast decoder's result differs from asyncua's")
    print(
        f"PublishResponse with {args.items} Double notifications ({len(body) / args.items:.0f} "
        f"bytes each), {args.same_source} per source timestamp; best of {args.repeat}; "
        f"load average before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )

    def asyncua_decode(buffer: Buffer) -> Any:
        return struct_from_binary(ua.PublishResponse, buffer)

    results = {}
    for label, decode in [("asyncua", asyncua_decode), ("fast", decode_publish_response)]:
        wall, cpu = best_pass(decode, body, args.repeat)
        results[label] = wall
        print(
            f"{label:8s} {wall / args.items * 1e6:6.2f} us/notification wall "
            f"({wall * 1e3:6.2f} ms/message), {cpu / args.items * 1e6:6.2f} us CPU"
        )
    print(f"speed-up {results['asyncua'] / results['fast']:.1f}x")
    print(f"load average after: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
