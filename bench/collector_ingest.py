"""Benchmark: events/s from the broker to committed, deduplicated rows in PostgreSQL.

Starts a private Mosquitto (queues sized as config/mosquitto/mosquitto.conf does), a
fresh database, K ``oee-collector run`` processes on one shared subscription, and a
publisher process that plays agents: batches of 500 events of one equipment (70%
tag.sampled, 25% production.counted, 5% equipment.state_changed; 100 equipment),
published with QoS 1 as fast as the broker takes them. The clock runs from the first
publish until the collectors' /status says every event is committed.

Prints events/s, the publisher's own rate, and CPU seconds of every party (collectors,
PostgreSQL backends, Mosquitto, publisher): on this 2-core box they all compete.

    ./lineside bench collector_ingest
    ./lineside bench collector_ingest --events 1000000 --collectors 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import orjson  # noqa: E402
import psycopg  # noqa: E402
from _mosquitto import Mosquitto, free_port  # noqa: E402

from lineside_protocol import new_event_ids  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PATH = {"enterprise": "acme", "site": "plant-1", "area": "hall-1", "line": "line-1"}
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKER_EXTRA = "\n".join(
    [
        "max_queued_messages 1000000",  # as the production config: never drop for a slow collector
        "max_inflight_messages 0",  # the collector's receive_maximum bounds it instead
        "message_size_limit 0",
    ]
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu_seconds() -> float:
    """CPU of every process named postgres (all clusters; others are idle here)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(proc.name))
        except OSError:
            continue
    return total


def wire_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_batches(events: int, equipment: int, batch_size: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of every batch, built before the clock starts."""
    start = datetime.now(UTC) - timedelta(hours=3)
    per_equipment = -(-events // equipment)
    batches: list[tuple[str, bytes]] = []
    made = 0
    for index in range(equipment):
        name = f"machine-{index:03d}"
        path = {**PATH, "equipment": name}
        topic = "lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/events".format(**path)
        count = min(per_equipment, events - made)
        ids = new_event_ids(count)
        rows: list[dict[str, Any]] = []
        for seq in range(count):
            at = start + timedelta(milliseconds=500 * seq)
            kind = seq % 20
            if kind == 0:
                event_type, payload = (
                    "equipment.state_changed",
                    {
                        "state": "running" if seq % 40 else "idle",
                        "previous_state": None,
                        "raw_value": 1,
                        "reason_code": None,
                    },
                )
            elif kind < 6:
                event_type, payload = (
                    "production.counted",
                    {
                        "good": 3,
                        "scrap": seq % 2,
                        "total": 3 + seq % 2,
                        "product_id": "bracket-a",
                        "order_id": "order-1",
                    },
                )
            else:
                event_type, payload = (
                    "tag.sampled",
                    {
                        "tag": f"{name}.pressure_{kind}",
                        "value": 150.0 + (seq % 97) * 0.1,
                        "unit": "bar",
                        "quality": "good",
                        "status": "Good",
                    },
                )
            rows.append(
                {
                    "schema_version": 1,
                    "event_id": ids[seq],
                    "type": event_type,
                    "agent_id": "agent-bench",
                    "equipment": path,
                    "seq": seq,
                    "event_time": wire_time(at),
                    "received_time": wire_time(at + timedelta(milliseconds=40)),
                    "correlation_id": "order-1",
                    "causation_id": None,
                    "historical": True,
                    "payload": payload,
                }
            )
        for first in range(0, count, batch_size):
            document = {
                "schema_version": 1,
                "batch_id": new_event_ids(1)[0],
                "agent_id": "agent-bench",
                "equipment": path,
                "sent_at": wire_time(datetime.now(UTC)),
                "events": rows[first : first + batch_size],
            }
            batches.append((topic, orjson.dumps(document)))
        made += count
    # agents publish side by side: interleave the equipment
    per = -(-len(batches) // equipment)
    return [
        batches[e * per + i]
        for i in range(per)
        for e in range(equipment)
        if e * per + i < len(batches)
    ]


def publisher(
    port: int, events: int, equipment: int, batch_size: int, ready: Any, go: Any, result: Any
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    batches = build_batches(events, equipment, batch_size)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-publisher",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(20)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    go.wait()
    started = time.monotonic()
    cpu0 = time.process_time()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in batches]
    for info in infos:
        info.wait_for_publish(600)
    result.put(
        {
            "publish_s": time.monotonic() - started,
            "publisher_cpu_s": time.process_time() - cpu0,
            "batches": len(batches),
            "bytes": sum(len(p) for _, p in batches),
        }
    )
    client.loop_stop()
    client.disconnect()


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as answer:
        return json.loads(answer.read())


def commit_figures(port: int) -> tuple[float, float, float]:
    """(transactions, events, seconds) from the collector's commit histograms."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        for name in (
            "lineside_collector_commit_seconds_count",
            "lineside_collector_commit_seconds_sum",
            "lineside_collector_commit_events_sum",
        ):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    return (
        values["lineside_collector_commit_seconds_count"],
        values["lineside_collector_commit_events_sum"],
        values["lineside_collector_commit_seconds_sum"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--equipment", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--collectors", type=int, default=1)
    parser.add_argument("--max-events-per-commit", type=int, default=10_000)
    parser.add_argument("--pool-size", type=int, default=3, help="writer connections per process")
    parser.add_argument("--receive-maximum", type=int, default=200)
    parser.add_argument("--max-wait-ms", type=int, default=5)
    args = parser.parse_args()

    database = f"bench_ingest_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    collectors: list[subprocess.Popen[bytes]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
            Mosquitto(Path(tmp) / "mosquitto", extra=BROKER_EXTRA) as broker,
        ):
            health_ports = [free_port() for _ in range(args.collectors)]
            for index, health_port in enumerate(health_ports):
                config = Path(tmp) / f"collector-{index}.yaml"
                config.write_text(
                    f"mqtt:\n  port: {broker.port}\n  receive_maximum: {args.receive_maximum}\n"
                    f"ingest:\n  max_events_per_commit: {args.max_events_per_commit}\n"
                    f"  max_wait_ms: {args.max_wait_ms}\n"
                    f"database:\n  pool_size: {args.pool_size}\n"
                    f"health:\n  listen: 127.0.0.1:{health_port}\n"
                )
                collectors.append(
                    subprocess.Popen(
                        [
                            str(ROOT / ".venv" / "bin" / "oee-collector"),
                            "run",
                            str(config),
                            "--dsn",
                            url,
                            "--client-id",
                            f"bench-collector-{index}",
                            "--log-level",
                            "warning",
                        ],
                    )
                )
            deadline = time.monotonic() + 60
            while True:
                try:
                    if all(status(port)["mqtt"]["connected"] for port in health_ports):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("collectors did not subscribe within 60 s")
                time.sleep(0.2)
            ready, go, result = mp.Event(), mp.Event(), mp.Queue()
            pub = mp.Process(
                target=publisher,
                args=(broker.port, args.events, args.equipment, args.batch_size, ready, go, result),
            )
            pub.start()
            ready.wait(600)
            load = os.getloadavg()
            cpu_before = {
                "collectors": sum(cpu_seconds(p.pid) for p in collectors),
                "postgres": postgres_cpu_seconds(),
                "mosquitto": cpu_seconds(broker.proc.pid) if broker.proc else 0.0,
            }
            started = time.monotonic()
            go.set()
            committed = 0
            while committed < args.events:
                time.sleep(0.1)
                committed = sum(status(port)["ingest"]["events_committed"] for port in health_ports)
                if time.monotonic() - started > 900:
                    raise SystemExit(f"only {committed:,} of {args.events:,} committed after 900 s")
            elapsed = time.monotonic() - started
            cpu = {
                "collectors": sum(cpu_seconds(p.pid) for p in collectors)
                - cpu_before["collectors"],
                "postgres": postgres_cpu_seconds() - cpu_before["postgres"],
                "mosquitto": (cpu_seconds(broker.proc.pid) if broker.proc else 0.0)
                - cpu_before["mosquitto"],
            }
            published = result.get(timeout=600)
            pub.join(30)
            per_collector = [status(port)["ingest"]["events_committed"] for port in health_ports]
            commits = [commit_figures(port) for port in health_ports]
            broker_log = broker.log.read_text(errors="replace").splitlines()
            problems = [line for line in broker_log if "disconnect" in line.lower()]
            for line in problems[-5:]:
                print(f"  broker: {line}", file=sys.stderr)
        with psycopg.connect(url) as conn:
            rows, unique = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM audit.events"
            ).fetchone()
        n, rate = args.events, args.events / elapsed
        share = {name: seconds / elapsed * 100 for name, seconds in cpu.items()}
        report = [
            f"collector ingest: {n:,} events in {published['batches']:,} batches of "
            f"{args.batch_size} ({published['bytes'] / n:.0f} bytes/event), "
            f"{args.equipment} equipment, {args.collectors} collector process(es)",
            f"  load average before : {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"  committed           : {n:,} events in {elapsed:.2f} s = {rate:,.0f} events/s "
            "(first publish -> last commit)",
            f"  publisher           : all published in {published['publish_s']:.2f} s "
            f"({n / published['publish_s']:,.0f} events/s), "
            f"CPU {published['publisher_cpu_s']:.1f} s",
            f"  per collector       : {', '.join(f'{c:,}' for c in per_collector)} events",
            f"  CPU seconds         : collectors {cpu['collectors']:.1f} "
            f"({share['collectors']:.0f}% of a core), PostgreSQL {cpu['postgres']:.1f} "
            f"({share['postgres']:.0f}%), Mosquitto {cpu['mosquitto']:.1f} "
            f"({share['mosquitto']:.0f}%)",
            f"  CPU per event       : collectors {cpu['collectors'] / n * 1e6:.1f} us, "
            f"PostgreSQL {cpu['postgres'] / n * 1e6:.1f} us",
            f"  rows                : {rows:,} in audit.events, {unique:,} distinct ids",
            "  commits             : "
            + ", ".join(
                f"{c:,} of {e / c:,.0f} events, {t / c * 1000:.0f} ms each" for c, e, t in commits
            ),
        ]
        print("\n".join(report))
    finally:
        for proc in collectors:
            proc.terminate()
        for proc in collectors:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
