"""What a doctor check found (pure): one ``Check`` per finding, and their summary.

A check is ``ok`` (nothing to do), ``warn`` (works, but something will bite later or
cannot be told) or ``fail`` (the agent cannot do its job until it is fixed). ``fix``
says what a technician should do; it is empty for ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


_RANK = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}

EXIT_OK = 0
"""Every check ok or warn."""
EXIT_FAIL = 1
"""At least one check failed."""
EXIT_CONFIG = 2
"""The configuration file is unreadable or invalid (nothing else was checked)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: ``name`` (e.g. ``plc line2-opcua session``), status, detail and fix."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (``status`` as its text)."""
        out = asdict(self)
        out["status"] = self.status.value
        return out


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def worst(checks: Iterable[Check]) -> Status:
    """The most severe status of ``checks`` (``ok`` for none)."""
    return max((c.status for c in checks), key=_RANK.__getitem__, default=Status.OK)


def exit_code(checks: Iterable[Check], config_valid: bool) -> int:
    """0 when all checks are ok or warn, 1 when any failed, 2 for an invalid configuration."""
    if not config_valid:
        return EXIT_CONFIG
    return EXIT_FAIL if worst(checks) is Status.FAIL else EXIT_OK


def counts(checks: Iterable[Check]) -> dict[str, int]:
    """``{"ok": n, "warn": n, "fail": n}``."""
    out = dict.fromkeys((s.value for s in Status), 0)
    for check in checks:
        out[check.status.value] += 1
    return out


def first_few(items: list[str], limit: int = 5) -> str:
    """``a, b, c`` or ``a, b, c and 4 more`` (long lists stay readable in a table)."""
    shown = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
