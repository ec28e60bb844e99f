"""Materialized OEE hours (lineside.oee_hours): OEE read through them equals OEE computed
from the facts alone, for any window and bucketing; a late event or a master data edit
makes a day's hours unused until they are computed again."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import _oee_dataset as dataset
import psycopg
import pytest
from _pg_helpers import migrated_database

from collector.masterdata import MasterData, parse_masterdata
from collector.queries import Bucket, OeeRequest, Scope, oee_report
from collector.queries.materialize import materialize_stale_days
from collector.queries.oee_hours import valid_days
from collector.records import Equipment, EventRow
from collector.store import write
from lineside_protocol.ids import UUIDv7Generator

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - timedelta(days=4)
LINE = f"{dataset.SITE}/{dataset.AREA}/line-1"


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[psycopg.Connection, MasterData]]:
    with migrated_database("oee_hours") as url, psycopg.connect(url, autocommit=True) as conn:
        dataset.load(conn, 2, START, TODAY + timedelta(hours=1), count_every_s=120)
        yield conn, parse_masterdata(dataset.MASTERDATA_YAML, "masterdata.yaml")


def from_facts_only(md: MasterData) -> MasterData:
    """The same master data under another fingerprint: no stored hour is valid for it."""
    return replace(md, fingerprint="facts-only")


def assert_same(conn: psycopg.Connection, md: MasterData, request: OeeRequest) -> None:
    as_of = TODAY + timedelta(hours=1)
    stored = oee_report(conn, md, request, as_of)
    computed = oee_report(conn, from_facts_only(md), request, as_of)
    assert [b.result.components for b in stored.buckets] == [
        b.result.components for b in computed.buckets
    ]
    assert stored.total.to_dict() == computed.total.to_dict()


def test_stored_hours_give_the_same_oee_as_the_facts(loaded) -> None:
    conn, md = loaded
    stored = materialize_stale_days(conn, md, days_back=10, limit=100, now=TODAY)
    assert stored == 2 * 4  # two machines, the four past days (today is never stored)
    assert materialize_stale_days(conn, md, days_back=10, limit=100, now=TODAY) == 0
    rng = random.Random(3)
    for _ in range(12):
        length = timedelta(minutes=rng.randint(30, 4 * 24 * 60))
        start = START + timedelta(seconds=rng.randint(0, int((TODAY - START).total_seconds())))
        start = min(start, TODAY - length) if length < TODAY - START else START
        for scope, ident in ((Scope.LINE, LINE), (Scope.EQUIPMENT, f"{LINE}/m-02")):
            for bucket in Bucket:
                assert_same(conn, md, OeeRequest(scope, ident, start, start + length, bucket))
            # half-hour offset: bucket boundaries inside stored hours
            for bucket in (Bucket.HOUR, Bucket.DAY):
                request = OeeRequest(scope, ident, start, start + length, bucket, "Asia/Kolkata")
                assert_same(conn, md, request)
    # whole days, so that stored hours are actually used, and a window into today
    assert_same(conn, md, OeeRequest(Scope.LINE, LINE, START, TODAY, Bucket.NONE))
    assert_same(conn, md, OeeRequest(Scope.LINE, LINE, START, TODAY, Bucket.DAY, "Asia/Kolkata"))
    assert_same(
        conn, md, OeeRequest(Scope.LINE, LINE, START, TODAY + timedelta(hours=1), Bucket.SHIFT)
    )


def test_a_late_event_or_new_master_data_sets_stored_hours_aside(loaded) -> None:
    conn, md = loaded
    materialize_stale_days(conn, md, days_back=10, limit=100, now=TODAY)
    path = Equipment("acme", dataset.SITE, dataset.AREA, "line-1", "m-01")
    eq = conn.execute("SELECT id FROM lineside.equipment WHERE equipment = 'm-01'").fetchone()[0]
    days = sorted(valid_days(conn, [eq], md.fingerprint, START.date(), TODAY.date())[eq])
    assert len(days) == 4
    # a late stop in the second day: that day and every later one are recomputed
    late = START + timedelta(days=1, hours=10, minutes=7)
    stop = EventRow(
        str(UUIDv7Generator().new()),
        "equipment.state_changed",
        10**6,
        late,
        late,
        None,
        None,
        False,
        {"state": "unplanned_stop", "previous_state": None, "raw_value": 3, "reason_code": 9},
    )
    batch = next(dataset.batches(dataset.MachineStream(path, "agent-1", [stop]), 10))
    write(conn, [batch], [])
    assert valid_days(conn, [eq], md.fingerprint, START.date(), TODAY.date()) == {eq: {days[0]}}
    assert_same(conn, md, OeeRequest(Scope.LINE, LINE, START, TODAY, Bucket.SHIFT))
    assert materialize_stale_days(conn, md, days_back=10, limit=100, now=TODAY) == 3
    assert_same(conn, md, OeeRequest(Scope.LINE, LINE, START, TODAY, Bucket.SHIFT))
    # other master data: nothing stored is valid for it until computed again
    edited = parse_masterdata(
        dataset.MASTERDATA_YAML.replace("ideal_cycle_time_s: 2.5", "ideal_cycle_time_s: 2.0"),
        "masterdata.yaml",
    )
    assert valid_days(conn, [eq], edited.fingerprint, START.date(), TODAY.date()) == {}
    assert materialize_stale_days(conn, edited, days_back=10, limit=100, now=TODAY) == 8
    assert_same(conn, edited, OeeRequest(Scope.LINE, LINE, START, TODAY, Bucket.DAY))
