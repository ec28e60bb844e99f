"""Agent configuration: data cases, references, secrets, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.cli import app
from edge_agent.config import AgentConfig, load_config, parse_config
from lineside_common.yamlconfig import ConfigFileError

ROOT = Path(__file__).parent.parent.parent
CASES = sorted((ROOT / "tests" / "cases" / "config").iterdir())
runner = CliRunner()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_config_case(case: Path) -> None:
    text = (case / "agent.yaml").read_text()
    expected = case / "expected_error.txt"
    if not expected.exists():
        assert isinstance(parse_config(text, "agent.yaml", environ={}), AgentConfig)
        return
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, "agent.yaml", environ={})
    rendered = [issue.render() for issue in caught.value.issues]
    assert any(line.startswith(expected.read_text().strip()) for line in rendered), rendered
    assert not any("valid string" in line for line in rendered), rendered  # no union noise


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("agent.*.yaml")))
def test_shipped_examples_are_valid(path: Path) -> None:
    assert load_config(path).equipment


BASE = (CASES[0].parent / "valid-minimal" / "agent.yaml").read_text()


def with_auth(auth: str) -> str:
    return BASE.replace(
        "      endpoint: opc.tcp://127.0.0.1:4840",
        f"      endpoint: opc.tcp://127.0.0.1:4840\n      auth: {auth}",
    )


def test_env_and_default_references_are_resolved() -> None:
    text = with_auth('{type: username, username: "${USER_NAME:-agent}", password: "${PW}"}')
    config = parse_config(text, "a.yaml", environ={"PW": "hunter2-secret"})
    auth = config.connections[0].opcua.auth
    assert auth.username == "agent"
    assert auth.password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(config)
    assert "hunter2-secret" not in config.model_dump_json()


def test_credentials_come_from_the_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "opcua-password").write_text("s3cr3t-from-file\n")
    text = with_auth('{type: username, username: agent, password: "${credential:opcua-password}"}')
    config = parse_config(text, "a.yaml", environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.connections[0].opcua.auth.password.get_secret_value() == "s3cr3t-from-file"
    with pytest.raises(ConfigFileError, match="credential 'nope' cannot be read"):
        parse_config(
            text.replace("opcua-password", "nope"),
            "a.yaml",
            environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
        )
    with pytest.raises(ConfigFileError, match="needs a credentials directory"):
        parse_config(text, "a.yaml", environ={})


def test_errors_never_show_secret_values(tmp_path: Path) -> None:
    text = with_auth('{type: username, username: agent, password: "${PW}", colour: blue}')
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["check-config", str(path)], env={"PW": "hunter2-secret"})
    assert result.exit_code == 2
    assert "colour: unknown key" in result.output
    assert "hunter2-secret" not in result.output


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = BASE.replace("id: pc1", "id: pc1\n  colour: blue").replace(
        '{id: state, role: state, address: "ns=2;s=Press.State"}',
        '{id: state, role: mood, address: "ns=2;s=Press.State"}',
    )
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, "a.yaml", environ={})
    paths = [issue.path for issue in caught.value.issues]
    assert paths == ["agent.colour", "equipment[0].tags[0].role"]


def test_unknown_keys_get_a_spelling_hint() -> None:
    text = BASE.replace(
        '{id: state, role: state, address: "ns=2;s=Press.State"}',
        '{id: good, role: good_count, counter_widht: 16, address: "ns=2;s=G"}',
    )
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, "a.yaml", environ={})
    assert "did you mean 'counter_width'?" in str(caught.value)


def test_check_config_cli_summarises_a_valid_file() -> None:
    result = runner.invoke(app, ["check-config", str(ROOT / "config/agent.line-3-machines.yaml")])
    assert result.exit_code == 0, result.output
    assert "agent      line2-pc1 at acme/plant1/body/line2" in result.output
    assert "equipment  3, tags 20" in result.output


def test_schema_cli_prints_a_json_schema_with_secret_fields_write_only() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"agent", "connections", "equipment"}
    password = schema["$defs"]["OpcUaAuth"]["properties"]["password"]["anyOf"][0]
    assert password["writeOnly"] is True


def test_configuration_reference_is_up_to_date() -> None:
    from edge_agent.config.reference import render_reference, splice

    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert splice(doc, render_reference()) == doc, (
        "docs/configuration.md is stale: run python -m edge_agent.config.reference "
        "--write docs/configuration.md"
    )
