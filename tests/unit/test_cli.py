"""plc-sim commands that need no servers: list, tags, validate, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from simulators.cli import app

runner = CliRunner()
CASES = Path(__file__).parent.parent / "cases" / "scenario"


def test_list_shows_every_shipped_scenario() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("one-machine-shift", "line-3-machines", "load-100-machines", "demo-line"):
        assert name in result.output


def test_tags_json_names_node_ids_and_registers() -> None:
    result = runner.invoke(
        app, ["tags", "line-3-machines", "--machine", "weld-1", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["tag"]: row for row in json.loads(result.output)}
    assert rows["TotalCount"]["opcua"] == (
        "nsu=urn:lineside:simulator;s=plant1.body.line2.weld-1.TotalCount"
    )
    assert rows["TotalCount"]["modbus"] == "unit 2 HR 2"
    assert rows["TotalCount"]["type"] == "uint16"
    assert rows["ProcessValues.current"]["modbus"] == "unit 2 IR 0-3"
    assert rows["Is_running"]["modbus"] == "unit 2 DI 0"


def test_invalid_scenario_exits_2_with_location(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(CASES / "unknown-key-typo" / "scenario.yaml")])
    assert result.exit_code == 2
    assert "scenario.yaml:5:5: machines[0].counter_widht: unknown key" in result.output


def test_run_with_invalid_scenario_exits_2_before_starting_anything() -> None:
    result = runner.invoke(app, ["run", str(CASES / "bad-timezone" / "scenario.yaml")])
    assert result.exit_code == 2
    assert "timezone: 'Mars/Olympus' is not an IANA time zone" in result.output


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    result = runner.invoke(app, ["run", "no-such-scenario"])
    assert result.exit_code == 2
    assert "shipped: demo-line, line-3-machines" in result.output


def test_bad_fault_spec_exits_2() -> None:
    result = runner.invoke(app, ["run", "demo-line", "--fault", "explode now"])
    assert result.exit_code == 2
    assert "start with one of" in result.output


def test_example_config_scenario_is_valid() -> None:
    example = Path(__file__).parent.parent.parent / "config" / "scenario.example.yaml"
    result = runner.invoke(app, ["validate", str(example)])
    assert result.exit_code == 0, result.output


def test_unknown_opcua_policy_exits_2_and_names_the_valid_ones() -> None:
    result = runner.invoke(app, ["run", "demo-line", "--opcua-security", "basic128"])
    assert result.exit_code == 2
    assert "none, basic256sha256, aes256sha256rsapss" in result.output
