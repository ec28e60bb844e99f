"""plc-sim as an engineer runs it: a real process, real clients, faults from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _sim_process import PLC_SIM, SimProcess, free_port, wait_for
from asyncua import Client
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException


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


def test_wall_timestamps_put_opcua_source_times_on_the_wall_clock(tmp_path: Path) -> None:
    """--wall-timestamps: the model runs 60x from a simulated 2026-11-30 06:00 (not
    today), yet OPC UA SourceTimestamps are "now"; the truth log keeps simulated time."""
    from datetime import UTC, datetime

    process = SimProcess(tmp_path, "--wall-timestamps")

    async def source_times() -> list[datetime]:
        url = f"opc.tcp://127.0.0.1:{process.opcua_port}"
        async with Client(url, timeout=5) as client:
            ns = await client.get_namespace_index("urn:lineside:simulator")
            stamps = []
            for tag in ("State", "GoodCount"):
                node = client.get_node(f"ns={ns};s=plant1.body.line2.press-1.{tag}")
                stamps.append((await node.read_data_value()).SourceTimestamp)
            return stamps

    try:
        stamps = asyncio.run(source_times())
        now = datetime.now(UTC)
        for stamp in stamps:
            assert abs((stamp.replace(tzinfo=UTC) - now).total_seconds()) < 10, stamps
    finally:
        code, _out, err = process.stop()
    assert code == 0, err
    started = process.truth_records()[0]
    assert started["type"] == "run_started"
    assert started["ts"].startswith("2026-11-30T05:00"), started
