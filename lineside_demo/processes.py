"""The demo's child processes: started in their own process groups, watched, all stopped.

Each child gets its own process group (so a terminal's Ctrl-C reaches only the demo,
which then stops the children in reverse start order: agent, collector, simulator,
broker) and asks the kernel to SIGTERM it should the demo itself die
(PR_SET_PDEATHSIG), so nothing is left running even after a ``kill -9`` of the demo.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1


class DemoError(Exception):
    """The demo cannot go on; the message names what failed and where its log is."""


def tool(name: str) -> str:
    """A console script of this installation (next to the running Python)."""
    return str(Path(sys.executable).parent / name)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One child process with its output in ``log``."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, stop_signal: int) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        return self

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return self.proc.poll() if self.proc is not None else None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``check`` until true; DemoError if the child dies or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise DemoError(
                    f"{self.name} exited with code {code} while starting; its log "
                    f"({self.log}) ends:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.1)
        raise DemoError(f"{self.name}: {what} not ready within {timeout_s:.0f} s (log: {self.log})")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Ask it to stop, wait, then SIGKILL its whole process group (leftovers too)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # grandchildren, or a hung child
        return self.proc.wait(timeout=10)


class Children:
    """The running children, in start order; stopped in reverse order."""

    def __init__(self) -> None:
        self.started: list[Child] = []

    def start(self, child: Child) -> Child:
        self.started.append(child.start())
        return child

    def first_dead(self) -> Child | None:
        """A child that has ended on its own, if any."""
        return next((c for c in self.started if c.exited() is not None), None)

    def stop_all(self) -> dict[str, int | None]:
        """Stop every child (last started first); their exit codes by name."""
        codes: dict[str, int | None] = {}
        for child in reversed(self.started):
            codes[child.name] = child.stop()
        return codes


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def http_json(url: str) -> dict | None:
    """The JSON ``url`` answers with 200, else None."""
    try:
        answer = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def collector_child(config: Path, dsn: str, log: Path, *options: str) -> Child:
    """``oee-collector run CONFIG --dsn DSN [OPTIONS]``, stopped with SIGTERM."""
    argv = [tool("oee-collector"), "run", str(config), "--dsn", dsn, *options]
    return Child("oee-collector", argv, log, signal.SIGTERM)


def collector_ready(health: str, api: str) -> bool:
    """The collector at ``health`` (its health endpoint's base URL) has its MQTT
    subscription and its API at ``api`` answers."""
    status = http_json(f"{health}/status") or {}
    return bool(status.get("mqtt", {}).get("connected")) and http_ok(f"{api}/healthz")
