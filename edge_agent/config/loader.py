"""Read an agent configuration file: ${VAR} references, validation, located errors."""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.config.models import AgentConfig, reference_problems
from lineside_common.yamlconfig import (
    ConfigFileError,
    ConfigIssue,
    env_resolver,
    load_yaml,
    locate,
    validate_document,
)

ADDRESS_KINDS = frozenset({"opcua", "modbus"})  # union tags of Tag.address
UNKNOWN_KEY = "unknown key (check the spelling; see docs/configuration.md for valid keys)"


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> AgentConfig:
    """Load and validate ``path``; raise ConfigFileError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(
            [ConfigIssue(str(path), None, None, "", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_config(text, str(path), environ)


def parse_config(text: str, filename: str, environ: dict[str, str] | None = None) -> AgentConfig:
    document = load_yaml(text, filename)
    if not isinstance(document, dict):
        raise ConfigFileError(
            [
                ConfigIssue(
                    filename, 1, 1, "", "expected a mapping with agent, connections, equipment"
                )
            ]
        )
    env = dict(os.environ if environ is None else environ)
    credentials_dir = _credentials_dir(document)
    resolver = env_resolver(env, credentials_dir)
    config = validate_document(
        AgentConfig,
        document,
        filename,
        {"extra_forbidden": UNKNOWN_KEY},
        resolve=resolver,
        union_tags=ADDRESS_KINDS,
    )
    issues = []
    for loc, message in reference_problems(config):
        line, column, field_path = locate(document, loc)
        issues.append(ConfigIssue(filename, line, column, field_path, message))
    if issues:
        raise ConfigFileError(issues)
    return config


def _credentials_dir(document: dict) -> str | None:
    agent = document.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("credentials_dir"), str):
        return agent["credentials_dir"]
    return None
