"""Modbus part of the PLC checks: one read per equipment of its first configured address.

The read goes through the agent's own :class:`ModbusSource` (same client settings,
request planning and decoding); exception responses are explained for a technician.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from edge_agent.config.models import Connection, ModbusAddress, PollSampling, Tag
from edge_agent.doctor.results import Check, fail, ok
from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sources.modbus import ModbusSource

# Modbus exception codes -> (meaning, what to check)
EXCEPTION_CODES: dict[int, tuple[str, str]] = {
    1: (
        "illegal function",
        "the device cannot read this table: check the tag's table (holding_register, "
        "input_register, coil, discrete_input)",
    ),
    2: (
        "illegal data address",
        "the address is not in the device's register map: check the tag's table, address "
        "(0-based) and type/length against the PLC's register map, and the unit_id",
    ),
    3: (
        "illegal data value",
        "the device refused the read's length: check the tag's type and length",
    ),
    4: ("server device failure", "the device reported an internal error: check the PLC"),
    5: ("acknowledge (busy with a long command)", "try again; check the PLC if it persists"),
    6: ("server device busy", "try again; if it persists, poll this device less often"),
    10: (
        "gateway path unavailable",
        "the gateway has no route to this unit_id: check the unit_id and the gateway's "
        "configuration",
    ),
    11: (
        "gateway target device failed to respond",
        "the device behind the gateway did not answer: check the unit_id, the serial wiring "
        "and the baud rate/parity of the gateway's serial side",
    ),
}
_EXCEPTION = re.compile(r"ModbusException\((\d+)\)")


def explain_status(status: str, unit_id: int) -> tuple[str, str]:
    """A bad sample's status (``ModbusException(2)``, ``Timeout``...) -> (detail, fix)."""
    match = _EXCEPTION.fullmatch(status)
    if match:
        code = int(match.group(1))
        meaning, fix = EXCEPTION_CODES.get(
            code, ("unknown exception code", "see the device's manual for this code")
        )
        return f"exception {code} ({meaning})", fix
    if status == "Timeout":
        return (
            f"no answer from unit_id {unit_id}",
            "check the unit_id (slave address); for RTU: baud rate, parity, wiring; for slow "
            "devices raise timeout_s",
        )
    return status, "check the device and the connection settings"


def first_tags(connection: Connection, tags: list[tuple[str, Tag]]) -> list[tuple[str, Tag]]:
    """The first configured tag of each equipment (``equipment.tag`` ids) on ``connection``."""
    seen: set[str] = set()
    out: list[tuple[str, Tag]] = []
    for tag_id, tag in tags:
        equipment = tag_id.split(".", 1)[0]
        if equipment not in seen:
            seen.add(equipment)
            out.append((tag_id, tag))
    return out


async def check_modbus(
    connection: Connection, tags: list[tuple[str, Tag]], timeout_s: float
) -> list[Check]:
    """One read per equipment; a ``plc <connection> <equipment>`` check each."""
    chosen = first_tags(connection, tags)
    if not chosen:
        return [ok(f"plc {connection.id} reads", "no tags use this connection")]
    poll = PollSampling(interval_s=3600)  # one read each, the source's first poll
    source = ModbusSource(
        connection, [(tag_id, tag.model_copy(update={"sampling": poll})) for tag_id, tag in chosen]
    )
    samples: dict[str, Sample] = {}
    problems: list[str] = []
    stop = asyncio.Event()

    def on_items(items: list[Sample | ConnectionChange]) -> None:
        for item in items:
            if isinstance(item, Sample):
                samples.setdefault(item.tag, item)
            elif not item.connected:
                problems.append(item.detail or "connection lost")
        if problems or len(samples) == len(chosen):
            stop.set()

    task = asyncio.create_task(source.run(on_items, stop))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout_s)
    stop.set()
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(task, timeout_s)
    if not task.done():
        task.cancel()
    return [
        _verdict(connection, tag_id, tag, samples.get(tag_id), problems) for tag_id, tag in chosen
    ]


def _verdict(
    connection: Connection, tag_id: str, tag: Tag, sample: Sample | None, problems: list[str]
) -> Check:
    address = tag.address
    assert isinstance(address, ModbusAddress)
    equipment = tag_id.split(".", 1)[0]
    name = f"plc {connection.id} {equipment}"
    where = f"{tag_id} ({address.table.value} {address.address}, unit_id {address.unit_id})"
    if sample is None:
        reason = problems[-1] if problems else "no answer in time"
        return fail(
            name,
            f"{where}: not read: {reason}",
            "check the connection's host/port (or serial settings) and that the device is on",
        )
    if sample.status == "Good":
        return ok(name, f"{where} = {sample.value!r}")
    detail, fix = explain_status(sample.status, address.unit_id)
    return fail(name, f"{where}: {detail}", fix)
