"""plc-sim as an engineer runs it: a real process, real clients, faults from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from asyncua import Client
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

PLC_SIM = str(Path(sys.executable).parent / "plc-sim")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class SimProcess:
    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.opcua_port, self.modbus_port, self.control_port = free_port(), free_port(), free_port()
        self.truth = tmp_path / "truth.jsonl"
        self.control = f"http://127.0.0.1:{self.control_port}"
        self.proc = subprocess.Popen(
            [
                PLC_SIM,
                "run",
                "line-3-machines",
                "--no-live",
                "--speed",
                "60",
                "--opcua-port",
                str(self.opcua_port),
                "--modbus-port",
                str(self.modbus_port),
                "--control-port",
                str(self.control_port),
                "--data-dir",
                str(tmp_path),
                "--truth",
                str(self.truth),
                "--opcua-security",
                "none",
                "--start",
                "2026-11-30T06:00:00+01:00",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(self.healthy, 60, "the control endpoint")

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"plc-sim exited: {self.proc.stderr.read()}")
        try:
            return httpx.get(f"{self.control}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict:
        return httpx.get(f"{self.control}/status", timeout=5).json()

    def fault(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLC_SIM, "fault", *args, "--control", self.control],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def truth_records(self) -> list[dict]:
        return [json.loads(line) for line in self.truth.read_text().splitlines() if line]

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    process = SimProcess(tmp_path)
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


async def read_state(port: int, unit: int, timeout_s: float = 1.0) -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout_s, retries=0)
    await client.connect()
    try:
        response = await client.read_holding_registers(0, count=1, device_id=unit)
        return response.registers[0]
    finally:
        client.close()


def test_banner_names_endpoints_and_faults_from_cli_reach_clients(sim: SimProcess) -> None:
    # Modbus answers: press-1 (unit 1) runs at simulated 06:00 onwards.
    assert asyncio.run(read_state(sim.modbus_port, 1)) == 1

    result = sim.fault("hang", "3s", "--face", "modbus")
    assert result.returncode == 0, result.stderr
    with pytest.raises((ModbusException, TimeoutError, AttributeError)):
        asyncio.run(read_state(sim.modbus_port, 1, timeout_s=0.5))

    # OPC UA is not hung: only the Modbus face was named.
    async def read_opcua() -> int:
        async with Client(f"opc.tcp://127.0.0.1:{sim.opcua_port}", timeout=5) as client:
            ns = await client.get_namespace_index("urn:lineside:simulator")
            node = client.get_node(f"ns={ns};s=plant1.body.line2.press-1.State")
            return await node.read_value()

    assert asyncio.run(read_opcua()) == 1
    wait_for(lambda: sim.status()["faults"]["modbus"]["hang_remaining_s"] == 0, 10, "hang end")
    assert asyncio.run(read_state(sim.modbus_port, 1)) == 1

    result = sim.fault("counter-reset", "no-such-machine")
    assert result.returncode == 2
    assert "unknown machine 'no-such-machine'" in result.stderr

    code, out, err = sim.stop()
    assert code == 0, err
    assert f"opc.tcp://127.0.0.1:{sim.opcua_port}" in out
    assert f"127.0.0.1:{sim.modbus_port}" in out
    records = sim.truth_records()
    assert records[0]["type"] == "run_started"
    assert records[-1]["type"] == "run_stopped"
    faults = [r for r in records if r["type"] == "fault"]
    assert [(f["fault"], f["face"]) for f in faults] == [("hang", "modbus")]


def test_fault_given_at_start_is_applied_later(tmp_path: Path) -> None:
    process = SimProcess(tmp_path, "--fault", "after 1s counter-reset weld-1")
    try:
        wait_for(
            lambda: any(r["type"] == "fault" for r in process.truth_records()),
            15,
            "the scheduled fault",
        )
        resets = [
            r
            for r in process.truth_records()
            if r["type"] == "counter_reset" and r["machine"] == "weld-1" and r["cause"] == "fault"
        ]
        assert len(resets) == 1
    finally:
        code, _, err = process.stop()
    assert code == 0, err


def test_exit_at_end_stops_after_the_shift(tmp_path: Path) -> None:
    # 06:00-14:00 at 3600x is 8 s of wall time.
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [
            PLC_SIM,
            "run",
            "line-3-machines",
            "--no-live",
            "--speed",
            "3600",
            "--exit-at-end",
            "--no-opcua",
            "--modbus-port",
            str(free_port()),
            "--control-port",
            "0",
            "--start",
            "2026-11-30T06:00:00+01:00",
            "--truth",
            str(tmp_path / "t.jsonl"),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert sorted(r["machine"] for r in records if r["type"] == "end") == [
        "pack-1",
        "press-1",
        "weld-1",
    ]
    parts = [r for r in records if r["type"] == "part"]
    assert len(parts) > 20_000
