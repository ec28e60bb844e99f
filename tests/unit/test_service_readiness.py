"""Readiness from a status: every device up AND (broker up OR buffer accepting)."""

from __future__ import annotations

import pytest

from edge_agent.service import readiness
from edge_agent.status import AgentStatus, BufferStatus, DeviceStatus, ForwarderStatus


def status(
    devices: list[tuple[bool, str | None]] | None = None,
    broker: tuple[bool, str | None] | None = (True, None),
    buffer_accepting: bool | None = True,
) -> AgentStatus:
    devices = [(True, None)] if devices is None else devices
    return AgentStatus(
        agent_id="a",
        version="0",
        config_hash="h",
        started_at="2026-01-01T00:00:00+00:00",
        devices=[
            DeviceStatus(f"press-{i}", "unit-1", "modbus", up, last_error=error)
            for i, (up, error) in enumerate(devices, start=1)
        ],
        buffer=None
        if buffer_accepting is None
        else BufferStatus("/b.sqlite", "full", buffer_accepting, 0, 0, 1, None, 0),
        forwarder=None
        if broker is None
        else ForwarderStatus("broker:8883", broker[0], "closed", "collector", last_error=broker[1]),
    )


CASES = {
    "all up": (status(), []),
    "broker down, buffer accepting": (status(broker=(False, "refused")), []),
    "buffer refusing, broker up": (status(buffer_accepting=False), []),
    "a device down": (
        status(devices=[(True, None), (False, "timeout")]),
        ["device press-2/unit-1 disconnected: timeout"],
    ),
    "a device down without an error": (
        status(devices=[(False, None)]),
        ["device press-1/unit-1 disconnected: no error reported"],
    ),
    "broker down and buffer refusing": (
        status(broker=(False, "not authorised"), buffer_accepting=False),
        [
            "broker broker:8883 disconnected: not authorised",
            "buffer /b.sqlite not accepting events",
        ],
    ),
    "nothing started yet": (
        status(devices=[], broker=None, buffer_accepting=None),
        [
            "no devices reported yet (sources not started)",
            "forwarder not started",
            "buffer not open",
        ],
    ),
    "no forwarder but buffer accepting": (status(broker=None), []),
    "everything wrong": (
        status(
            devices=[(False, "refused"), (False, "timeout")],
            broker=(False, None),
            buffer_accepting=False,
        ),
        [
            "device press-1/unit-1 disconnected: refused",
            "device press-2/unit-1 disconnected: timeout",
            "broker broker:8883 disconnected: no error reported",
            "buffer /b.sqlite not accepting events",
        ],
    ),
}


@pytest.mark.parametrize(("agent", "reasons"), CASES.values(), ids=CASES.keys())
def test_readiness(agent: AgentStatus, reasons: list[str]) -> None:
    verdict = readiness(agent)
    assert verdict.reasons == reasons
    assert verdict.ready is (not reasons)
    assert verdict.to_json() == {"ready": not reasons, "reasons": reasons}
