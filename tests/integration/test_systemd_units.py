"""The unit files in systemd/ pass `systemd-analyze verify` (skipped where it is absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).parent.parent.parent / "systemd").glob("*.service"))
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def verify(unit_text: str, name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # The units point at /opt/lineside/venv; verify checks that ExecStart exists.
    (tmp_path / name).write_text(unit_text.replace("/opt/lineside/venv/bin", str(VENV_BIN)))
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    name = unit.name.replace("@.", "@demo-line.")
    result = verify(unit.read_text(), name, tmp_path)
    assert result.returncode == 0, result.stderr
    assert name not in result.stderr, result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_verify_catches_a_broken_unit(unit: Path, tmp_path: Path) -> None:
    broken, replaced = re.subn(r"^Type=\S+$", "Type=sometimes", unit.read_text(), flags=re.M)
    assert replaced == 1
    result = verify(broken, "broken.service", tmp_path)
    assert "sometimes" in result.stderr  # the first test fails on any such warning
