"""PackML (ISA-TR88.00.02) StateCurrent numbers and names, shared by the simulator and
the agent's state presets."""

from __future__ import annotations

PACKML_NAMES: dict[int, str] = {
    0: "Undefined",
    1: "Clearing",
    2: "Stopped",
    3: "Starting",
    4: "Idle",
    5: "Suspended",
    6: "Execute",
    7: "Stopping",
    8: "Aborting",
    9: "Aborted",
    10: "Holding",
    11: "Held",
    12: "Unholding",
    13: "Suspending",
    14: "Unsuspending",
    15: "Resetting",
    16: "Completing",
    17: "Complete",
}
