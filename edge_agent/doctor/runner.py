"""Run every doctor check: config first, then PLCs, broker, disk and clock concurrently.

Each group is bounded (its steps by ``timeout_s`` each, the group as a whole by
``GROUP_STEPS * timeout_s``) and any unexpected error becomes a failed check, so the
doctor always finishes with a report, even with everything down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.doctor.broker import check_broker
from edge_agent.doctor.clock import check_clock
from edge_agent.doctor.config import ConfigOutcome, check_config
from edge_agent.doctor.disk import check_disk
from edge_agent.doctor.plc import check_connection
from edge_agent.doctor.results import Check, exit_code, fail

log = logging.getLogger("lineside.agent.doctor")

DEFAULT_TIMEOUT_S = 5.0
GROUP_STEPS = 4
"""A group has at most three sequential steps; one step's worth of slack on top."""


@dataclass(frozen=True)
class DoctorReport:
    """Everything the doctor found; ``exit_code`` is what the command returns."""

    config_path: Path
    checks: list[Check]
    config_valid: bool
    config_outcome: ConfigOutcome | None = field(default=None, compare=False)

    @property
    def exit_code(self) -> int:
        return exit_code(self.checks, self.config_valid)


async def run_doctor(path: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> DoctorReport:
    """Check ``path`` and, when it is valid, everything it names."""
    outcome = await asyncio.to_thread(check_config, path)
    config = outcome.config
    if config is None:
        return DoctorReport(path, [outcome.check], False, outcome)
    groups: list[tuple[str, Awaitable[list[Check]]]] = [
        (f"plc {conn.id}", check_connection(config, conn, timeout_s)) for conn in config.connections
    ]
    groups += [
        ("broker", check_broker(config.mqtt, config.agent.id, timeout_s)),
        ("disk", asyncio.to_thread(check_disk, config)),
        ("clock", check_clock(timeout_s)),
    ]
    results = await asyncio.gather(
        *(_bounded(name, work, GROUP_STEPS * timeout_s) for name, work in groups)
    )
    checks = [outcome.check, *(check for group in results for check in group)]
    return DoctorReport(path, checks, True, outcome)


async def _bounded(name: str, work: Awaitable[list[Check]], limit_s: float) -> list[Check]:
    """``work``'s checks, or one failed check when it overran or raised."""
    try:
        return await asyncio.wait_for(work, limit_s)
    except TimeoutError:
        return [
            fail(
                name,
                f"did not finish within {limit_s:g} s",
                "the network or server is very slow; run again with a larger --timeout",
            )
        ]
    except Exception as exc:  # the doctor reports, it never crashes
        log.debug("doctor check crashed group=%s", name, exc_info=True)
        return [
            fail(
                name,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "report this with the command's output; check the section's settings",
            )
        ]
