"""Config check: load and validate the file with the agent's own loader.

An invalid file stops the doctor: every other check needs the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import AgentConfig, load_config
from edge_agent.doctor.results import Check, fail, ok
from lineside_common.yamlconfig import ConfigFileError, ConfigIssue

NAME = "config"


@dataclass(frozen=True)
class ConfigOutcome:
    """The loaded configuration (None when invalid), its check and located problems."""

    config: AgentConfig | None
    check: Check
    issues: tuple[ConfigIssue, ...] = ()


def check_config(path: Path) -> ConfigOutcome:
    """Load ``path`` like ``edge-agent run`` does; problems come with file:line:column."""
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        lines = "; ".join(issue.render() for issue in exc.issues)
        return ConfigOutcome(
            None,
            fail(
                NAME,
                f"{len(exc.issues)} problem(s): {lines}",
                f"fix the lines named, then: edge-agent check-config {path}",
            ),
            tuple(exc.issues),
        )
    except UnicodeDecodeError:
        return _unloadable(path, "not UTF-8 text: is this the YAML file?")
    except Exception as exc:  # e.g. ruamel's ReaderError, a recursive alias: report, never crash
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return _unloadable(path, f"cannot parse: {type(exc).__name__}: {first_line}")
    tags = sum(len(eq.tags) for eq in config.equipment)
    return ConfigOutcome(
        config,
        ok(
            NAME,
            f"{path}: agent {config.agent.id}, {len(config.connections)} connection(s), "
            f"{len(config.equipment)} equipment, {tags} tags",
        ),
    )


def _unloadable(path: Path, message: str) -> ConfigOutcome:
    issue = ConfigIssue(str(path), None, None, "", message)
    return ConfigOutcome(
        None,
        fail(NAME, issue.render(), "give the agent's YAML configuration; fix the file"),
        (issue,),
    )
