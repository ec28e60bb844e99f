"""Exceptions of the derive package: one base, one subclass per kind of mistake."""

from __future__ import annotations


class DeriveError(Exception):
    """Base of every error raised by ``edge_agent.derive``."""


class RolesError(DeriveError, ValueError):
    """The tag roles of an equipment are inconsistent; ``problems`` lists every one."""

    def __init__(self, equipment: str, problems: list[str]) -> None:
        self.equipment = equipment
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"equipment {equipment!r}: invalid tag roles ({len(problems)}):\n{lines}")


class SnapshotError(DeriveError, ValueError):
    """A persisted deriver snapshot cannot be restored (other equipment, version, damage)."""
