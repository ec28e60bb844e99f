"""Read planning: merging, gaps, limits, value boundaries, bit tables, units, intervals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config.models import ModbusAddress, ModbusTable, ModbusType
from edge_agent.sources.modbus import (
    PlanError,
    PlannedTag,
    ReadLimits,
    next_tick,
    plan_reads,
    value_width,
)

HR = ModbusTable.HOLDING_REGISTER
IR = ModbusTable.INPUT_REGISTER
COIL = ModbusTable.COIL
DI = ModbusTable.DISCRETE_INPUT


def tag(
    name: str,
    address: int,
    dtype: str = "uint16",
    *,
    table: ModbusTable = HR,
    unit: int = 1,
    interval_s: float = 1.0,
    length: int | None = None,
) -> PlannedTag:
    if table in (COIL, DI):
        dtype = "bool"
    mapping = ModbusAddress(
        table=table, address=address, unit_id=unit, type=ModbusType(dtype), length=length
    )
    return PlannedTag(name, mapping, interval_s)


def spans(tags: list[PlannedTag], limits: ReadLimits = ReadLimits()) -> list[tuple]:
    """(interval, unit, table, start, count, tag names) of every planned request."""
    return [
        (group.interval_s, r.unit_id, r.table.value, r.start, r.count, [s.tag for s in r.slots])
        for group in plan_reads(tags, limits)
        for r in group.requests
    ]


CASES = [
    pytest.param(
        [tag("a", 0), tag("b", 1), tag("c", 2, "uint32")],
        ReadLimits(),
        [(1.0, 1, "holding_register", 0, 4, ["a", "b", "c"])],
        id="contiguous-tags-are-one-read",
    ),
    pytest.param(
        [tag("a", 0), tag("b", 11)],
        ReadLimits(max_gap_registers=10),
        [(1.0, 1, "holding_register", 0, 12, ["a", "b"])],
        id="a-gap-of-exactly-max-gap-is-read-through",
    ),
    pytest.param(
        [tag("a", 0), tag("b", 12)],
        ReadLimits(max_gap_registers=10),
        [
            (1.0, 1, "holding_register", 0, 1, ["a"]),
            (1.0, 1, "holding_register", 12, 1, ["b"]),
        ],
        id="a-gap-beyond-max-gap-splits",
    ),
    pytest.param(
        [tag("a", 0), tag("b", 2), tag("c", 1)],
        ReadLimits(max_gap_registers=0),
        [(1.0, 1, "holding_register", 0, 3, ["a", "c", "b"])],
        id="max-gap-0-merges-contiguous-only-sorted-by-address",
    ),
    pytest.param(
        [tag(f"r{i}", i) for i in range(7)],
        ReadLimits(max_registers_per_read=3),
        [
            (1.0, 1, "holding_register", 0, 3, ["r0", "r1", "r2"]),
            (1.0, 1, "holding_register", 3, 3, ["r3", "r4", "r5"]),
            (1.0, 1, "holding_register", 6, 1, ["r6"]),
        ],
        id="max-registers-per-read",
    ),
    pytest.param(
        [tag("u", 0), tag("f", 124, "float32")],
        ReadLimits(max_gap_registers=125),
        [
            (1.0, 1, "holding_register", 0, 1, ["u"]),
            (1.0, 1, "holding_register", 124, 2, ["f"]),
        ],
        id="a-float32-at-124-is-not-split-by-the-125-limit",
    ),
    pytest.param(
        [tag("s", 10, "string", length=16), tag("p", 26, "string", length=16)],
        ReadLimits(max_registers_per_read=20),
        [
            (1.0, 1, "holding_register", 10, 16, ["s"]),
            (1.0, 1, "holding_register", 26, 16, ["p"]),
        ],
        id="strings-stay-whole",
    ),
    pytest.param(
        [tag("total", 2, "uint32"), tag("total_low", 3), tag("state", 0)],
        ReadLimits(),
        [(1.0, 1, "holding_register", 0, 4, ["state", "total", "total_low"])],
        id="overlapping-values-share-a-read",
    ),
    pytest.param(
        [tag("wide", 0, "uint64"), tag("inner", 1)],
        ReadLimits(max_registers_per_read=4),
        [(1.0, 1, "holding_register", 0, 4, ["wide", "inner"])],
        id="a-value-inside-another-needs-no-room",
    ),
    pytest.param(
        [tag("b0", 0, table=COIL), tag("b160", 160, table=COIL), tag("b322", 322, table=COIL)],
        ReadLimits(max_gap_registers=10),
        [
            (1.0, 1, "coil", 0, 161, ["b0", "b160"]),  # 159 bits skipped: within 10 x 16
            (1.0, 1, "coil", 322, 1, ["b322"]),  # 161 bits: beyond
        ],
        id="bit-gaps-count-16-bits-per-register",
    ),
    pytest.param(
        [tag(f"d{i}", i, table=DI) for i in range(5)],
        ReadLimits(max_bits_per_read=2),
        [
            (1.0, 1, "discrete_input", 0, 2, ["d0", "d1"]),
            (1.0, 1, "discrete_input", 2, 2, ["d2", "d3"]),
            (1.0, 1, "discrete_input", 4, 1, ["d4"]),
        ],
        id="max-bits-per-read",
    ),
    pytest.param(
        [
            tag("u3", 0, unit=3),
            tag("u1-ir", 0, table=IR),
            tag("u1-di", 0, table=DI),
            tag("u1-hr", 0),
            tag("u1-coil", 0, table=COIL),
        ],
        ReadLimits(),
        [
            (1.0, 1, "holding_register", 0, 1, ["u1-hr"]),
            (1.0, 1, "input_register", 0, 1, ["u1-ir"]),
            (1.0, 1, "coil", 0, 1, ["u1-coil"]),
            (1.0, 1, "discrete_input", 0, 1, ["u1-di"]),
            (1.0, 3, "holding_register", 0, 1, ["u3"]),
        ],
        id="units-and-tables-never-share-a-read",
    ),
    pytest.param(
        [tag("slow", 1, interval_s=5), tag("fast", 0, interval_s=0.5), tag("mid", 2)],
        ReadLimits(),
        [
            (0.5, 1, "holding_register", 0, 1, ["fast"]),
            (1.0, 1, "holding_register", 2, 1, ["mid"]),
            (5, 1, "holding_register", 1, 1, ["slow"]),
        ],
        id="intervals-are-separate-groups-shortest-first",
    ),
]


@pytest.mark.parametrize(("tags", "limits", "expected"), CASES)
def test_plans(tags: list[PlannedTag], limits: ReadLimits, expected: list[tuple]) -> None:
    assert spans(tags, limits) == expected


def test_slots_know_their_offsets_in_the_request() -> None:
    [group] = plan_reads([tag("a", 100), tag("b", 103, "float32"), tag("c", 110)])
    [request] = group.requests
    assert (request.start, request.count) == (100, 11)
    assert [(s.tag, s.offset) for s in request.slots] == [("a", 0), ("b", 3), ("c", 10)]
    assert request.describe() == "unit=1 table=holding_register start=100 count=11"


def test_a_value_larger_than_a_read_is_refused_with_the_fix() -> None:
    with pytest.raises(PlanError, match=r"'order'.*16 registers.*max_registers_per_read is 10"):
        plan_reads([tag("order", 0, "string", length=16)], ReadLimits(max_registers_per_read=10))


def test_a_value_past_the_end_of_the_table_is_refused() -> None:
    with pytest.raises(PlanError, match=r"'x'.*from address 65535 run past the end"):
        plan_reads([tag("x", 65535, "uint32")])
    assert spans([tag("last", 65534, "uint32")]) == [
        (1.0, 1, "holding_register", 65534, 2, ["last"])
    ]


def test_duplicate_tag_ids_are_refused() -> None:
    with pytest.raises(PlanError, match="'a' is configured twice"):
        plan_reads([tag("a", 0), tag("a", 5)])


def test_no_tags_no_groups() -> None:
    assert plan_reads([]) == []


# -- property: every tag covered exactly once, no request beyond the limits ------------------

_TYPES = ["uint16", "int16", "uint32", "float32", "float64", "uint64", "string"]


_RAW_TAG = st.tuples(
    st.sampled_from([HR, IR, COIL, DI]),
    st.sampled_from(_TYPES),
    st.integers(1, 30),  # string length
    st.integers(0, 400) | st.integers(65400, 65500),
    st.sampled_from([1, 2, 247]),
    st.sampled_from([0.1, 1.0, 5.0]),
)


@st.composite
def planned_tags(draw) -> list[PlannedTag]:
    tags = []
    for index, raw in enumerate(draw(st.lists(_RAW_TAG, max_size=40))):
        table, dtype, length, address, unit, interval = raw
        string = dtype == "string" and table in (HR, IR)
        tags.append(
            tag(f"t{index}", address, dtype, table=table, unit=unit, interval_s=interval,
                length=length if string else None)
        )  # fmt: skip
    return tags


@settings(max_examples=200, deadline=None)
@given(
    planned_tags(),
    st.integers(0, 40),
    st.integers(30, 125),
    st.integers(1, 2000),
)
def test_every_tag_is_read_exactly_once_within_the_limits(
    tags: list[PlannedTag], max_gap: int, max_registers: int, max_bits: int
) -> None:
    limits = ReadLimits(max_gap, max_registers, max_bits)
    by_name = {t.tag: t for t in tags}
    seen: list[str] = []
    for group in plan_reads(tags, limits):
        for request in group.requests:
            bits = request.table in (COIL, DI)
            assert 1 <= request.count <= (max_bits if bits else max_registers)
            assert request.end <= 65536
            assert request.slots
            offsets = [s.offset for s in request.slots]
            assert offsets == sorted(offsets)
            reach = 0
            for slot in request.slots:
                planned = by_name[slot.tag]
                assert planned.interval_s == group.interval_s
                assert planned.address.unit_id == request.unit_id
                assert planned.address.table is request.table
                assert slot.address is planned.address
                # the whole value is inside this request: never split
                assert request.start + slot.offset == planned.address.address
                assert slot.offset + value_width(slot.address) <= request.count
                # what the request reads beyond its tags stays within the gap limit
                gap_limit = max_gap * (16 if bits else 1)
                assert slot.offset - reach <= gap_limit or reach == 0
                reach = max(reach, slot.offset + value_width(slot.address))
                seen.append(slot.tag)
            assert reach == request.count  # no trailing registers read for nothing
    assert sorted(seen) == sorted(by_name)


# -- the schedule's tick arithmetic -----------------------------------------------------------


@pytest.mark.parametrize(
    ("tick", "elapsed_s", "interval_s", "expected"),
    [
        (0, 0.01, 1.0, 1),  # on time: the next tick
        (4, 4.3, 1.0, 5),
        (4, 5.0, 1.0, 5),  # finished exactly at the next tick: poll it now
        (4, 5.5, 1.0, 5),  # overran into tick 5: poll it at once, late
        (4, 9.7, 1.0, 9),  # overran 5 intervals: 5-8 skipped, 9 polled at once
        (0, 0.35, 0.1, 3),  # no float drift: 0.35 / 0.1 -> tick 3
        (2, 0.3, 0.1, 3),  # 0.3 / 0.1 = 2.9999999999999996 is tick 3 already
    ],
)
def test_next_tick(tick: int, elapsed_s: float, interval_s: float, expected: int) -> None:
    assert next_tick(tick, elapsed_s, interval_s) == expected
