"""``edge-agent run`` as a process, against a simulator and a broker the test started."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from _sim_process import SimProcess, free_port, wait_for
from ruamel.yaml import YAML

EDGE_AGENT = str(Path(sys.executable).parent / "edge-agent")
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.line-3-machines.yaml"


def line3_agent_config(
    tmp_path: Path, sim: SimProcess, mqtt_port: int, **overrides: Any
) -> dict[str, Any]:
    """The shipped line-3 example, pointed at this test's simulator, broker and dirs."""
    document = YAML(typ="safe").load(EXAMPLE.read_text())
    document["agent"]["data_dir"] = str(tmp_path / "agent")
    opcua, modbus = document["connections"]
    opcua["opcua"]["endpoint"] = f"opc.tcp://127.0.0.1:{sim.opcua_port}"
    modbus["modbus"]["tcp"]["port"] = sim.modbus_port
    document["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port, "ack_timeout_s": 5}
    document["health"] = {"listen": f"127.0.0.1:{free_port()}"}
    document.update(overrides)
    return document


def write_config(path: Path, document: dict[str, Any]) -> Path:
    with path.open("w") as out:
        YAML().dump(document, out)
    return path


class AgentProcess:
    """One ``edge-agent run CONFIG``; stderr goes to ``log`` (appended across restarts)."""

    def __init__(self, config_path: Path, log: Path) -> None:
        self.config_path = config_path
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        document = YAML(typ="safe").load(config_path.read_text())
        self.health = f"http://{document['health']['listen']}"

    def start(self) -> AgentProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [EDGE_AGENT, "run", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.answering, 60, "the agent's health endpoint")
        return self

    def answering(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"edge-agent exited {self.proc.returncode}: {self.log_text()}")
        try:
            return httpx.get(f"{self.health}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.health}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return httpx.get(f"{self.health}/status", timeout=5).json()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
