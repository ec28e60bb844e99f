"""``lineside-demo`` as a user runs it: the whole pipeline, then Ctrl-C leaves nothing behind.

Runs against the shared PostgreSQL (127.0.0.1:5432) and Mosquitto (127.0.0.1:1883).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lineside_demo.services import postgres_answers, tcp_answers

DEMO = str(Path(sys.executable).parent / "lineside-demo")
DSN = os.environ.get("LINESIDE_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

pytestmark = pytest.mark.skipif(
    not (tcp_answers("127.0.0.1", 1883) and postgres_answers(DSN)),
    reason="needs the shared Mosquitto on 127.0.0.1:1883 and PostgreSQL",
)


class Output:
    """The demo's stdout, read line by line on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def field(self, label: str) -> str | None:
        for line in list(self.lines):
            if line.strip().startswith(label):
                return line.strip()[len(label) :].strip()
        return None


def wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"lineside-demo exited {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "State:\tZ" not in status:
            found.append((int(entry.name), cmdline))
    return found


@pytest.mark.slow(30)
def test_demo_runs_the_pipeline_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    started = datetime.now(UTC)
    proc = subprocess.Popen(
        [DEMO, "--no-live", "--duration", "90", "--speed", "120", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "LINESIDE_DATABASE_URL": DSN},
    )
    output = Output(proc)
    try:
        wait_until(lambda: output.field("pids") is not None, 60, "the banner", proc)
        api = output.field("API docs")
        token = output.field("viewer token")
        assert api is not None
        assert token is not None
        api = api.removesuffix("/docs")
        pids = {name: int(pid) for name, pid in re.findall(r"(\S+)=(\d+)", output.field("pids"))}
        assert set(pids) == {"plc-sim", "oee-collector", "edge-agent"}
        for label in ("metrics", "health", "PLCs", "MQTT", "PostgreSQL"):
            assert output.field(label), f"no {label} line in {output.lines}"

        headers = {"Authorization": f"Bearer {token}"}
        params = {
            "scope": "line",
            "id": "plant1/body/line2",
            # from this run's start: the lineside_demo database keeps earlier demos' data
            "start": started.isoformat(),
            "end": (started + timedelta(hours=1)).isoformat(),
        }
        answer: dict = {}

        def counted_on_both_protocols() -> bool:
            nonlocal answer
            reply = httpx.get(f"{api}/api/v1/oee", params=params, headers=headers, timeout=5)
            if reply.status_code != 200:
                return False
            answer = {e["id"].rsplit("/", 1)[-1]: e for e in reply.json()["by_equipment"]}
            # press-1 is read over OPC UA, pack-1 over Modbus; pack-1 starts a few
            # simulated minutes into the shift, so its OEE is 0 at first
            return all(
                name in answer
                and answer[name]["counts"]["good"] > 0
                and (answer[name]["oee"] or 0) > 0
                for name in ("press-1", "pack-1")
            )

        wait_until(counted_on_both_protocols, 60, "OEE with counts over OPC UA and Modbus", proc)
        for name in ("press-1", "pack-1"):
            assert answer[name]["oee"] <= 1.5, answer[name]  # plausible: time is compressed
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    text = "\n".join(output.lines)
    assert code == 0, text
    assert "stopped: edge-agent (exit 0), oee-collector (exit 0), plc-sim (exit 0)" in text
    for name, pid in pids.items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone, not just stopped
        assert name
    assert processes_mentioning(str(tmp_path)) == []
