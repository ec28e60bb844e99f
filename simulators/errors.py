"""Exceptions raised by the simulators package."""

from __future__ import annotations

from dataclasses import dataclass


class SimulatorError(Exception):
    """Base class for every error the simulators raise on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a scenario file, located for a human."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ScenarioError(SimulatorError):
    """A scenario file could not be loaded; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(issue.render() for issue in issues))


class ScenarioNotFoundError(SimulatorError):
    """A scenario name or path does not resolve to a file."""


class FaultError(SimulatorError):
    """A fault request names something that does not exist or cannot be done."""
