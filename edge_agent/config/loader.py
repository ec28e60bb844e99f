"""Read an agent configuration file: ${VAR} references, validation, located errors."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ruamel.yaml import YAMLError

from edge_agent.config.compact import share_equal_parts
from edge_agent.config.models import AgentConfig, reference_problems
from lineside_common.yamlconfig import (
    ConfigFileError,
    ConfigIssue,
    env_resolver,
    load_yaml,
    load_yaml_fast,
    locate,
    read_config_text,
    validate_document,
)

UNION_TAGS = frozenset({"opcua", "modbus", "poll", "subscribe"})  # Tag.address, Tag.sampling
UNKNOWN_KEY = "unknown key (check the spelling; see docs/configuration.md for valid keys)"


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> AgentConfig:
    """Load and validate ``path``; raise ConfigFileError listing every problem."""
    path = Path(path)
    text = read_config_text(path)
    return parse_config(text, str(path), environ)


def parse_config(text: str, filename: str, environ: dict[str, str] | None = None) -> AgentConfig:
    """Validate a configuration; a valid one takes the fast path, problems are located."""
    env = dict(os.environ if environ is None else environ)
    try:
        plain = load_yaml_fast(text)
    except YAMLError:
        plain = None
    if isinstance(plain, dict):
        with contextlib.suppress(ConfigFileError):
            return _validated(plain, filename, env)
    return _validated(load_yaml(text, filename), filename, env)  # raises, with positions


def _validated(document: Any, filename: str, env: dict[str, str]) -> AgentConfig:
    if not isinstance(document, dict):
        raise ConfigFileError(
            [
                ConfigIssue(
                    filename, 1, 1, "", "expected a mapping with agent, connections, equipment"
                )
            ]
        )
    credentials_dir = _credentials_dir(document)
    resolver = env_resolver(env, credentials_dir)
    config = validate_document(
        AgentConfig,
        document,
        filename,
        {"extra_forbidden": UNKNOWN_KEY},
        resolve=resolver,
        union_tags=UNION_TAGS,
    )
    issues = []
    for loc, message in reference_problems(config):
        line, column, field_path = locate(document, loc)
        issues.append(ConfigIssue(filename, line, column, field_path, message))
    if issues:
        raise ConfigFileError(issues)
    share_equal_parts(config)  # ~half the models' memory at 10,000 tags (see compact.py)
    return config


def _credentials_dir(document: dict) -> str | None:
    agent = document.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("credentials_dir"), str):
        return agent["credentials_dir"]
    return None


def load_config_in_child(path: str | Path, environ: dict[str, str] | None = None) -> AgentConfig:
    """``load_config`` in a short-lived forked process; only the validated models return.

    Parsing YAML builds a large tree of short-lived objects (about 90 MB for 10,000
    tags) whose memory the interpreter keeps after it is freed. A long-running agent
    loads its configuration this way so that its resident memory holds the models
    (about 27 MB for 10,000 tags) and not the parser's leftovers. Call it before
    starting threads. Errors are raised here as ``ConfigFileError``, as by
    ``load_config``.
    """
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        outcome = pool.submit(_load_for_parent, str(path), environ).result()
    if isinstance(outcome, list):
        raise ConfigFileError(outcome)
    return outcome


def _load_for_parent(path: str, environ: dict[str, str] | None) -> AgentConfig | list[ConfigIssue]:
    try:
        return load_config(path, environ)
    except ConfigFileError as exc:  # issues pickle; the exception's arguments may not
        return list(exc.issues)
