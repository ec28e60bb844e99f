"""Tags -> Modbus read requests, and the poll schedule's tick arithmetic. Pure.

Tags are grouped by poll interval, then by (unit id, table). Within a group, tags
sorted by address are merged into one request while the registers (or bits) skipped
between them stay within ``max_gap_registers`` (bit tables: 16 bits per register)
and the request stays within ``max_registers_per_read`` / ``max_bits_per_read``.
A value is never split across two requests: a request boundary always falls between
values (field note: a 125-register read can otherwise cut a float32 in half). Tags
that overlap (a uint32 and a uint16 on its low register) share a request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.config.models import ModbusAddress, ModbusConnection, ModbusTable
from edge_agent.sources.modbus.decode import BIT_TABLES, ModbusSourceError, Slot, value_width

ADDRESS_SPACE = 65536  # protocol addresses 0-65535 per table
BITS_PER_REGISTER = 16
_TABLE_ORDER = {
    ModbusTable.HOLDING_REGISTER: 0,
    ModbusTable.INPUT_REGISTER: 1,
    ModbusTable.COIL: 2,
    ModbusTable.DISCRETE_INPUT: 3,
}


class PlanError(ModbusSourceError, ValueError):
    """The tags cannot be read as configured (value larger than a read, duplicate id...)."""


@dataclass(frozen=True, slots=True)
class PlannedTag:
    """What the planner needs of a configured tag."""

    tag: str
    address: ModbusAddress
    interval_s: float


@dataclass(frozen=True, slots=True)
class ReadLimits:
    max_gap_registers: int = 10
    max_registers_per_read: int = 125
    max_bits_per_read: int = 2000

    @classmethod
    def of(cls, connection: ModbusConnection) -> ReadLimits:
        return cls(
            connection.max_gap_registers,
            connection.max_registers_per_read,
            connection.max_bits_per_read,
        )

    def span_limit(self, table: ModbusTable) -> int:
        bits = table in BIT_TABLES
        return self.max_bits_per_read if bits else self.max_registers_per_read

    def gap_limit(self, table: ModbusTable) -> int:
        bits = table in BIT_TABLES
        return self.max_gap_registers * (BITS_PER_REGISTER if bits else 1)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read (function 1-4) and the tags it serves, sorted by offset."""

    unit_id: int
    table: ModbusTable
    start: int
    count: int
    """Registers, or bits for coils and discrete inputs."""
    slots: tuple[Slot, ...]

    @property
    def end(self) -> int:
        return self.start + self.count

    def describe(self) -> str:
        """For logs: ``unit=1 table=holding_register start=0 count=42``."""
        return f"unit={self.unit_id} table={self.table.value} start={self.start} count={self.count}"


@dataclass(frozen=True, slots=True)
class PollGroup:
    """Every request polled together at one interval."""

    interval_s: float
    requests: tuple[ReadRequest, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(slot.tag for request in self.requests for slot in request.slots)


def plan_reads(tags: Iterable[PlannedTag], limits: ReadLimits = ReadLimits()) -> list[PollGroup]:
    """Requests covering every tag exactly once, grouped by interval (shortest first)."""
    seen: set[str] = set()
    buckets: dict[tuple[float, int, ModbusTable], list[PlannedTag]] = {}
    for planned in tags:
        if planned.tag in seen:
            raise PlanError(f"tag {planned.tag!r} is configured twice; tag ids must be unique")
        seen.add(planned.tag)
        _check_fits(planned, limits)
        address = planned.address
        key = (planned.interval_s, address.unit_id, address.table)
        buckets.setdefault(key, []).append(planned)

    groups: dict[float, list[ReadRequest]] = {}
    for key in sorted(buckets, key=lambda k: (k[0], k[1], _TABLE_ORDER[k[2]])):
        interval_s, unit_id, table = key
        requests = groups.setdefault(interval_s, [])
        requests.extend(_merge(unit_id, table, buckets[key], limits))
    return [PollGroup(interval_s, tuple(requests)) for interval_s, requests in groups.items()]


def _check_fits(planned: PlannedTag, limits: ReadLimits) -> None:
    address = planned.address
    width = value_width(address)
    limit = limits.span_limit(address.table)
    if width > limit:
        setting = "max_bits_per_read" if address.table in BIT_TABLES else "max_registers_per_read"
        raise PlanError(
            f"tag {planned.tag!r}: its {address.type.value} occupies {width} registers but "
            f"{setting} is {limit}; raise {setting} to at least {width} (values are never "
            "split across reads)"
        )
    if address.address + width > ADDRESS_SPACE:
        raise PlanError(
            f"tag {planned.tag!r}: {width} registers from address {address.address} run past "
            f"the end of the {address.table.value} table (0-{ADDRESS_SPACE - 1})"
        )


def _merge(
    unit_id: int, table: ModbusTable, tags: list[PlannedTag], limits: ReadLimits
) -> list[ReadRequest]:
    span_limit, gap_limit = limits.span_limit(table), limits.gap_limit(table)
    ordered = sorted(tags, key=lambda t: (t.address.address, -value_width(t.address), t.tag))
    requests: list[ReadRequest] = []
    members: list[PlannedTag] = []
    start = end = 0
    for planned in ordered:
        first = planned.address.address
        last = first + value_width(planned.address)
        fits = members and first - end <= gap_limit and max(end, last) - start <= span_limit
        if fits:
            members.append(planned)
            end = max(end, last)
            continue
        if members:
            requests.append(_request(unit_id, table, start, end, members))
        members, start, end = [planned], first, last
    if members:
        requests.append(_request(unit_id, table, start, end, members))
    return requests


def _request(
    unit_id: int, table: ModbusTable, start: int, end: int, members: list[PlannedTag]
) -> ReadRequest:
    slots = tuple(Slot(m.tag, m.address.address - start, m.address) for m in members)
    return ReadRequest(unit_id, table, start, end - start, slots)


def next_tick(tick: int, elapsed_s: float, interval_s: float) -> int:
    """The tick to poll after ``tick`` (due at ``origin + tick * interval_s``).

    ``elapsed_s`` is now - origin. Normally ``tick + 1``; when the poll overran, the
    latest tick already due (polled at once, late) and the older ones are skipped, so
    a slow poll never causes a burst and the schedule never drifts.
    """
    latest_due = math.floor(elapsed_s / interval_s + 1e-9)
    return max(tick + 1, latest_due)
