"""Disk checks: the data directory is writable, the buffer has room to grow.

The arithmetic (:func:`space_verdict`) is pure; :func:`check_disk` looks at the disk.
The buffer file grows to about 1.25 times ``buffer.max_bytes`` (see BufferConfig), plus
its WAL; free space below that is a warning (the bound cannot be reached), below
``FLOOR_BYTES`` a failure (the buffer will stop accepting events soon).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edge_agent.config.models import AgentConfig
from edge_agent.doctor.results import Check, fail, ok, warn

MIB = 1024 * 1024
FLOOR_BYTES = 64 * MIB
FILE_OVERHEAD = 1.25
"""The buffer file is about 25 % larger than the events' encoded size (BufferConfig)."""
BUFFER_SUFFIXES = ("", "-wal", "-shm")


def human_bytes(count: float) -> str:
    """``1.5 GiB``, ``640 MiB``, ``12 KiB``, ``800 B``."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def space_verdict(
    free_bytes: int, max_bytes: int, buffer_bytes: int, floor_bytes: int = FLOOR_BYTES
) -> Check:
    """Free space against what the buffer may still grow by (``name`` ``disk space``)."""
    name = "disk space"
    growth = max(0, int(max_bytes * FILE_OVERHEAD) - buffer_bytes)
    facts = (
        f"{human_bytes(free_bytes)} free; the buffer may grow by {human_bytes(growth)} "
        f"(buffer.max_bytes {human_bytes(max_bytes)})"
    )
    if free_bytes < floor_bytes:
        return fail(
            name,
            f"{facts}: below the {human_bytes(floor_bytes)} minimum",
            "free disk space now (journalctl --vacuum-size, old files), or move the buffer "
            "(buffer.path) to a larger disk",
        )
    if free_bytes < growth:
        return warn(
            name,
            f"{facts}: the disk fills before the buffer reaches its bound",
            "lower buffer.max_bytes below the free space, or free disk space",
        )
    return ok(name, facts)


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing ancestor (the root at worst)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def buffer_size(path: Path) -> int:
    """Bytes of the buffer file with its WAL and shared-memory files (0 when absent)."""
    total = 0
    for suffix in BUFFER_SUFFIXES:
        try:
            total += Path(f"{path}{suffix}").stat().st_size
        except OSError:
            continue
    return total


def check_data_dir(data_dir: Path) -> Check:
    """``data_dir`` exists and a file can be created in it (or it can be created)."""
    name = "disk data_dir"
    who = _user()
    if data_dir.exists():
        if not data_dir.is_dir():
            return fail(name, f"{data_dir} is not a directory", "set agent.data_dir to a directory")
        try:
            with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-"):
                pass
        except OSError as exc:
            return fail(
                name,
                f"{data_dir}: {who} cannot create files there ({exc.strerror})",
                f"run as the service user (sudo -u lineside edge-agent doctor ...) or "
                f"sudo chown -R lineside: {data_dir}; a read-only mount needs remounting",
            )
        return ok(name, f"{data_dir} writable by {who}")
    parent = nearest_existing(data_dir)
    if os.access(parent, os.W_OK | os.X_OK):
        return ok(name, f"{data_dir} does not exist yet; {who} can create it in {parent}")
    return fail(
        name,
        f"{data_dir} does not exist and {who} cannot create it in {parent}",
        f"sudo install -d -o lineside -g lineside {data_dir} (the unit's StateDirectory "
        "does this for the service)",
    )


def check_disk(config: AgentConfig) -> list[Check]:
    """data_dir writable; free space vs the buffer's bound; the buffer's current size."""
    data_dir = config.agent.data_dir
    buffer_path = config.buffer.resolved_path(data_dir / "buffer.db")
    checks = [check_data_dir(data_dir)]
    current = buffer_size(buffer_path)
    try:
        free = shutil.disk_usage(nearest_existing(buffer_path.parent)).free
    except OSError as exc:
        checks.append(
            fail("disk space", f"cannot read the free space: {exc.strerror}", "check the disk")
        )
    else:
        checks.append(space_verdict(free, config.buffer.max_bytes, current))
    if buffer_path.exists():
        share = current / (config.buffer.max_bytes * FILE_OVERHEAD)
        checks.append(
            ok(
                "disk buffer",
                f"{buffer_path}: {human_bytes(current)} ({share:.0%} of its bound)",
            )
        )
    else:
        checks.append(ok("disk buffer", f"{buffer_path}: not created yet (first run)"))
    return checks


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"
