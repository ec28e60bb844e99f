"""Benchmark: end-to-end latency from a PLC value change to the committed row and the API.

Starts the whole pipeline as separate processes, each in its own process group: a
private Mosquitto (queue limits of config/mosquitto/mosquitto.conf), a fresh migrated
database on the shared PostgreSQL, ``plc-sim run load-100-machines --speed 1`` (10,100
process values changing every second), ``edge-agent run`` reading it (configuration
generated as ``bench/agent_sources.py`` does), ``oee-collector run`` and the API as
``oee-collector serve`` (the default deployment; ``--api-with-ingest``: inside ``run``,
``api.serve_with_ingest``), HS256, a viewer token from ``create_token``.

After a warm-up it measures over a steady window:

* value change -> committed row: ``ingested_at - event_time`` of the ``tag.sampled`` and
  ``equipment.state_changed`` rows ingested in the window (audit.events). ``ingested_at``
  is the writing transaction's start time (``now()``), a few ms before its commit.
  ``event_time`` is, with ``--protocol modbus``, the agent's read time of the poll that
  saw the change; with ``--protocol opcua-subscribe`` (``--wall-timestamps``) the
  simulator's wall-clock SourceTimestamp of the change;
* value change -> visible in the API: a poller in this process GETs
  ``/api/v1/equipment/{path}/history`` of one tag of a few machines at ``--poll-hz``;
  each sample seen for the first time gives (time first seen - sample time). The poll
  interval bounds the resolution (a sample is seen up to 1.5 intervals late, half an
  interval on average; the interval is jittered so that this holds for every machine);
* CPU of the agent, collector, simulator(s), PostgreSQL and Mosquitto; the load average;
* with a window of 120 s or more, both latencies minute by minute (does a long run drift?).

    ./lineside bench e2e_latency
    ./lineside bench e2e_latency --protocol opcua-subscribe --simulators 2 --interval 0.1

The load scenario changes every machine's values at the whole second: each second
brings one burst of 10,100 changes, the hardest shape for that rate. ``--staggered``
gives each machine its own offset in the second (``replicas.spread_value_offsets``),
as independent machines behave: the same 10,100 values/s as a steady stream.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from _mosquitto import Mosquitto, free_port  # noqa: E402
from _pg_helpers import migrated_database  # noqa: E402
from agent_sources import agent_config, partial_scenarios  # noqa: E402
from collector_ingest import cpu_seconds, postgres_cpu_seconds  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from lineside_demo.configs import write_yaml  # noqa: E402
from lineside_demo.processes import (  # noqa: E402
    Child,
    Children,
    collector_child,
    http_ok,
    tool,
)

# config/mosquitto/mosquitto.conf's queue and packet limits (persistence off: a bench)
BROKER_EXTRA = "\n".join(
    [
        "max_queued_messages 100000",
        "max_queued_bytes 536870912",
        "max_inflight_messages 100",
        "max_packet_size 1179648",
    ]
)
MEASURED_TYPES = ("tag.sampled", "equipment.state_changed")


class Sim:
    """One ``plc-sim run`` process: ports as ``agent_config`` expects them."""

    def __init__(self, folder: Path, scenario: str, opcua: bool, tick_s: float = 0.1) -> None:
        self.scenario = scenario
        self.opcua_port, self.modbus_port, self.control_port = free_port(), free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        argv = [
            tool("plc-sim"), "run", scenario, "--no-live", "--speed", "1",
            "--opcua-port", str(self.opcua_port), "--modbus-port", str(self.modbus_port),
            "--control-port", str(self.control_port), "--data-dir", str(folder),
            "--opcua-security", "none", "--tick", str(tick_s),
        ]  # fmt: skip
        argv += ["--wall-timestamps"] if opcua else ["--no-opcua"]
        self.child = Child(
            f"plc-sim {Path(scenario).stem}", argv, folder / "sim.log", signal.SIGTERM
        )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``values`` (nearest rank), in the values' unit."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"),
                "max": float("nan")}  # fmt: skip

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99),
            "max": ordered[-1]}  # fmt: skip


class ApiPoller(threading.Thread):
    """GETs one tag's history of one machine every 1/hz s on average; first sighting of
    each sample."""

    def __init__(self, api: str, token: str, equipment: str, tag: str, hz: float) -> None:
        super().__init__(daemon=True)
        self.url = f"{api}/api/v1/equipment/{equipment}/history"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tag, self.period_s = tag, 1.0 / hz
        self.seen: set[str] = set()
        self.baseline_done = False
        self.latencies_s: list[float] = []
        self.seen_at: list[datetime] = []  # when each of latencies_s was seen
        self.requests, self.errors, self.request_s = 0, 0, []  # type: list[float]
        self.last_error = ""
        self.measuring = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        # Jittered (0.5-1.5 periods): at a fixed period the wait for the next poll would be
        # the same for every change of a machine whose values change at a fixed offset in
        # the second, anywhere from 0 to one period depending on the run.
        jitter = random.Random()
        with httpx.Client(headers=self.headers, timeout=5) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                self.poll_once(client)
                next_at += self.period_s * jitter.uniform(0.5, 1.5)
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_at = time.monotonic()  # fell behind: do not burst

    def poll_once(self, client: httpx.Client) -> None:
        now = datetime.now(UTC)
        params = {"tag": self.tag, "start": (now - timedelta(seconds=10)).isoformat(),
                  "end": (now + timedelta(seconds=5)).isoformat()}  # fmt: skip
        sent = time.monotonic()
        try:
            answer = client.get(self.url, params=params)
        except httpx.HTTPError:
            self.errors += 1
            return
        seen_at = datetime.now(UTC)
        if self.measuring.is_set():
            self.requests += 1
            self.request_s.append(time.monotonic() - sent)
        if answer.status_code != 200:
            self.errors += 1
            self.last_error = f"{answer.status_code} {answer.text[:200]}"
            return
        for sample in answer.json()["samples"]:
            key = sample["time"]
            if key in self.seen:
                continue
            self.seen.add(key)
            # samples already there at the first poll were not seen arrive
            if self.baseline_done and self.measuring.is_set():
                at = datetime.fromisoformat(key)
                self.latencies_s.append((seen_at - at).total_seconds())
                self.seen_at.append(seen_at)
        self.baseline_done = True


class BrokerTap:
    """A plain (not shared) QoS 0 subscriber to every event batch: when each event left the
    agent (the batch's ``sent_at``) and when the batch reached this process through the
    broker, to split the latency into the agent's part and the collector's."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        from lineside_protocol.topics import EVENTS_SUBSCRIPTION

        self.to_sent_ms: list[float] = []
        self.to_broker_ms: list[float] = []
        # (arrival, payload), decoded after the window: decoding 10,000 events/s as they
        # arrive would compete for the CPU with the pipeline being measured
        self._arrivals: list[tuple[float, bytes]] = []
        self.measuring = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-e2e-tap",
            protocol=MQTTProtocolVersion.MQTTv5,
        )  # fmt: skip
        self.client.on_connect = lambda c, *_: c.subscribe(EVENTS_SUBSCRIPTION, qos=0)
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if self.measuring.is_set():
            self._arrivals.append((time.time(), message.payload))

    def decode(self) -> None:
        """Turn what arrived during the window into ``to_sent_ms`` and ``to_broker_ms``."""
        for arrived, payload in self._arrivals:
            batch = orjson.loads(payload)
            sent = _epoch(batch["sent_at"])
            for event in batch["events"]:
                if event["type"] in MEASURED_TYPES:
                    at = _epoch(event["event_time"])
                    self.to_sent_ms.append((sent - at) * 1000)
                    self.to_broker_ms.append((arrived - at) * 1000)
        self._arrivals.clear()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(check: Any, timeout_s: float, what: str, children: Children) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = children.first_dead()
        if dead is not None:
            raise SystemExit(f"{dead.name} exited while waiting for {what}:\n{dead.log_tail()}")
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what}: not within {timeout_s:.0f} s")


def committed_latencies(dsn: str, start: datetime, end: datetime) -> tuple[dict, dict[str, int]]:
    """Percentiles (ms) of ingested_at - event_time for rows ingested in [start, end)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT type, extract(epoch FROM ingested_at - event_time) * 1000"
            " FROM audit.events WHERE ingested_at >= %s AND ingested_at < %s AND type = ANY(%s)",
            (start, end, list(MEASURED_TYPES)),
        ).fetchall()
        received = conn.execute(
            "SELECT extract(epoch FROM received_time - event_time) * 1000"
            " FROM audit.events WHERE ingested_at >= %s AND ingested_at < %s AND type = ANY(%s)",
            (start, end, list(MEASURED_TYPES)),
        ).fetchall()
        total = conn.execute(
            "SELECT count(*) FROM audit.events WHERE ingested_at >= %s AND ingested_at < %s",
            (start, end),
        ).fetchone()[0]
    by_type: dict[str, list[float]] = {}
    for kind, ms in rows:
        by_type.setdefault(kind, []).append(float(ms))
    figures = {kind: percentiles(values) for kind, values in by_type.items()}
    figures["all measured"] = percentiles([float(ms) for _, ms in rows])
    figures["received_time (agent)"] = percentiles([float(ms) for (ms,) in received])
    return figures, {"rows": total}


def committed_by_minute(
    dsn: str, start: datetime, end: datetime
) -> list[tuple[int, int, float, float]]:
    """Per minute of the window: (minute, rows, p50 ms, p99 ms) of ingested_at - event_time."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT floor(extract(epoch FROM ingested_at - %(start)s) / 60)::int AS minute,"
            " count(*), 1000 * extract(epoch FROM percentile_disc(0.5) WITHIN GROUP"
            " (ORDER BY ingested_at - event_time)), 1000 * extract(epoch FROM"
            " percentile_disc(0.99) WITHIN GROUP (ORDER BY ingested_at - event_time))"
            " FROM audit.events WHERE ingested_at >= %(start)s AND ingested_at < %(end)s"
            " AND type = ANY(%(types)s) GROUP BY minute ORDER BY minute",
            {"start": start, "end": end, "types": list(MEASURED_TYPES)},
        ).fetchall()


def report_by_minute(
    rows: list[tuple[int, int, float, float]], pollers, start: datetime, elapsed_s: float
) -> None:
    """The row and API latency of each whole minute, to see whether a long run drifts."""
    api: dict[int, list[float]] = {}
    for poller in pollers:
        for seen_at, latency_s in zip(poller.seen_at, poller.latencies_s, strict=True):
            minute = int((seen_at - start).total_seconds() // 60)
            api.setdefault(minute, []).append(latency_s * 1000)
    print("  by minute of the window: committed row p50 / p99, API p50 / p99 (n)")
    for minute, n, p50, p99 in rows:
        if (minute + 1) * 60 > elapsed_s:
            break  # a part of a minute at the end of the window
        a = percentiles(api.get(minute, []))
        print(
            f"    minute {minute + 1:>3}: row {p50:.0f} / {p99:.0f} ms ({n:,}),"
            f" API {a['p50']:.0f} / {a['p99']:.0f} ms ({a['n']})"
        )


def pick_tag(api: str, token: str, equipment: str) -> str:
    """The first tag of ``equipment`` with history (GET .../tags)."""
    answer = httpx.get(
        f"{api}/api/v1/equipment/{equipment}/tags",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    tags = sorted(answer.json()["tags"])
    if not tags:
        raise SystemExit(f"no tag of {equipment} has history yet")
    return str(tags[0])


def run(args: argparse.Namespace) -> None:
    opcua = args.protocol == "opcua-subscribe"
    children = Children()
    secret = secrets.token_urlsafe(48)
    with (
        tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp_name,
        migrated_database("bench_e2e") as dsn,
    ):
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "mosquitto", extra=BROKER_EXTRA).start()
        try:
            scenarios = partial_scenarios(
                tmp, args.machines, args.simulators, staggered=args.staggered
            )
            sims = [Sim(tmp / f"sim-{k}", s, opcua, args.sim_tick) for k, s in enumerate(scenarios)]
            print(f"starting {len(sims)} plc-sim process(es), speed 1 ...", flush=True)
            for sim in sims:
                children.start(sim.child)
            for sim in sims:
                url = f"http://127.0.0.1:{sim.control_port}/health"
                wait_until(lambda u=url: http_ok(u), 300, "plc-sim control /health", children)

            collector_health, api_port = free_port(), free_port()
            collector_doc = {
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "group": "bench-e2e"},
                "health": {"listen": f"127.0.0.1:{collector_health}"},
                "api": {
                    "listen": f"127.0.0.1:{api_port}",
                    "serve_with_ingest": args.api_with_ingest,
                    "auth": {"algorithm": "HS256", "hs256_secret": secret},
                    # 50 requests/s per token would throttle the poller, not measure it
                    "rate_limit": {"enabled": False},
                },
                "ingest": {"max_events_per_commit": args.max_events_per_commit},
            }
            for setting in args.collector_set:
                set_dotted(collector_doc, setting)
            collector_yaml = write_yaml(tmp / "collector.yaml", collector_doc, private=True)
            collector = children.start(
                collector_child(
                    collector_yaml, dsn, tmp / "collector.log", "--log-level", "warning"
                )
            )
            api_server = None
            if not args.api_with_ingest:  # the default deployment: its own process
                api_server = children.start(
                    Child(
                        "oee-collector serve",
                        [tool("oee-collector"), "serve", str(collector_yaml), "--dsn", dsn,
                         "--log-level", "warning"],
                        tmp / "api.log",
                        signal.SIGTERM,
                    )
                )  # fmt: skip
            api = f"http://127.0.0.1:{api_port}"
            wait_until(lambda: http_ok(f"{api}/healthz") or http_ok(f"{api}/api/v1/health")
                       or _answers(api), 60, "collector API", children)  # fmt: skip

            # --agents K: each agent reads its share of the simulators (as K line PCs)
            per_agent = len(sims) // args.agents
            agents, equipment, connections = [], [], 0
            for k in range(args.agents):
                share = sims[k * per_agent : (k + 1) * per_agent]
                config = agent_config(
                    args.protocol, args.machines * len(share) // len(sims), args.interval,
                    share, tmp / f"agent-{k}", args.connections,
                )  # fmt: skip
                document = config.model_dump(mode="json", exclude_defaults=True)
                if args.agents > 1:
                    document["agent"]["id"] = f"{document['agent']['id']}-{k}"
                document["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
                document["health"] = {"listen": f"127.0.0.1:{free_port()}"}
                for setting in args.agent_set:
                    set_dotted(document, setting)
                agent_yaml = write_yaml(tmp / f"agent-{k}.yaml", document)
                equipment += config.equipment
                connections += len(config.connections)
                agents.append(
                    children.start(
                        Child(
                            "edge-agent" + (f" {k}" if args.agents > 1 else ""),
                            [tool("edge-agent"), "run", str(agent_yaml), "--log-level", "warning"],
                            tmp / f"agent-{k}.log",
                            signal.SIGTERM,
                        )
                    )
                )
            tags = sum(len(e.tags) for e in equipment)
            print(
                f"{args.protocol}: {tags:,} tags on {len(equipment)} machines, "
                f"{connections} connection(s), {args.agents} agent(s), interval {args.interval} s;"
                f" warming up {args.warmup:.0f} s",
                flush=True,
            )
            from collector.api.auth import Role, create_token
            from collector.config import CollectorConfig

            auth = CollectorConfig.model_validate(collector_doc).api.auth
            token = create_token(
                auth, subject="bench-e2e", role=Role.VIEWER, sites=["*"], ttl_s=3600
            )
            loc = document["agent"]["location"]
            names = [e.id for e in equipment]
            step = max(1, len(names) // args.poll_machines)
            polled = names[::step][: args.poll_machines]
            time.sleep(args.warmup)
            wait_until(lambda: _has_samples(dsn), 120, "first tag.sampled rows", children)
            pollers = []
            for name in polled:
                path = f"{loc['site']}/{loc['area']}/{loc['line']}/{name}"
                poller = ApiPoller(api, token, path, pick_tag(api, token, path), args.poll_hz)
                poller.start()
                pollers.append(poller)
            tap = BrokerTap(broker.port)
            time.sleep(3)  # pollers take their baseline
            pids = {"collector": collector.pid, "bench": os.getpid()}
            pids |= {f"agent {k}": agent.pid for k, agent in enumerate(agents)}
            if api_server is not None:
                pids["api"] = api_server.pid
            sim_pids = [s.child.pid for s in sims]
            cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
            sim_cpu0 = sum(cpu_seconds(p) for p in sim_pids)
            pg_cpu0, mq_cpu0 = postgres_cpu_seconds(), cpu_seconds(broker.proc.pid)
            load0 = os.getloadavg()
            metrics_url = f"http://127.0.0.1:{collector_health}/metrics"
            commits0 = commit_sums(metrics_url)
            start_wall, t0 = datetime.now(UTC), time.monotonic()
            tap.measuring.set()
            for poller in pollers:
                poller.measuring.set()
            print(f"measuring {args.seconds:.0f} s from {start_wall:%H:%M:%S} UTC ...", flush=True)
            while time.monotonic() - t0 < args.seconds:
                dead = children.first_dead()
                if dead is not None:
                    raise SystemExit(f"{dead.name} exited during the window:\n{dead.log_tail()}")
                time.sleep(0.5)
            tap.measuring.clear()
            for poller in pollers:
                poller.measuring.clear()
            elapsed = time.monotonic() - t0
            end_wall = datetime.now(UTC)
            cpu = {k: (cpu_seconds(p) - cpu0[k]) / elapsed * 100 for k, p in pids.items()}
            sim_cpu = (sum(cpu_seconds(p) for p in sim_pids) - sim_cpu0) / elapsed * 100
            pg_cpu = (postgres_cpu_seconds() - pg_cpu0) / elapsed * 100
            mq_cpu = (cpu_seconds(broker.proc.pid) - mq_cpu0) / elapsed * 100
            load1 = os.getloadavg()
            commits = {k: v - commits0[k] for k, v in commit_sums(metrics_url).items()}
            tap.stop()
            tap.decode()
            for poller in pollers:
                poller.stop.set()
            for poller in pollers:
                poller.join(5)
            time.sleep(2)  # rows of the window's last transactions are committed by now
            figures, counts = committed_latencies(dsn, start_wall, end_wall)
            report(args, tags, elapsed, figures, counts, pollers, tap, cpu, sim_cpu, pg_cpu, mq_cpu,
                   load0, load1, opcua)  # fmt: skip
            if args.seconds >= 120:
                by_minute = committed_by_minute(dsn, start_wall, end_wall)
                report_by_minute(by_minute, pollers, start_wall, elapsed)
            if commits["count"] > 0:
                print(
                    f"  collector transactions in the window: {commits['count']:,.0f}, mean"
                    f" {commits['seconds'] / commits['count'] * 1000:.1f} ms to write and commit,"
                    f" mean {commits['events'] / commits['count']:,.0f} events"
                    " (lineside_collector_commit_seconds / _events)",
                    flush=True,
                )
        finally:
            codes = children.stop_all()
            broker.stop(graceful=True)
            bad = {name: code for name, code in codes.items() if code not in (0, None)}
            print(f"stopped: {codes}" + (f" (non-zero: {bad})" if bad else ""), flush=True)


def set_dotted(document: dict[str, Any], setting: str) -> None:
    """Apply ``a.b.c=VALUE`` (VALUE parsed as YAML) to a configuration document."""
    path, sep, text = setting.partition("=")
    if not sep or not path:
        raise SystemExit(f"--agent-set/--collector-set {setting!r}: use KEY.PATH=VALUE")
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = YAML(typ="safe").load(text)


def commit_sums(metrics_url: str) -> dict[str, float]:
    """The collector's transaction histograms so far: count, seconds and events summed."""
    text = httpx.get(metrics_url, timeout=5).text
    wanted = {
        "lineside_collector_commit_seconds_count": "count",
        "lineside_collector_commit_seconds_sum": "seconds",
        "lineside_collector_commit_events_sum": "events",
    }
    sums = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            sums[wanted[name]] = float(value)
    return sums


def _answers(api: str) -> bool:
    try:
        return httpx.get(f"{api}/api/v1/states/current", timeout=1).status_code in (200, 401)
    except httpx.HTTPError:
        return False


def _has_samples(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM audit.events WHERE type = 'tag.sampled')"
        ).fetchone()[0]


def report(args, tags, elapsed, figures, counts, pollers, tap, cpu, sim_cpu, pg_cpu, mq_cpu,
           load0, load1, opcua) -> None:  # fmt: skip
    source = (
        "simulator's wall-clock SourceTimestamp (OPC UA, --wall-timestamps)"
        if opcua
        else "agent's read time (Modbus poll that saw the change)"
    )
    shape = "staggered over each second" if args.staggered else "all at the whole second"
    print(
        f"\nend-to-end latency, {args.protocol}, {tags:,} tags (values change {shape}), "
        f"window {elapsed:.1f} s"
    )
    print(f"  event_time is the {source}; ingested_at is the transaction start")
    print(f"  rows ingested in the window : {counts['rows']:,} = {counts['rows'] / elapsed:,.0f}/s")
    for kind, f in figures.items():
        if kind == "received_time (agent)":
            print(
                f"  change -> agent's received_time            : n={f['n']:,}  p50 {f['p50']:.0f}"
                f" ms, p95 {f['p95']:.0f} ms, p99 {f['p99']:.0f} ms, max {f['max']:.0f} ms"
            )
            continue
        print(
            f"  change -> committed row, {kind:<24}: n={f['n']:,} ({f['n'] / elapsed:,.0f}/s)"
            f"  p50 {f['p50']:.0f} ms, p95 {f['p95']:.0f} ms, p99 {f['p99']:.0f} ms,"
            f" max {f['max']:.0f} ms"
        )
    for label, values in (
        ("change -> batch sent by the agent (sent_at)", tap.to_sent_ms),
        ("change -> batch through the broker (tap)", tap.to_broker_ms),
    ):
        f = percentiles(values)
        print(
            f"  {label:<44}: n={f['n']:,}  p50 {f['p50']:.0f} ms, p95 {f['p95']:.0f} ms,"
            f" p99 {f['p99']:.0f} ms, max {f['max']:.0f} ms"
        )
    api_ms = [s * 1000 for p in pollers for s in p.latencies_s]
    request_ms = [s * 1000 for p in pollers for s in p.request_s]
    a, r = percentiles(api_ms), percentiles(request_ms)
    requests = sum(p.requests for p in pollers)
    print(
        f"  change -> seen in the API ({len(pollers)} machines, one tag each, "
        f"{args.poll_hz:.0f} Hz jittered, resolution {1000 / args.poll_hz:.0f} ms): n={a['n']}"
        f"  p50 {a['p50']:.0f} ms, p95 {a['p95']:.0f} ms, p99 {a['p99']:.0f} ms,"
        f" max {a['max']:.0f} ms"
    )
    print(
        f"  API requests: {requests:,} ({requests / elapsed:.0f}/s), "
        f"errors {sum(p.errors for p in pollers)}, request p50 {r['p50']:.1f} ms, "
        f"p99 {r['p99']:.1f} ms"
    )
    for poller in pollers:
        if poller.last_error:
            print(f"  last API error of {poller.url}: {poller.last_error}")
    print(
        "  CPU (% of one core): agent(s) "
        + " + ".join(f"{v:.0f}%" for k, v in cpu.items() if k.startswith("agent"))
        + f", collector {cpu['collector']:.0f}%"
        + (" (API inside)," if "api" not in cpu else f", API {cpu['api']:.0f}%,")
        + f" simulator(s) {sim_cpu:.0f}%, PostgreSQL {pg_cpu:.0f}%, Mosquitto {mq_cpu:.0f}%,"
        f" this bench (API pollers, broker tap) {cpu['bench']:.0f}%"
    )
    print(
        f"  load average: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start, "
        f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end",
        flush=True,
    )
    if a["n"]:
        print(f"  (API mean {statistics.fmean(api_ms):.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--protocol", choices=["modbus", "opcua-subscribe"], default="modbus")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument(
        "--interval", type=float, default=0.2,
        help="Modbus poll interval, or OPC UA sampling and publishing interval (s)",
    )  # fmt: skip
    parser.add_argument("--connections", type=int, default=4, help="PLC connections per simulator")
    parser.add_argument("--simulators", type=int, default=1)
    parser.add_argument(
        "--agents", type=int, default=1,
        help="agent processes, each reading its share of the simulators (a divisor of"
        " --simulators)",
    )  # fmt: skip
    parser.add_argument(
        "--max-events-per-commit", type=int, default=10_000,
        help="the collector's ingest.max_events_per_commit (its default: 10,000)",
    )  # fmt: skip
    parser.add_argument(
        "--agent-set", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="set a key of the agent's YAML, e.g. buffer.commit_interval_ms=10 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--collector-set", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="set a key of the collector's YAML, e.g. database.pool_size=4 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--staggered", action="store_true",
        help="machines change their values spread over each second (each at its own offset)"
        " instead of all 10,100 at the whole second",
    )  # fmt: skip
    parser.add_argument(
        "--sim-tick", type=float, default=0.1,
        help="the simulators' step (plc-sim run --tick): states and counters are served up to"
        " one step after their time (process values at their change)",
    )  # fmt: skip
    parser.add_argument(
        "--api-with-ingest", action="store_true",
        help="serve the API inside `oee-collector run` (api.serve_with_ingest: one process"
        " for ingest and API, sharing its GIL) instead of a separate `oee-collector serve`,"
        " the default deployment",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--poll-machines", type=int, default=4)
    parser.add_argument("--poll-hz", type=float, default=20)
    args = parser.parse_args()
    if args.agents < 1 or args.simulators % args.agents:
        parser.error("--agents must divide --simulators (each agent reads whole simulators)")
    run(args)


if __name__ == "__main__":
    main()
