"""The demo's plain status line (``--no-live``): what logs and CI show of the machines."""

from __future__ import annotations

from lineside_demo.live import MachineRow, status_line


def test_status_line_shows_counts_and_oee_as_a_percentage() -> None:
    rows = [
        MachineRow("press-1", "running", "0m20s ago", 153, 4, 0.8500000000000001),
        MachineRow("pack-1", "idle", "-", None, None, None),
    ]
    assert status_line(rows) == (
        "press-1:running good=153 scrap=4 oee=85.0%  pack-1:idle good=- scrap=- oee=-"
    )


def test_no_machines_give_an_empty_line() -> None:
    assert status_line([]) == ""
