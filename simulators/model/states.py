"""Canonical machine states and how PLCs encode them.

Codes in the ``canonical`` encoding are Lineside's own; ``packml`` uses the
ISA-TR88.00.02 (PackML) ``StateCurrent`` numbers. PackML has fewer states than
Lineside distinguishes, so that encoding is lossy (documented in docs/simulators.md);
the stop reason code tells the remaining cases apart.
"""

from __future__ import annotations

from enum import StrEnum

from lineside_common.packml import PACKML_NAMES as ALL_PACKML_NAMES
from lineside_protocol.states import CanonicalState

MachineState = CanonicalState  # the simulator's name for the shared vocabulary


class StateEncoding(StrEnum):
    CANONICAL = "canonical"
    PACKML = "packml"


CANONICAL_CODES: dict[MachineState, int] = {
    MachineState.RUNNING: 1,
    MachineState.IDLE: 2,
    MachineState.STARVED: 3,
    MachineState.BLOCKED: 4,
    MachineState.PLANNED_STOP: 5,
    MachineState.UNPLANNED_STOP: 6,
    MachineState.CHANGEOVER: 7,
}

# PackML StateCurrent: 2 Stopped, 4 Idle, 5 Suspended, 6 Execute, 11 Held, 15 Resetting.
PACKML_CODES: dict[MachineState, int] = {
    MachineState.RUNNING: 6,
    MachineState.IDLE: 4,
    MachineState.STARVED: 5,
    MachineState.BLOCKED: 5,
    MachineState.PLANNED_STOP: 2,
    MachineState.UNPLANNED_STOP: 11,
    MachineState.CHANGEOVER: 15,
}

PACKML_NAMES = dict(ALL_PACKML_NAMES)


def encode_state(state: MachineState, encoding: StateEncoding) -> int:
    """Return the integer a PLC using ``encoding`` would expose for ``state``."""
    if encoding is StateEncoding.PACKML:
        return PACKML_CODES[state]
    return CANONICAL_CODES[state]


def decode_canonical(code: int) -> MachineState:
    """Inverse of the canonical encoding (the PackML one is not invertible)."""
    for state, value in CANONICAL_CODES.items():
        if value == code:
            return state
    raise ValueError(f"{code} is not a canonical state code (valid: 1-7)")
