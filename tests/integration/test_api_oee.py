"""The OEE API over real HTTP against real PostgreSQL: a scripted shift of two machines,
figures computed by hand from docs/oee.md, buckets, the revision-checked cache, master
data reloads, DST shift lengths, parameter validation and the equipment read models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from statistics import mean
from typing import Any

import psycopg
import pytest
from _api_helpers import (
    ApiServer,
    local,
    machine,
    poll,
    running_api,
    store,
    store_shift,
)
from _pg_helpers import StreamBuilder, migrated_database

from collector.api.auth import Role

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 17)  # a Tuesday (CET, UTC+1), in the past
MIN = 60  # seconds
LINE = "s1/assembly/line1"
M1 = f"{LINE}/m1"
M2 = f"{LINE}/m2"

MASTERDATA = """\
calendars:
  early-only:
    timezone: Europe/Berlin
    shifts:
      - name: early
        days: mon-fri
        start: "06:00"
        end: "14:00"
        breaks: [{start: "10:00", end: "10:30"}]
  nights:
    timezone: Europe/Berlin
    shifts:
      - {name: night, days: mon-sun, start: "22:00", end: "06:00"}
assign:
  - {site: s1, line: line1, calendar: early-only}
  - {site: s1, line: line2, calendar: nights}
products:
  bracket-a:
    ideal_cycle_time_s: 2.0
    overrides:
      - {equipment: s1/assembly/line1/m2, ideal_cycle_time_s: 3.0}
"""

# The shift, local time (Europe/Berlin). m1 idles through the break; a 1 min stop at
# 12:00 is a micro-stop (< 120 s). The count at 06:00 belongs to (.., 06:00]: not the shift.
M1_STATES = [
    ("05:45", "idle"),
    ("06:00", "running"),
    ("08:00", "unplanned_stop", 17),
    ("08:45", "running"),
    ("10:00", "idle"),
    ("10:30", "running"),
    ("12:00", "unplanned_stop", 9),
    ("12:01", "running"),
    ("13:00", "changeover"),
    ("13:20", "running"),
    ("14:00", "idle"),
]
M1_COUNTS = [("06:00", 500, 0), ("08:00", 4000, 100), ("12:00", 3000, 100), ("14:00", 2000, 100)]
M1_SAMPLES = [
    ("07:00", "pressure", 4.0),
    ("07:01", "pressure", 4.5),
    ("07:02", "pressure", 5.0),
    ("07:02", "temperature", 61.0),
    ("09:00", "pressure", 3.5),
]
# m2 already runs at 05:50 (outside the plan), has a planned stop (a meeting) at 13:30 and
# a planned stop through the break; its ideal cycle time is the 3.0 s override.
M2_STATES = [
    ("05:50", "running"),
    ("07:00", "unplanned_stop", 4),
    ("09:00", "running"),
    ("10:00", "planned_stop"),
    ("10:30", "running"),
    ("11:00", "starved"),
    ("11:30", "running"),
    ("13:30", "planned_stop"),
    ("14:00", "idle"),
]
M2_COUNTS = [("10:00", 2000, 200), ("14:00", 2000, 200)]

# ---- the shift 06:00-14:00 by hand (docs/oee.md) ------------------------------------------
# m1: planned 480 min - 30 min break (idle in it) - 0 planned stop states = PBT 450 min.
#   downtime: unplanned stop 08:00-08:45 (45) + changeover 13:00-13:20 (20) = 65 min
#   running: 06:00-08:00 (120) + 08:45-10:00 (75) + 10:30-12:00 (90) + 12:01-13:00 (59)
#            + 13:20-14:00 (40) = 384 min; micro-stop 12:00-12:01: 1 min
#   APT = 384 + 1 = 385 min = PBT - downtime (450 - 65)
#   parts (06:00, 14:00]: good 4000 + 3000 + 2000 = 9000, scrap 300, ideal 2.0 s each
M1_PLANNED = 480 * MIN
M1_PBT = (480 - 30 - 0) * MIN
M1_DOWN = (45 + 20) * MIN
M1_RUNNING = (120 + 75 + 90 + 59 + 40) * MIN
M1_APT = M1_RUNNING + 1 * MIN
M1_GOOD, M1_SCRAP = 9000, 300
M1_IDEAL = (M1_GOOD + M1_SCRAP) * 2  # s
# m2: planned 480 - 30 min break (planned stop in it) - 30 min planned stop 13:30-14:00
#   = PBT 420 min; the 10 min running 05:50-06:00 are before the window.
#   downtime: unplanned stop 07:00-09:00 (120) + starved 11:00-11:30 (30) = 150 min
#   running: 06:00-07:00 (60) + 09:00-10:00 (60) + 10:30-11:00 (30) + 11:30-13:30 (120)
#            = 270 min = APT = PBT - downtime (420 - 150)
#   parts: good 4000, scrap 400, ideal 3.0 s each (override)
M2_PBT = (480 - 30 - 30) * MIN
M2_DOWN = (120 + 30) * MIN
M2_APT = (60 + 60 + 30 + 120) * MIN
M2_GOOD, M2_SCRAP = 4000, 400
M2_IDEAL = (M2_GOOD + M2_SCRAP) * 3


def figures(pbt: int, apt: int, ideal: int, good: int, scrap: int) -> dict[str, Fraction]:
    """A = APT / PBT, P = ideal time / APT, Q = good / (good + scrap), OEE = A x P x Q."""
    a, p, q = Fraction(apt, pbt), Fraction(ideal, apt), Fraction(good, good + scrap)
    return {"availability": a, "performance": p, "quality": q, "oee": a * p * q}


M1_FIGURES = figures(M1_PBT, M1_APT, M1_IDEAL, M1_GOOD, M1_SCRAP)
M2_FIGURES = figures(M2_PBT, M2_APT, M2_IDEAL, M2_GOOD, M2_SCRAP)
# the line: sums of the components, every ratio recomputed from the sums
LINE_FIGURES = figures(
    M1_PBT + M2_PBT, M1_APT + M2_APT, M1_IDEAL + M2_IDEAL, M1_GOOD + M2_GOOD, M1_SCRAP + M2_SCRAP
)


def assert_figures(answer: dict[str, Any], expected: dict[str, Fraction]) -> None:
    for name, value in expected.items():
        assert answer[name] == pytest.approx(float(value), rel=1e-12, abs=0), name


def store_line_shift(conn: psycopg.Connection) -> dict[str, StreamBuilder]:
    """Store the shift of m1 and m2; their stream builders (to add events later)."""
    builders = {M1: machine(M1), M2: machine(M2)}
    store_shift(
        conn,
        builders[M1],
        DAY,
        run_start="05:40",
        states=M1_STATES,
        counts=M1_COUNTS,
        samples=M1_SAMPLES,
    )
    store_shift(conn, builders[M2], DAY, run_start="05:40", states=M2_STATES, counts=M2_COUNTS)
    return builders


def window(start: str, end: str, day: date = DAY) -> dict[str, str]:
    return {"start": local(day, start).isoformat(), "end": local(day, end).isoformat()}


def get_oee(client: Any, scope: str, ident: str, **params: str) -> Any:
    answer = client.get("/api/v1/oee", params={"scope": scope, "id": ident, **params})
    assert answer.status_code == 200, answer.text
    return answer


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A database with the line's shift, a night-shift line (DST) and a machine of site s2;
    and the master data file."""
    masterdata = tmp_path_factory.mktemp("api-oee") / "masterdata.yaml"
    masterdata.write_text(MASTERDATA)
    with migrated_database("api_oee") as url, psycopg.connect(url, autocommit=True) as conn:
        store_line_shift(conn)
        night = machine("s1/assembly/line2/n1")
        for first in (date(2026, 3, 28), date(2026, 10, 24)):
            store_shift(conn, night, first, states=[("21:00", "running")])
            store_shift(conn, night, first + timedelta(days=1), states=[("07:00", "idle")])
        store_shift(conn, machine("s2/paint/line9/p1"), DAY, states=[("06:00", "running")])
        yield url, masterdata


@pytest.fixture(scope="module")
def api(shop: tuple[str, Path]) -> Iterator[ApiServer]:
    url, masterdata = shop
    with running_api(url, masterdata) as server:
        yield server


@pytest.fixture
def viewer(api: ApiServer) -> Iterator[Any]:
    with api.client(api.token(Role.VIEWER, ["s1"])) as client:
        yield client


@pytest.fixture
def own_line(tmp_path: Path) -> Iterator[tuple[ApiServer, psycopg.Connection, Path]]:
    """A database and API of this test alone (it writes facts or edits master data)."""
    masterdata = tmp_path / "masterdata.yaml"
    masterdata.write_text(MASTERDATA)
    with (
        migrated_database("api_oee_own") as url,
        psycopg.connect(url, autocommit=True) as conn,
        running_api(url, masterdata) as server,
    ):
        yield server, conn, masterdata


# ---- OEE of the shift ---------------------------------------------------------------------


def test_shift_oee_per_machine_and_line_matches_the_hand_computed_figures(viewer: Any) -> None:
    body = get_oee(viewer, "line", LINE, **window("06:00", "14:00")).json()

    assert body["equipment"] == [M1, M2]
    by_id = {e["id"]: e for e in body["by_equipment"]}
    assert_figures(by_id[M1], M1_FIGURES)
    assert_figures(by_id[M2], M2_FIGURES)
    m1 = by_id[M1]
    assert m1["times_s"]["planned_time"] == M1_PLANNED
    assert m1["times_s"]["planned_downtime_breaks"] == 30 * MIN
    assert m1["times_s"]["planned_busy_time"] == M1_PBT
    assert m1["times_s"]["actual_production_time"] == M1_APT
    assert m1["times_s"]["running"] == M1_RUNNING
    assert m1["times_s"]["micro_stops"] == 1 * MIN
    assert m1["times_s"]["downtime"] == M1_DOWN
    assert m1["times_s"]["setup"] == 20 * MIN
    assert m1["times_s"]["ideal_production"] == M1_IDEAL
    assert m1["downtime_by_state_s"] == {"changeover": 20 * MIN, "unplanned_stop": 45 * MIN}
    assert m1["counts"] == {
        "good": M1_GOOD,
        "scrap": M1_SCRAP,
        "total": M1_GOOD + M1_SCRAP,
        "startup_scrap": 0,
        "without_ideal_cycle_time": 0,
    }
    m2 = by_id[M2]
    assert m2["times_s"]["planned_downtime_states"] == 30 * MIN
    assert m2["times_s"]["planned_busy_time"] == M2_PBT
    assert m2["times_s"]["downtime"] == M2_DOWN
    assert m2["times_s"]["ideal_production"] == M2_IDEAL
    assert m2["times_s"]["unscheduled_running"] == 0  # 05:50-06:00 lies before the window
    assert (m2["counts"]["good"], m2["counts"]["scrap"]) == (M2_GOOD, M2_SCRAP)

    total = body["total"]
    assert_figures(total, LINE_FIGURES)
    assert total["times_s"]["planned_busy_time"] == M1_PBT + M2_PBT
    assert total["times_s"]["actual_production_time"] == M1_APT + M2_APT
    assert total["times_s"]["downtime"] == M1_DOWN + M2_DOWN
    assert total["counts"]["good"] == M1_GOOD + M2_GOOD
    assert total["flags"] == []
    # the two machines differ in PBT, speed and scrap: averaging their percentages would
    # give other numbers, and the API does not do that
    for name in ("availability", "performance", "quality", "oee"):
        averaged = mean(float(f[name]) for f in (M1_FIGURES, M2_FIGURES))
        assert abs(averaged - float(LINE_FIGURES[name])) > 1e-4, name  # >> the tolerance
        assert total[name] != pytest.approx(averaged, abs=1e-6), name


BUCKETS = {"none": 1, "hour": 24, "shift": 3, "day": 1}  # buckets of one local day


def test_buckets_none_hour_shift_day_add_up_to_the_same_total(viewer: Any) -> None:
    day = window("00:00", "24:00")
    answers = {b: get_oee(viewer, "line", LINE, bucket=b, **day).json() for b in BUCKETS}

    reference = answers["none"]["total"]
    for bucket, body in answers.items():
        buckets = body["buckets"]
        assert len(buckets) == BUCKETS[bucket], bucket
        # contiguous, covering the window
        assert datetime.fromisoformat(buckets[0]["start"]) == local(DAY, "00:00")
        assert datetime.fromisoformat(buckets[-1]["end"]) == local(DAY, "24:00")
        for before, after in pairwise(buckets):
            assert before["end"] == after["start"], bucket
        # every time element and count adds up to the total; the total does not depend
        # on the bucketing
        for key, value in body["total"]["times_s"].items():
            assert sum(b["times_s"][key] for b in buckets) == pytest.approx(value), (bucket, key)
        for key, value in body["total"]["counts"].items():
            assert sum(b["counts"][key] for b in buckets) == value, (bucket, key)
        assert body["total"] == reference, bucket

    # the whole local day by hand: the shift's PBT plus m2's 10 min running before the
    # shift (running outside the plan is added to PBT and flagged); m1's count at 06:00 is
    # in the day but not in the shift
    assert reference["times_s"]["all_time"] == 2 * 24 * 3600  # times add up over machines
    assert reference["times_s"]["planned_time"] == 2 * 480 * MIN
    assert reference["times_s"]["unscheduled_running"] == 10 * MIN
    assert reference["times_s"]["planned_busy_time"] == M1_PBT + M2_PBT + 10 * MIN
    assert reference["counts"]["good"] == M1_GOOD + M2_GOOD + 500
    assert "running_outside_plan" in reference["flags"]

    shifts = answers["shift"]["buckets"]
    assert [b["shift"] for b in shifts] == [None, "early", None]
    assert_figures(shifts[1], LINE_FIGURES)  # the shift bucket is the shift computed above
    hours = answers["hour"]["buckets"]
    # 07:00-08:00: m1 runs 60 min, m2 stands 60 min: A = 60 / (60 + 60)
    seven = hours[7]
    assert datetime.fromisoformat(seven["start"]) == local(DAY, "07:00")
    assert seven["times_s"]["planned_busy_time"] == 120 * MIN
    assert seven["availability"] == 0.5
    assert seven["downtime_by_state_s"] == {"unplanned_stop": 60 * MIN}


def test_shift_buckets_across_dst_have_9_and_7_hours_of_planned_time(viewer: Any) -> None:
    for start, end, hours in (
        ("2026-10-24T20:00:00+02:00", "2026-10-25T08:00:00+01:00", 9),  # fall back
        ("2026-03-28T20:00:00+01:00", "2026-03-29T08:00:00+02:00", 7),  # spring forward
    ):
        body = get_oee(
            viewer, "line", "s1/assembly/line2", bucket="shift", start=start, end=end
        ).json()
        assert body["timezone"] == "Europe/Berlin"
        assert [b["shift"] for b in body["buckets"]] == [None, "night", None]
        night = body["buckets"][1]
        assert night["start"].startswith(start[:10] + "T22:00:00")
        assert night["end"].startswith(end[:10] + "T06:00:00")
        assert night["times_s"]["all_time"] == hours * 3600
        assert night["times_s"]["planned_time"] == hours * 3600
        assert night["times_s"]["planned_busy_time"] == hours * 3600
        assert night["availability"] == 1.0  # n1 runs 21:00 to 07:00


# ---- the cache: never stale ---------------------------------------------------------------


def test_a_late_state_change_rewrites_a_cached_past_shift(
    own_line: tuple[ApiServer, psycopg.Connection, Path],
) -> None:
    server, conn, _ = own_line
    m1 = store_line_shift(conn)[M1]
    params = window("06:00", "14:00")
    with server.client(server.token()) as client:
        first = get_oee(client, "equipment", M1, **params)
        assert first.headers["X-Cache"] == "miss"
        assert_figures(first.json()["total"], M1_FIGURES)
        again = get_oee(client, "equipment", M1, **params)
        assert again.headers["X-Cache"] == "hit"
        assert again.content == first.content

        # a line PC replays its backlog: a planned stop 11:00-11:10, inside m1's running
        # 10:30-12:00, arrives late
        late = [
            m1.state("planned_stop", local(DAY, "11:00"), historical=True),
            m1.state("running", local(DAY, "11:10"), historical=True),
        ]
        store(conn, m1, late)

        changed = get_oee(client, "equipment", M1, **params)
        assert changed.headers["X-Cache"] == "miss"
        # PBT = 480 - 30 break - 10 planned stop = 440 min; running 384 - 10 = 374 min,
        # APT = 374 + 1 micro-stop = 375 min; the parts are the same
        expected = figures(440 * MIN, 375 * MIN, M1_IDEAL, M1_GOOD, M1_SCRAP)
        total = changed.json()["total"]
        assert_figures(total, expected)
        assert total["times_s"]["planned_downtime_states"] == 10 * MIN
        assert total["oee"] != pytest.approx(float(M1_FIGURES["oee"]))
        cached = get_oee(client, "equipment", M1, **params)
        assert cached.headers["X-Cache"] == "hit"
        assert cached.content == changed.content


def test_a_late_state_change_the_evening_before_rewrites_a_cached_shift(
    own_line: tuple[ApiServer, psycopg.Connection, Path],
) -> None:
    server, conn, _ = own_line
    m1 = machine(M1)
    evening = DAY - timedelta(days=1)
    store_shift(conn, m1, evening, states=[("13:00", "running")])
    store_shift(conn, m1, DAY, states=[("13:00", "idle")])
    params = window("06:00", "14:00")
    with server.client(server.token()) as client:
        # running 06:00-13:00 (through the break: production), idle 13:00-14:00:
        # PBT = 480 min (no break taken), APT = 420 min
        first = get_oee(client, "equipment", M1, **params).json()
        assert first["total"]["availability"] == 420 / 480

        # the stop that began at 21:00 the evening before arrives late: m1 stood all
        # shift until 13:00, PBT 480 - 30 break = 450 min, APT 0
        store(conn, m1, [m1.state("unplanned_stop", local(evening, "21:00"), historical=True)])
        answer = get_oee(client, "equipment", M1, **params)
        assert answer.json()["total"]["availability"] == 0.0, answer.headers["X-Cache"]


def test_a_master_data_edit_changes_the_answer_within_the_reload_interval(
    own_line: tuple[ApiServer, psycopg.Connection, Path],
) -> None:
    server, conn, masterdata = own_line
    store_line_shift(conn)
    params = window("06:00", "14:00")
    with server.client(server.token()) as client:
        before = get_oee(client, "equipment", M1, **params).json()["total"]
        assert_figures(before, M1_FIGURES)
        assert get_oee(client, "equipment", M1, **params).headers["X-Cache"] == "hit"

        # replaced whole, as an editor or a config tool should: the source never sees a
        # half-written file
        edited = masterdata.with_suffix(".new")
        edited.write_text(MASTERDATA.replace("ideal_cycle_time_s: 2.0", "ideal_cycle_time_s: 2.5"))
        edited.replace(masterdata)

        def new_answer() -> dict[str, Any] | None:
            total = get_oee(client, "equipment", M1, **params).json()["total"]
            return total if total["performance"] != before["performance"] else None

        # the source checks the file at most every 1 s: the new answer within 1 s + slack
        after = poll(new_answer, 3.0, "the master data edit to reach the OEE answer")
        # P = 9300 parts x 2.5 s / 385 min; A and Q as before
        ideal = (M1_GOOD + M1_SCRAP) * Fraction(5, 2)
        assert_figures(after, figures(M1_PBT, M1_APT, ideal, M1_GOOD, M1_SCRAP))
        assert after["times_s"]["ideal_production"] == 9300 * 2.5
        # m2's override is untouched by the product's new default
        m2 = get_oee(client, "equipment", M2, **params).json()["total"]
        assert_figures(m2, M2_FIGURES)


# ---- validation ---------------------------------------------------------------------------

_SHIFT_START = local(DAY, "06:00").isoformat()
_SHIFT_END = local(DAY, "14:00").isoformat()


@pytest.mark.parametrize(
    ("params", "status", "field", "message"),
    [
        pytest.param(
            {"start": "2026-11-17T06:00:00"}, 422, "start", "UTC offset", id="naive-start"
        ),
        pytest.param(
            {"start": _SHIFT_END, "end": _SHIFT_START}, 422, "end", "not after", id="end-first"
        ),
        pytest.param({"scope": "lines"}, 422, "scope", "equipment", id="bad-scope"),
        pytest.param({"id": "s1/assembly"}, 422, "id", "3 non-empty level", id="id-depth"),
        pytest.param({"id": "s1/assembly/line9"}, 404, "id", "no stored equipment", id="unknown"),
        pytest.param(
            {"start": "2099-01-01T00:00:00+00:00", "end": "2099-01-02T00:00:00+00:00"},
            422,
            "start",
            "future",
            id="future",
        ),
        pytest.param({"bucket": "week"}, 422, "bucket", "none", id="bad-bucket"),
        pytest.param({"tz": "Europe/Berln"}, 422, "tz", "IANA", id="bad-tz"),
    ],
)
def test_bad_oee_parameters_get_a_json_detail_naming_the_parameter(
    viewer: Any, params: dict[str, str], status: int, field: str, message: str
) -> None:
    query = {"scope": "line", "id": LINE, "start": _SHIFT_START, "end": _SHIFT_END} | params
    answer = viewer.get("/api/v1/oee", params=query)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert isinstance(detail, list)
    assert len(detail) == 1
    assert detail[0]["loc"] == ["query", field]
    assert message in detail[0]["msg"]


# ---- equipment, states, timeline, history, pareto ------------------------------------------


def test_equipment_tree_lists_the_sites_of_the_token(api: ApiServer, viewer: Any) -> None:
    answer = viewer.get("/api/v1/equipment")
    assert answer.status_code == 200
    assert answer.json() == {
        "sites": [
            {
                "id": "s1",
                "areas": [
                    {
                        "id": "s1/assembly",
                        "lines": [
                            {"id": LINE, "equipment": [node(M1), node(M2)]},
                            {
                                "id": "s1/assembly/line2",
                                "equipment": [node("s1/assembly/line2/n1")],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    with api.client(api.token(Role.VIEWER, ["*"])) as everywhere:
        sites = everywhere.get("/api/v1/equipment").json()["sites"]
    assert [s["id"] for s in sites] == ["s1", "s2"]
    assert sites[1]["areas"][0]["lines"][0]["equipment"] == [node("s2/paint/line9/p1")]


def node(path: str) -> dict[str, str]:
    site, area, line, equipment = path.split("/")
    return {
        "id": path,
        "enterprise": "acme",
        "site": site,
        "area": area,
        "line": line,
        "equipment": equipment,
    }


def test_current_states_say_what_each_machine_does_since_when(viewer: Any) -> None:
    answer = viewer.get("/api/v1/states/current")
    assert answer.status_code == 200
    rows = {row["id"]: row for row in answer.json()["equipment"]}
    assert sorted(rows) == [M1, M2, "s1/assembly/line2/n1"]  # not s2's p1
    m1 = rows[M1]
    assert (m1["state"], m1["reason_code"]) == ("idle", None)
    assert datetime.fromisoformat(m1["since"]) == local(DAY, "14:00")
    assert datetime.fromisoformat(m1["last_seen"]) == local(DAY, "14:00")
    n1 = rows["s1/assembly/line2/n1"]
    assert n1["state"] == "idle"
    assert datetime.fromisoformat(n1["since"]) == local(date(2026, 10, 25), "07:00")


def test_timeline_clips_states_to_the_window(viewer: Any) -> None:
    url = f"/api/v1/equipment/{M1}/timeline"
    answer = viewer.get(url, params=window("07:00", "09:00"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["id"], body["truncated"]) == (M1, False)
    spans = [
        (
            datetime.fromisoformat(s["start"]),
            datetime.fromisoformat(s["end"]),
            s["state"],
            s["reason_code"],
            s["open"],
        )
        for s in body["states"]
    ]
    at = lambda wall: local(DAY, wall)  # noqa: E731
    assert spans == [
        (at("07:00"), at("08:00"), "running", None, False),
        (at("08:00"), at("08:45"), "unplanned_stop", 17, False),
        (at("08:45"), at("09:00"), "running", None, False),
    ]
    # the state in force now is open: it ends at the window's end
    tail = viewer.get(url, params=window("13:30", "15:00")).json()["states"]
    assert [(s["state"], s["open"]) for s in tail] == [("running", False), ("idle", True)]
    assert datetime.fromisoformat(tail[-1]["end"]) == at("15:00")


def test_history_returns_one_tags_samples_in_time_order(viewer: Any) -> None:
    url = f"/api/v1/equipment/{M1}/history"
    answer = viewer.get(url, params={"tag": "pressure", **window("07:00", "09:00")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["tag"], body["truncated"]) == ("pressure", False)
    samples = [(datetime.fromisoformat(s["time"]), s["value"], s["unit"]) for s in body["samples"]]
    # [start, end): the 09:00 sample is out; the temperature is another tag
    assert samples == [
        (local(DAY, "07:00"), 4.0, "bar"),
        (local(DAY, "07:01"), 4.5, "bar"),
        (local(DAY, "07:02"), 5.0, "bar"),
    ]
    assert {s["quality"] for s in body["samples"]} == {"good"}
    cut = viewer.get(url, params={"tag": "pressure", "limit": "2", **window("07:00", "09:00")})
    assert [s["value"] for s in cut.json()["samples"]] == [4.0, 4.5]
    assert cut.json()["truncated"] is True


def test_pareto_ranks_the_lines_stop_time_by_reason(viewer: Any) -> None:
    answer = viewer.get(
        "/api/v1/pareto", params={"scope": "line", "id": LINE, **window("06:00", "14:00")}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # downtime and micro-stops of both machines, largest first
    expected = [
        ("unplanned_stop", 4, 120 * MIN),  # m2 07:00-09:00
        ("unplanned_stop", 17, 45 * MIN),  # m1 08:00-08:45
        ("starved", None, 30 * MIN),  # m2 11:00-11:30
        ("changeover", None, 20 * MIN),  # m1 13:00-13:20
        ("unplanned_stop", 9, 1 * MIN),  # m1's micro-stop 12:00-12:01
    ]
    total = sum(t for _, _, t in expected)
    assert body["total_stop_time_s"] == total == 216 * MIN
    assert [(r["state"], r["reason_code"], r["time_s"]) for r in body["reasons"]] == expected
    cumulative = Fraction(0)
    for row, (_, _, seconds) in zip(body["reasons"], expected, strict=True):
        cumulative += Fraction(seconds, total)
        assert row["share"] == pytest.approx(seconds / total)
        assert row["cumulative_share"] == pytest.approx(float(cumulative))
    assert datetime.fromisoformat(body["end"]) == local(DAY, "14:00")


def test_reads_of_now_clip_the_window_to_now(viewer: Any) -> None:
    """A window reaching into the future ends now (no future facts, no open state run on)."""
    now = datetime.now(UTC)
    body = get_oee(
        viewer,
        "line",
        LINE,
        start=(now - timedelta(hours=1)).isoformat(),
        end=(now + timedelta(hours=1)).isoformat(),
    ).json()
    end = datetime.fromisoformat(body["end"])
    assert now - timedelta(seconds=2) <= end <= now + timedelta(seconds=2)
    assert datetime.fromisoformat(body["requested_end"]) > end
