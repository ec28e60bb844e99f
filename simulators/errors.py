"""Exceptions raised by the simulators package."""

# ConfigIssue is re-exported: scenario errors are located like every Lineside YAML file.

from __future__ import annotations

from lineside_common.yamlconfig import ConfigFileError, ConfigIssue


class SimulatorError(Exception):
    """Base class for every error the simulators raise on purpose."""


class ScenarioError(SimulatorError, ConfigFileError):
    """A scenario file could not be loaded; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        ConfigFileError.__init__(self, issues)


class ScenarioNotFoundError(SimulatorError):
    """A scenario name or path does not resolve to a file."""


class FaultError(SimulatorError):
    """A fault request names something that does not exist or cannot be done."""
