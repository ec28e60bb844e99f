"""The store's read-side bookkeeping: hourly count sums (lineside.count_hours) and fact
revisions (ops.fact_revisions), through both write paths (fresh COPY, and staging with
ON CONFLICT for resends and late events), and OEE from the sums equal to OEE from the
raw counts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from _pg_helpers import StreamBuilder, migrated_database

from collector.oee import OeeSettings, compute_oee_buckets, day_boundaries, hour_boundaries
from collector.oee_facts import equipment_id, read_oee_inputs
from collector.store import drop_partitions_older_than, write

pytestmark = pytest.mark.integration

T = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # two hours before midnight UTC


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with migrated_database("rollups") as url, psycopg.connect(url, autocommit=True) as conn:
        yield conn


def shift_of_events(s: StreamBuilder, rng: random.Random) -> list:
    """Six hours of a machine: stops, runs of two products, a count every ~50 s."""
    events = [s.started("o1", T, ideal_cycle_time_s=2.0), s.state("running", T)]
    t = T
    product = "bracket-a"
    while t < T + timedelta(hours=6):
        t += timedelta(seconds=rng.randint(20, 80), milliseconds=rng.randint(0, 999))
        roll = rng.random()
        if roll < 0.03:
            events.append(s.state("unplanned_stop", t, reason_code=rng.randint(1, 4)))
            t += timedelta(seconds=rng.randint(30, 600))
            events.append(s.state("running", t))
        elif roll < 0.05:
            product = "bracket-b" if product == "bracket-a" else "bracket-a"
            events.append(s.ended("o1", t))
            cycle_s = 3.5 if product == "bracket-b" else 2.0
            events.append(
                s.started(f"o-{t.minute}", t, product=product, ideal_cycle_time_s=cycle_s)
            )
        else:
            event = s.counted(rng.randint(0, 30), rng.randint(0, 2), t)
            event.payload["product_id"] = product
            events.append(event)
    return events


def count_hours(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT equipment_id, hour_end, product_id, good, scrap, counts, last_time"
        " FROM lineside.count_hours ORDER BY 1, 2, 3"
    ).fetchall()


def from_raw_counts(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT equipment_id,"
        " date_trunc('hour', event_time - interval '1 microsecond') + interval '1 hour',"
        " product_id, sum(good), sum(scrap), count(*), max(event_time)"
        " FROM lineside.production_counts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()


def test_hourly_sums_match_the_counts_through_resends_and_late_batches(
    conn: psycopg.Connection,
) -> None:
    rng = random.Random(5)
    s = StreamBuilder("press-1")
    events = shift_of_events(s, rng)
    chunks = [events[i : i + 40] for i in range(0, len(events), 40)]
    late = chunks.pop(3)  # arrives at the end: the staging path
    batches = [s.batch(chunk) for chunk in chunks]
    for i in range(0, len(batches), 3):
        write(conn, batches[i : i + 3], [])
    write(conn, [batches[1], batches[4], s.batch(late)], [])  # two resends and a late batch
    write(conn, [batches[2]], [])  # a resend on its own
    stored = count_hours(conn)
    assert stored == from_raw_counts(conn)
    assert sum(row[5] for row in stored) == sum(e.type == "production.counted" for e in events)


def test_oee_from_hourly_sums_equals_oee_from_every_count(conn: psycopg.Connection) -> None:
    rng = random.Random(11)
    s = StreamBuilder("press-2")
    events = shift_of_events(s, rng)
    write(conn, [s.batch(events[i : i + 100]) for i in range(0, len(events), 100)], [])
    eq = equipment_id(conn, s.equipment)
    assert eq is not None
    settings = OeeSettings(startup_period_s=120)
    windows = [
        (T, T + timedelta(hours=6)),
        (T + timedelta(minutes=17, seconds=3), T + timedelta(hours=5, seconds=11)),
        (T - timedelta(hours=1), T + timedelta(hours=8)),
    ]
    checked = 0
    for start, end in windows:
        for bounds in (
            [start, end],
            hour_boundaries(start, end, "Europe/Berlin"),
            day_boundaries(start, end, "Asia/Kolkata"),  # half-hour offset: cuts inside hours
        ):
            raw = read_oee_inputs(conn, eq, start, end)
            summed = read_oee_inputs(conn, eq, start, end, boundaries=bounds, settings=settings)
            assert len(summed.counts) < len(raw.counts)
            expected = compute_oee_buckets(raw, bounds, settings)
            got = compute_oee_buckets(summed, bounds, settings)
            assert [b.result.components for b in got] == [b.result.components for b in expected]
            checked += 1
    assert checked == 9


def test_every_write_raises_the_revision_of_the_days_its_facts_may_change(
    conn: psycopg.Connection,
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    s = StreamBuilder("press-3")
    eq = None

    def revisions() -> dict[int, int]:
        """Revision by day, days counted back from today (0 = today)."""
        rows = conn.execute(
            "SELECT day, revision FROM ops.fact_revisions WHERE equipment_id = %s", (eq,)
        ).fetchall()
        return {(today.date() - d).days: rev for d, rev in rows}

    # counts only: their days, and the day an hour before the earliest (00:30 -> the day
    # before)
    write(conn, [s.batch([s.counted(5, 0, today - 3 * day + timedelta(minutes=30))])], [])
    eq = equipment_id(conn, s.equipment)
    assert revisions() == {3: 1, 4: 1}
    # a state change decides the state until the next change: every day up to today
    write(conn, [s.batch([s.state("running", today - 2 * day + timedelta(hours=12))])], [])
    assert revisions() == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    # a late stop four days back raises its day, the days after it, and not the others
    write(conn, [s.batch([s.state("unplanned_stop", today - 4 * day + timedelta(hours=5))])], [])
    assert revisions() == {0: 2, 1: 2, 2: 2, 3: 2, 4: 2}
    write(conn, [s.batch([s.counted(1, 0, today - 3 * day + timedelta(hours=5))])], [])
    assert revisions() == {0: 2, 1: 2, 2: 2, 3: 3, 4: 2}


def test_dropping_old_count_partitions_drops_their_hourly_sums(conn: psycopg.Connection) -> None:
    s = StreamBuilder("press-4")
    old, recent = datetime(2026, 1, 10, 12, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC)
    write(conn, [s.batch([s.counted(3, 0, old), s.counted(4, 0, recent)])], [])
    assert [row[3] for row in count_hours(conn)] == [3, 4]
    drop_partitions_older_than(conn, 30, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert [row[3] for row in count_hours(conn)] == [4]
    assert count_hours(conn) == from_raw_counts(conn)
