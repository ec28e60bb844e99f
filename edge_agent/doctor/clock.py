"""Clock check: is the system clock NTP-synchronised?

Event timestamps come from this clock, and the collector refuses events stamped more
than 10 minutes after it received them (and before 2000). Asks ``timedatectl`` first,
then chrony, then ntpd; when none can tell, says so (a warning). The parsers are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from datetime import UTC, datetime

from edge_agent.doctor.results import Check, fail, ok, warn

NAME = "clock"
WHY = "event times come from this clock; the collector refuses events > 10 min in the future"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FIX = (
    "enable time sync with the plant's time server: sudo timedatectl set-ntp true "
    "(systemd-timesyncd, NTP= in /etc/systemd/timesyncd.conf) or chrony"
)


def parse_timedatectl(output: str) -> bool | None:
    """``timedatectl show -p NTPSynchronized --value`` -> True/False, None if unclear."""
    return {"yes": True, "no": False}.get(output.strip().lower())


def parse_chronyc_tracking(output: str) -> bool | None:
    """``chronyc -n tracking``: ``Leap status : Normal`` means synchronised."""
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "leap status":
            return value.strip().lower() != "not synchronised"
    return None


def parse_ntpq_peers(output: str) -> bool | None:
    """``ntpq -pn``: a peer line starting with ``*`` is the selected (synced) source."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not any(line.lstrip().startswith("remote") for line in lines):
        return None
    return any(line.startswith("*") for line in lines)


_PROBES = (
    ("timedatectl", ["timedatectl", "show", "-p", "NTPSynchronized", "--value"], parse_timedatectl),
    ("chrony", ["chronyc", "-n", "tracking"], parse_chronyc_tracking),
    ("ntpd", ["ntpq", "-pn"], parse_ntpq_peers),
)


def verdict(source: str | None, synced: bool | None, now: datetime) -> Check:
    """The clock check from what a probe said (``source`` None: no probe could tell)."""
    if now < EARLIEST:
        return fail(NAME, f"the clock says {now:%Y-%m-%d}: it was never set; {WHY}", FIX)
    if synced is True:
        return ok(NAME, f"synchronised ({source})")
    if synced is False:
        return fail(NAME, f"not synchronised ({source}); {WHY}", FIX)
    return warn(
        NAME,
        f"cannot tell whether the clock is synchronised (no timedatectl, chronyc or ntpq "
        f"answered); {WHY}",
        "check by hand: timedatectl, chronyc tracking or ntpq -p; " + FIX,
    )


async def check_clock(timeout_s: float) -> list[Check]:
    """Ask the time sync services in turn; the first clear answer decides."""
    for source, command, parse in _PROBES:
        if shutil.which(command[0]) is None:
            continue
        output = await _run(command, timeout_s)
        synced = parse(output) if output is not None else None
        if synced is not None:
            return [verdict(source, synced, datetime.now(UTC))]
    return [verdict(None, None, datetime.now(UTC))]


async def _run(command: list[str], timeout_s: float) -> str | None:
    """stdout of ``command``, or None when it fails, is missing or takes too long."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return None
    if process.returncode != 0:
        return None
    return stdout.decode(errors="replace")
