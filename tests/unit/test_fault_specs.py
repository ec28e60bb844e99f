"""Fault specs from the CLI map onto the same commands as the control API."""

from __future__ import annotations

import pytest

from simulators.errors import FaultError
from simulators.faults.commands import (
    FAULT_ADAPTER,
    BadStatus,
    DropConnections,
    Hang,
    Restart,
    Slow,
    parse_fault_spec,
)
from simulators.faults.state import BadTag, FaceName, FaultState


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("drop", DropConnections()),
        ("drop on modbus", DropConnections(face=FaceName.MODBUS)),
        ("hang 10s", Hang(seconds=10)),
        ("after 30s hang 5s on opcua", Hang(seconds=5, face=FaceName.OPCUA, after_s=30)),
        ("slow 200ms for 1m", Slow(delay_ms=200, seconds=60)),
        (
            "restart shift-namespace downtime 5s on opcua",
            Restart(face=FaceName.OPCUA, shift_namespace=True, downtime_s=5),
        ),
        (
            "bad-status press-1 TotalCount status BadOutOfService exception 2 for 30s",
            BadStatus(
                machine="press-1",
                tag="TotalCount",
                opcua_status="BadOutOfService",
                modbus_exception=2,
                seconds=30,
            ),
        ),
    ],
)
def test_specs(spec: str, expected: object) -> None:
    command = parse_fault_spec(spec)
    assert command == expected
    # The JSON form (control API) round-trips to the same command.
    assert FAULT_ADAPTER.validate_python(FAULT_ADAPTER.dump_python(command, mode="json")) == command


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode", "start with one of"),
        ("hang", "expected a duration"),
        ("hang soon", "is not a duration"),
        ("drop on plc", "face"),
        ("bad-status press-1 TotalCount status GoodEnough", "not an OPC UA Bad status"),
        ("slow 200ms sideways", "unexpected word 'sideways'"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(FaultError, match=message):
        parse_fault_spec(spec)


def test_fault_state_expiry() -> None:
    state = FaultState()
    state.hang_until_mono = 100.0
    assert state.hang_remaining_s(90.0) == 10.0
    assert state.hang_remaining_s(101.0) == 0.0
    state.delay_s, state.delay_until_mono = 0.2, 50.0
    assert state.response_delay_s(49.0) == 0.2
    assert state.response_delay_s(50.0) == 0.0
    state.bad_tags[("m", "T")] = BadTag(until_mono=10.0)
    assert state.bad_tag("m", "T", 9.0) is not None
    assert state.bad_tag("m", "T", 10.0) is None
    assert ("m", "T") not in state.bad_tags
