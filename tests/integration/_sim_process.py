"""A plc-sim process on free ports, for tests that need a simulator as engineers run it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

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
