"""Benchmark: memory cost of the agent's health endpoint, stdlib server vs uvicorn.

Each variant runs in a child process that first imports what the agent has anyway
(asyncua, pymodbus, paho-mqtt, the pydantic config models, the status dataclasses), then imports and
starts its HTTP server serving /healthz, /readyz, /status and /metrics for a status of
N devices. This process reads the child's RSS (VmRSS) after the baseline, after the
start, and after each round of requests (sequential, then from 8 threads at once):
the rounds show whether memory settles or keeps growing.

    ./lineside bench health_rss --devices 100 --requests 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("stdlib", "starlette-uvicorn", "fastapi-uvicorn")
ROUTES = ("/metrics", "/status", "/readyz", "/healthz")


def sample_status(devices: int):  # type: ignore[no-untyped-def]
    from edge_agent.status import AgentStatus, BufferStatus, DeviceStatus, ForwarderStatus

    return AgentStatus(
        agent_id="bench",
        version="0.1.0",
        config_hash="0" * 16,
        started_at="2026-01-01T00:00:00+00:00",
        devices=[
            DeviceStatus(f"conn-{i // 10}", f"unit-{i % 10}", "modbus", True, values_total=i)
            for i in range(devices)
        ],
        buffer=BufferStatus(
            path="/var/lib/lineside/agent/buffer.sqlite",
            durability="full",
            accepting=True,
            depth_events=1000,
            bytes=1 << 20,
            max_bytes=1 << 30,
            oldest_age_s=1.0,
            captured_events_total=10**6,
            dropped_events_total={f"eq-{i}": 0 for i in range(devices)},
        ),
        forwarder=ForwarderStatus("broker:8883", True, "closed", "collector"),
    )


def child(variant: str, devices: int) -> None:
    """Run one server variant; print its port; serve until stdin closes."""
    import asyncio  # noqa: F401  (the agent's baseline)

    import asyncua  # noqa: F401
    import paho.mqtt.client  # noqa: F401
    import pydantic  # noqa: F401
    import pymodbus.client  # noqa: F401

    import edge_agent.config  # noqa: F401  (the config models: pydantic's machinery)

    status = sample_status(devices)
    print("base", flush=True)
    sys.stdin.readline()
    if variant == "stdlib":
        from edge_agent.service import HealthConfig, HealthServer, LoopHeartbeat

        heartbeat = LoopHeartbeat(stale_after_s=1e9)  # no loop here: one beat
        heartbeat.beat()
        server = HealthServer(HealthConfig(listen="127.0.0.1:0"), lambda: status, heartbeat)
        server.start()
        assert server.address is not None
        port = server.address[1]
    else:
        port = _start_uvicorn(variant, status)
    print(port, flush=True)
    sys.stdin.readline()


def _start_uvicorn(variant: str, status) -> int:  # type: ignore[no-untyped-def]
    import socket

    import uvicorn
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from edge_agent.service.metrics import build_registry
    from edge_agent.service.readiness import readiness

    registry = build_registry(lambda: status)
    if variant == "fastapi-uvicorn":
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse, Response

        app = FastAPI()
        app.get("/healthz")(lambda: {"alive": True})
        app.get("/readyz")(lambda: JSONResponse(readiness(status).to_json()))
        app.get("/status")(lambda: status.to_json())
        app.get("/metrics")(
            lambda: Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        )
    else:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        app = Starlette(
            routes=[
                Route("/healthz", lambda r: JSONResponse({"alive": True})),
                Route("/readyz", lambda r: JSONResponse(readiness(status).to_json())),
                Route("/status", lambda r: JSONResponse(status.to_json())),
                Route(
                    "/metrics",
                    lambda r: Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST),
                ),
            ]
        )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(variant: str, devices: int, requests: int, rounds: int) -> list[float]:
    """RSS of the child: baseline, started, then after each sequential / concurrent round."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, "--devices", str(devices)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdout.readline()
    base = rss_mb(proc.pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    port = int(proc.stdout.readline())
    samples = [base, rss_mb(proc.pid)]
    url = f"http://127.0.0.1:{port}"

    def load(count: int) -> None:
        with httpx.Client(base_url=url) as client:
            for i in range(count):
                assert client.get(ROUTES[i % len(ROUTES)]).status_code == 200

    for _ in range(rounds):
        load(requests)
        samples.append(rss_mb(proc.pid))
        threads = [threading.Thread(target=load, args=(requests // 8,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        samples.append(rss_mb(proc.pid))
    proc.stdin.close()
    proc.wait(10)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.devices)
        return
    print(
        f"devices={args.devices}, rounds of {args.requests} sequential + {args.requests} "
        "from 8 threads; RSS (MB): base, started, after each sequential/concurrent round"
    )
    for variant in VARIANTS:
        samples = measure(variant, args.devices, args.requests, args.rounds)
        print(
            f"{variant:18} "
            + " ".join(f"{mb:5.1f}" for mb in samples)
            + f"   server cost +{samples[-1] - samples[0]:.1f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
