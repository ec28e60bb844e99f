"""``oee-collector oee --shift current|previous`` against real PostgreSQL, and the API
answering with its Redis cache unreachable (fail open, counted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from _api_helpers import machine, running_api
from _pg_helpers import free_port, migrated_database
from typer.testing import CliRunner

from collector.cli import app
from collector.masterdata import load_masterdata
from collector.queries import OeeRequest, Scope, oee_report
from collector.queries.scope import equipment_in_scope
from collector.queries.shifts import shift_window
from collector.store import write

pytestmark = pytest.mark.integration

LINE = "s1/assembly/line1"
# two twelve-hour shifts every day: there is always a current and a previous shift
MASTERDATA = """\
calendars:
  round-the-clock:
    timezone: Europe/Berlin
    shifts:
      - {name: day, days: [mon-sun], start: "06:00", end: "18:00"}
      - {name: night, days: [mon-sun], start: "18:00", end: "06:00"}
assign:
  - {site: s1, calendar: round-the-clock}
products:
  bracket-a: {ideal_cycle_time_s: 2.0}
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A database with two machines that ran, stopped and counted over the last 30 h."""
    masterdata = tmp_path / "masterdata.yaml"
    masterdata.write_text(MASTERDATA)
    now = datetime.now(UTC).replace(microsecond=0)
    with migrated_database("oee_shift") as url, psycopg.connect(url, autocommit=True) as conn:
        for name, stop_every in (("m1", 5), ("m2", 3)):
            builder = machine(f"{LINE}/{name}")
            events = []
            t = now - timedelta(hours=30)
            step = 0
            while t < now - timedelta(minutes=1):
                stopped = step % stop_every == 0
                events.append(builder.state("unplanned_stop" if stopped else "running", t))
                if not stopped:
                    events.append(builder.counted(250, step % 2, t + timedelta(minutes=9)))
                t += timedelta(minutes=10)
                step += 1
            write(conn, [builder.batch(events)], [])
        config = tmp_path / "collector.yaml"
        config.write_text(f"masterdata_file: {masterdata}\ndatabase:\n  url: '{url}'\n")
        yield url, config


@pytest.mark.parametrize("which", ["current", "previous"])
def test_oee_for_the_current_and_previous_shift(setup: tuple[str, Path], which: str) -> None:
    url, config = setup
    result = CliRunner().invoke(
        app, ["oee", str(config), "--line", LINE, "--shift", which], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    masterdata = load_masterdata(config.parent / "masterdata.yaml")
    with psycopg.connect(url, autocommit=True) as conn:
        refs = equipment_in_scope(conn, Scope.LINE, LINE)
        now = datetime.now(UTC).replace(microsecond=0)
        start, end, label = shift_window(masterdata, refs, which, now)
        expected = oee_report(conn, masterdata, OeeRequest(Scope.LINE, LINE, start, end), now)
    assert label.split()[0] in ("day", "night")
    assert label in result.output
    line_row = next(
        row for row in result.output.splitlines() if f"line {LINE}" in row and "%" in row
    )
    percentages = re.findall(r"(\d+\.\d)%", line_row)
    # A, P, Q, OEE of the line: the same numbers as the report (the API's) to 0.1 %
    shown = [float(p) for p in percentages[:4]]
    want = [
        round(float(r.value) * 100, 1)
        for r in (
            expected.total.availability,
            expected.total.performance,
            expected.total.quality,
            expected.total.oee,
        )
    ]
    assert shown == pytest.approx(want, abs=0.11)
    assert f"{LINE}/m1" in result.output
    assert f"{LINE}/m2" in result.output


def test_the_api_answers_with_its_redis_cache_unreachable(setup: tuple[str, Path]) -> None:
    url, config = setup
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    now = datetime.now(UTC).replace(microsecond=0)
    params = {
        "scope": "line",
        "id": LINE,
        "start": (now - timedelta(hours=24)).isoformat(),
        "end": now.isoformat(),
        "bucket": "hour",
    }
    with (
        running_api(
            url,
            config.parent / "masterdata.yaml",
            cache={"backend": "redis", "redis_url": dead_redis},
        ) as api,
        api.client(api.token()) as client,
    ):
        answers = [client.get("/api/v1/oee", params=params) for _ in range(3)]
        errors = api.registry.get_sample_value(
            "lineside_api_cache_errors_total", {"operation": "get"}
        )
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["total"] == answers[2].json()["total"]
    assert all(a.headers["x-cache"] == "miss" for a in answers)
    assert errors == 3
