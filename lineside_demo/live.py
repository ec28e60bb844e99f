"""The live machine table: state, since, counts and OEE so far, read from the demo's API.

Everything shown comes through the HTTP API with the demo's viewer token, so the table
also proves the whole path PLC -> agent -> MQTT -> collector -> API works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.table import Table


@dataclass(frozen=True)
class MachineRow:
    """One machine as the API sees it now."""

    id: str
    state: str
    since: str
    good: int | None
    scrap: int | None
    oee: float | None


class ApiReader:
    """Reads current states and the shift's OEE from the API."""

    def __init__(self, base_url: str, token: str, line: str) -> None:
        self.base_url = base_url
        self.line = line
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
        )

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: str) -> dict[str, Any] | None:
        try:
            answer = self._client.get(path, params=params)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def oee(self, start: datetime, end: datetime) -> dict[str, Any] | None:
        """The line's OEE answer for [start, end) (end is clipped to now by the API)."""
        return self._get(
            "/api/v1/oee",
            scope="line",
            id=self.line,
            start=start.isoformat(),
            end=end.isoformat(),
        )

    def rows(self, start: datetime, end: datetime) -> list[MachineRow]:
        """Every machine of the line: current state and the window's counts and OEE."""
        states = self._get("/api/v1/states/current") or {"equipment": []}
        answer = self.oee(start, end) or {"by_equipment": []}
        figures = {e["id"]: e for e in answer.get("by_equipment", [])}
        rows = []
        ids = [s["id"] for s in states["equipment"] if s["id"].startswith(self.line + "/")]
        ids += [i for i in figures if i not in ids]
        current = {s["id"]: s for s in states["equipment"]}
        for ident in sorted(ids):
            state = current.get(ident, {})
            figure = figures.get(ident)
            counts = figure["counts"] if figure else {}
            rows.append(
                MachineRow(
                    ident.rsplit("/", 1)[-1],
                    state.get("state") or "-",
                    _ago(state.get("since")),
                    counts.get("good"),
                    counts.get("scrap"),
                    figure["oee"] if figure else None,
                )
            )
        return rows


def _ago(iso: str | None) -> str:
    if not iso:
        return "-"
    since = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(UTC) - since).total_seconds()))
    return f"{seconds // 60}m{seconds % 60:02d}s ago"


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def status_line(rows: list[MachineRow]) -> str:
    """One plain line for ``--no-live`` (logs, CI): ``id:state good=N scrap=N oee=P%``."""
    return "  ".join(
        f"{row.id}:{row.state} good={_number(row.good)} scrap={_number(row.scrap)} "
        f"oee={_percent(row.oee).replace(' ', '')}"
        for row in rows
    )


def machine_table(
    rows: list[MachineRow], shift_start: datetime, shift_end: datetime, speed: float
) -> Table:
    """The rich table the live view shows (wall times; simulated time in the title)."""
    now = datetime.now(UTC)
    played = min(max(now, shift_start), shift_end) - shift_start
    simulated = timedelta(seconds=played.total_seconds() * speed)
    total = timedelta(seconds=(shift_end - shift_start).total_seconds() * speed)
    status = "shift over" if now >= shift_end else "shift running"
    table = Table(
        title=f"{status}: {_hours(simulated)} of {_hours(total)} simulated "
        f"({speed:g}x; shift ends {shift_end:%H:%M:%S} UTC)",
        title_justify="left",
    )
    for column in ("machine", "state", "since", "good", "scrap", "OEE so far"):
        table.add_column(column, justify="right" if column in ("good", "scrap") else "left")
    for row in rows:
        table.add_row(
            row.id, row.state, row.since, _number(row.good), _number(row.scrap), _percent(row.oee)
        )
    if not rows:
        table.caption = "waiting for the first events..."
    return table


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"
