"""edge-agent commands a technician runs against a live (simulated) PLC."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _sim_process import SimProcess

EDGE_AGENT = str(Path(sys.executable).parent / "edge-agent")
CONFIG = Path(__file__).parent.parent.parent / "config" / "agent.line-3-machines.yaml"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    process = SimProcess(tmp_path_factory.mktemp("sim"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def config(sim: SimProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agent") / "agent.yaml"
    text = CONFIG.read_text().replace("port: 5020", f"port: {sim.modbus_port}")
    text = text.replace("opc.tcp://127.0.0.1:4840", f"opc.tcp://127.0.0.1:{sim.opcua_port}")
    path.write_text(text.replace("data_dir: var/agent/line2-pc1", f"data_dir: {path.parent}"))
    return path


def edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGE_AGENT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_read_a_modbus_tag(sim: SimProcess, config: Path) -> None:
    # pack-1 (unit 3, little-endian registers) is idle (2) until 06:05, then running (1).
    result = edge_agent("read", str(config), "pack-1.state")
    assert result.returncode == 0, result.stderr
    assert re.search(r"value +[12] ", result.stdout), result.stdout
    assert "quality      good" in result.stdout
    assert "source time  -" in result.stdout  # Modbus has no source timestamps


def test_read_an_unknown_tag_lists_the_known_ones(config: Path) -> None:
    result = edge_agent("read", str(config), "pack-1.nope")
    assert result.returncode == 2
    assert "tags: pack-1.good, pack-1.order" in result.stderr


def test_read_from_a_plc_that_is_not_there_says_why(config: Path, tmp_path: Path) -> None:
    broken = tmp_path / "agent.yaml"
    broken.write_text(config.read_text().replace("host: 127.0.0.1", "host: 127.0.0.2"))
    result = edge_agent("read", str(broken), "pack-1.state", "--timeout", "3")
    assert result.returncode == 1
    assert "pack-1.state: no value" in result.stderr


def test_read_an_opcua_tag_keeps_the_source_timestamp(config: Path) -> None:
    result = edge_agent("read", str(config), "press-1.state")
    assert result.returncode == 0, result.stderr
    assert re.search(r"value +[12] ", result.stdout), result.stdout
    assert not re.search(r"source time +- ", result.stdout), result.stdout
    assert "status       Good" in result.stdout


def test_discover_prints_a_config_that_validates(sim: SimProcess, tmp_path: Path) -> None:
    result = edge_agent(
        "discover",
        f"opc.tcp://127.0.0.1:{sim.opcua_port}",
        "--filter",
        "*press-1*",
        "--data-dir",
        str(tmp_path / "agent"),
    )
    assert result.returncode == 0, result.stderr
    assert "s=plant1.body.line2.press-1.TotalCount" in result.stdout
    path = tmp_path / "discovered.yaml"
    path.write_text(result.stdout)
    checked = edge_agent("check-config", str(path))
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "equipment  1," in checked.stdout
