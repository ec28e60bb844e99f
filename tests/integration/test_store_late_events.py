"""Late and out-of-order events: state intervals and production runs end up as if in order."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from _pg_helpers import T0, StreamBuilder, migrated_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.records import EventRow
from collector.store import write

pytestmark = pytest.mark.integration

S = timedelta(seconds=1)
_names = itertools.count()


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with migrated_database("store_late") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def new_stream(next_seq: int = 0) -> StreamBuilder:
    return StreamBuilder(equipment=f"late-{next(_names)}", next_seq=next_seq)


def intervals(conn: psycopg.Connection, stream: StreamBuilder) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT s.start_time, s.end_time, s.state FROM lineside.state_intervals s "
        "JOIN lineside.equipment e ON e.id = s.equipment_id WHERE e.equipment = %s "
        "ORDER BY s.start_time, s.seq",
        (stream.equipment.equipment,),
    ).fetchall()


def runs(conn: psycopg.Connection, stream: StreamBuilder) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT r.start_time, r.end_time, r.order_id, r.end_reason FROM lineside.production_runs r "
        "JOIN lineside.equipment e ON e.id = r.equipment_id WHERE e.equipment = %s "
        "ORDER BY r.start_time, r.order_id",
        (stream.equipment.equipment,),
    ).fetchall()


def test_a_late_state_change_splits_the_interval_it_falls_into(conn: psycopg.Connection) -> None:
    stream = new_stream(next_seq=10)
    for offset, state in ((10, "running"), (20, "idle"), (30, "running")):  # live, one by one
        write(conn, [stream.batch([stream.state(state, T0 + offset * S)])], [])
    assert intervals(conn, stream) == [
        (T0 + 10 * S, T0 + 20 * S, "running"),
        (T0 + 20 * S, T0 + 30 * S, "idle"),
        (T0 + 30 * S, None, "running"),
    ]
    # the agent's backlog arrives after the live events: a stop at :15 and a state at :05
    write(conn, [stream.batch([stream.state("unplanned_stop", T0 + 15 * S, seq=5)])], [])
    write(conn, [stream.batch([stream.state("idle", T0 + 5 * S, seq=4)])], [])
    assert intervals(conn, stream) == [
        (T0 + 5 * S, T0 + 10 * S, "idle"),
        (T0 + 10 * S, T0 + 15 * S, "running"),
        (T0 + 15 * S, T0 + 20 * S, "unplanned_stop"),
        (T0 + 20 * S, T0 + 30 * S, "idle"),
        (T0 + 30 * S, None, "running"),
    ]


def test_changes_at_the_same_millisecond_are_ordered_by_seq(conn: psycopg.Connection) -> None:
    stream = new_stream()
    first = stream.state("idle", T0)
    second = stream.state("running", T0)  # same time, next seq
    write(conn, [stream.batch([second])], [])
    write(conn, [stream.batch([first])], [])
    assert intervals(conn, stream) == [(T0, T0, "idle"), (T0, None, "running")]


def test_a_late_order_change_reshapes_the_runs(conn: psycopg.Connection) -> None:
    stream = new_stream(next_seq=10)
    write(conn, [stream.batch([stream.started("A", T0)])], [])
    write(
        conn, [stream.batch([stream.ended("A", T0 + 60 * S), stream.started("C", T0 + 60 * S)])], []
    )
    # backlog: B ran from :20 to :40 (the agent saw A end and B start at :20)
    late = [
        stream.ended("A", T0 + 20 * S, seq=5),
        stream.started("B", T0 + 20 * S, seq=6),
        stream.ended("B", T0 + 40 * S, reason="product_changed", seq=7),
    ]
    write(conn, [stream.batch(late)], [])
    assert runs(conn, stream) == [
        (T0, T0 + 20 * S, "A", "order_changed"),
        (T0 + 20 * S, T0 + 40 * S, "B", "product_changed"),
        (T0 + 60 * S, None, "C", None),
    ]


def test_runs_without_ended_events_end_at_the_next_start(conn: psycopg.Connection) -> None:
    stream = new_stream()
    write(
        conn,
        [
            stream.batch(
                [
                    stream.ended("X", T0),
                    stream.started("A", T0 + S),
                    stream.started("B", T0 + 5 * S),
                ]
            )
        ],
        [],
    )
    assert runs(conn, stream) == [
        (T0 + S, T0 + 5 * S, "A", None),
        (T0 + 5 * S, None, "B", None),
    ]


# --- property: any delivery order gives the intervals and runs of the in-order stream ------


def expected_intervals(changes: list[EventRow]) -> list[tuple[Any, ...]]:
    ordered = sorted(changes, key=lambda e: (e.event_time, e.seq))
    ends = [e.event_time for e in ordered[1:]] + [None]
    return [(e.event_time, end, e.payload["state"]) for e, end in zip(ordered, ends, strict=True)]


def expected_runs(events: list[EventRow]) -> list[tuple[Any, ...]]:
    ordered = sorted(events, key=lambda e: (e.event_time, e.seq))
    result = []
    for index, event in enumerate(ordered):
        if event.type != "production.started":
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        end = following.event_time if following else None
        reason = (
            following.payload["reason"]
            if following and following.type == "production.ended"
            else None
        )
        result.append((event.event_time, end, event.payload["order_id"], reason))
    return sorted(result, key=lambda run: (run[0], run[2]))


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], random.Random]:
    """Second offsets of state changes (repeats allowed: same-millisecond ties), kinds of
    production events, and a seed for the delivery order."""
    state_times = draw(st.lists(st.integers(0, 40), min_size=1, max_size=12))
    production = draw(st.lists(st.integers(0, 1), min_size=0, max_size=8))
    production_times = draw(
        st.lists(st.integers(0, 40), min_size=len(production), max_size=len(production))
    )
    return (
        sorted(state_times),
        production,
        sorted(production_times),
        random.Random(draw(st.integers(0, 10**6))),
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories())
def test_any_delivery_order_gives_the_in_order_facts(
    conn: psycopg.Connection, history: tuple[list[int], list[int], list[int], random.Random]
) -> None:
    state_times, production_kinds, production_times, rng = history
    stream = new_stream()
    states = ["running", "idle", "starved", "blocked", "unplanned_stop"]
    events: list[EventRow] = []
    # seqs follow time, as the agent numbers what it observes
    timeline = sorted(
        [(t, "state", i) for i, t in enumerate(state_times)]
        + [(t, "production", i) for i, t in enumerate(production_times)]
    )
    for t, kind, i in timeline:
        at = T0 + t * S
        if kind == "state":
            events.append(stream.state(states[i % len(states)], at))
        elif production_kinds[i]:
            events.append(stream.started(f"order-{i}", at))
        else:
            events.append(stream.ended(f"order-{i}", at, reason="order_changed"))
    delivery = events[:]
    rng.shuffle(delivery)
    while delivery:  # writes of 1-3 batches of 1-4 events, in a random order
        batches = []
        for _ in range(rng.randint(1, 3)):
            if delivery:
                size = rng.randint(1, 4)
                batches.append(stream.batch(delivery[:size]))
                delivery = delivery[size:]
        write(conn, batches, [])
    changes = [e for e in events if e.type == "equipment.state_changed"]
    assert intervals(conn, stream) == expected_intervals(changes)
    production = [e for e in events if e.type.startswith("production.")]
    assert runs(conn, stream) == expected_runs(production)
