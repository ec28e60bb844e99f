"""``edge-agent buffer`` commands (typer CliRunner) on a real buffer file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import orjson
import pytest
from _buffer_helpers import body_of, events_for, open_buffer
from typer.testing import CliRunner

from edge_agent.buffer.cli import app
from lineside_protocol import EVENT_ADAPTER

pytestmark = pytest.mark.integration

runner = CliRunner()
HOUR_MS = 3600 * 1000


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A closed buffer: press-1 0..5, weld-1 0..2; the first 4 rows captured two hours ago."""
    path = tmp_path / "buffer.db"
    with open_buffer(path) as buffer:
        buffer.submit(events_for({"press-1": 6, "weld-1": 3}), {"press-1": {"s": 1}})
        assert buffer.flush()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE events SET captured_ms = captured_ms - ? WHERE rowid <= 4", (2 * HOUR_MS,)
        )
    conn.close()
    return path


def rows_of(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT equipment, seq FROM events ORDER BY rowid").fetchall()
    conn.close()
    return rows


def test_stats_shows_totals_and_every_equipment(db: Path) -> None:
    result = runner.invoke(app, ["stats", str(db)])
    assert result.exit_code == 0, result.output
    assert "9 events" in result.output
    assert "press-1" in result.output
    assert "weld-1" in result.output


def test_stats_json_has_the_numbers(db: Path) -> None:
    result = runner.invoke(app, ["stats", str(db), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["events"] == 9
    assert stats["bytes"] == sum(len(body_of("press-1", s)) for s in range(6)) + sum(
        len(body_of("weld-1", s)) for s in range(3)
    )
    assert stats["equipment"]["press-1"] | {"dropped": {}} == {
        "events": 6,
        "bytes": sum(len(body_of("press-1", s)) for s in range(6)),
        "first_seq": 0,
        "last_seq": 5,
        "next_seq": 6,
        "dropped": {},
    }


def test_stats_of_a_missing_or_foreign_file_fails_clearly(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["stats", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    foreign = runner.invoke(app, ["stats", str(other)])
    assert foreign.exit_code == 1
    assert "not a Lineside buffer" in foreign.output


def test_peek_prints_the_oldest_events_of_one_equipment_as_json_lines(db: Path) -> None:
    result = runner.invoke(app, ["peek", str(db), "--equipment", "weld-1", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"]["seq"] for line in lines] == [0, 1]
    assert {line["event"]["equipment"]["equipment"] for line in lines} == {"weld-1"}
    assert lines[0]["rowid"] == 2
    assert orjson.dumps(lines[0]["event"]) == body_of("weld-1", 0)
    newest = runner.invoke(app, ["peek", str(db), "--newest", "-n", "1"])
    assert json.loads(newest.stdout)["event"]["seq"] == 5


def test_replay_without_a_target_explains_why_nothing_is_needed(db: Path) -> None:
    result = runner.invoke(app, ["replay", str(db)])
    assert result.exit_code == 0
    assert "sent again after each agent start" in result.output
    assert len(rows_of(db)) == 9


def test_replay_to_a_file_exports_historical_events(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["replay", str(db), "--to", str(target), "-e", "press-1"])
    assert result.exit_code == 0, result.output
    lines = target.read_bytes().splitlines()
    events = [EVENT_ADAPTER.validate_json(line) for line in lines]
    assert [e.seq for e in events] == list(range(6))
    assert all(e.historical for e in events)
    assert orjson.loads(lines[0]) == orjson.loads(body_of("press-1", 0)) | {"historical": True}
    assert "wrote 6 events" in result.output


def test_purge_refuses_without_yes_and_deletes_nothing(db: Path) -> None:
    result = runner.invoke(app, ["purge", str(db)])
    assert result.exit_code == 1
    assert "would delete 9 events" in result.output
    assert len(rows_of(db)) == 9


def test_purge_by_equipment_and_age_deletes_only_those(db: Path) -> None:
    # rows 1-4 are old: press-1 0, weld-1 0, press-1 1, weld-1 1
    result = runner.invoke(app, ["purge", str(db), "--yes", "-e", "weld-1", "--older-than", "1h"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 events" in result.output
    assert ("weld-1", 0) not in rows_of(db)
    assert ("weld-1", 1) not in rows_of(db)
    result = runner.invoke(app, ["purge", str(db), "--yes", "--older-than", "90m"])
    assert "deleted 2 events" in result.output
    assert rows_of(db) == [
        ("press-1", 2),
        ("weld-1", 2),
        ("press-1", 3),
        ("press-1", 4),
        ("press-1", 5),
    ]
    with open_buffer(db) as buffer:  # totals are recounted, numbers are kept
        assert buffer.status().depth_events == 5
        assert buffer.next_sequences() == {"press-1": 6, "weld-1": 3}


def test_purge_everything(db: Path) -> None:
    result = runner.invoke(app, ["purge", str(db), "--yes"])
    assert result.exit_code == 0, result.output
    assert rows_of(db) == []


def test_purge_refuses_while_the_agent_holds_the_buffer(db: Path) -> None:
    with open_buffer(db):
        result = runner.invoke(app, ["purge", str(db), "--yes"])
    assert result.exit_code == 1
    assert "in use by edge-agent" in result.output
    assert len(rows_of(db)) == 9


def test_purge_rejects_a_bad_duration(db: Path) -> None:
    result = runner.invoke(app, ["purge", str(db), "--yes", "--older-than", "soon"])
    assert result.exit_code != 0
    assert "not a duration" in result.output
    assert len(rows_of(db)) == 9
