"""OEE from stored facts: events written by the store, read back, computed by the engine;
a late state change rewrites a past window's OEE (no stale answers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction

import psycopg
import pytest
from _pg_helpers import T0, StreamBuilder, migrated_database

from collector.oee import compute_oee
from collector.oee_facts import equipment_id, read_oee_inputs
from collector.store import write

pytestmark = pytest.mark.integration

MIN = timedelta(minutes=1)


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with migrated_database("oee_facts") as url, psycopg.connect(url, autocommit=True) as conn:
        yield conn


def test_a_shift_from_stored_facts_and_a_late_stop_that_rewrites_it(
    conn: psycopg.Connection,
) -> None:
    press = StreamBuilder("press-1")
    events = [
        press.started("order-1", T0 - 30 * MIN, ideal_cycle_time_s=2.0),
        press.state("running", T0 - 30 * MIN),  # in force when the window opens
        press.counted(1_000, 20, T0 + 40 * MIN),
        press.state("unplanned_stop", T0 + 60 * MIN, reason_code=17),
        press.state("running", T0 + 70 * MIN),
        press.counted(1_000, 30, T0 + 115 * MIN),
        press.counted(999, 0, T0 + 121 * MIN),  # after the window: not counted
    ]
    write(conn, [press.batch(events)], [])
    equipment = equipment_id(conn, press.equipment)
    assert equipment is not None
    start, end = T0, T0 + 120 * MIN

    result = compute_oee(read_oee_inputs(conn, equipment, start, end), start, end)
    # 24/7: planned busy time 120 min, running 110 min (the 10 min stop is no micro-stop)
    assert result.availability.value == Fraction(110, 120)
    assert result.performance.value == Fraction(2 * 2_050, 110 * 60)
    assert result.quality.value == Fraction(2_000, 2_050)
    assert result.oee.value == (
        result.availability.value * result.performance.value * result.quality.value
    )

    # a line PC replays its backlog: a stop from 20 to 35 min arrives late
    late = [
        press.state("unplanned_stop", T0 + 20 * MIN, reason_code=4, historical=True),
        press.state("running", T0 + 35 * MIN, historical=True),
    ]
    write(conn, [press.batch(late)], [])
    again = compute_oee(read_oee_inputs(conn, equipment, start, end), start, end)
    assert again.availability.value == Fraction(95, 120)
    assert again.performance.value == Fraction(2 * 2_050, 95 * 60)
    assert again.quality.value == result.quality.value


def test_an_unknown_equipment_has_no_id(conn: psycopg.Connection) -> None:
    assert equipment_id(conn, StreamBuilder("ghost").equipment) is None
