"""Fault state the protocol faces consult on every request. Pure data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class FaceName(StrEnum):
    OPCUA = "opcua"
    MODBUS = "modbus"
    ALL = "all"

    def covers(self, face: FaceName) -> bool:
        return self is FaceName.ALL or self is face


@dataclass(frozen=True)
class BadTag:
    """Serve a bad status (OPC UA) / an exception code (Modbus) for one tag."""

    opcua_status: str = "BadSensorFailure"
    modbus_exception: int = 4  # SERVER_DEVICE_FAILURE
    until_mono: float | None = None


@dataclass
class FaultState:
    """Per-face fault switches; times are time.monotonic() seconds."""

    hang_until_mono: float = 0.0
    delay_s: float = 0.0
    delay_until_mono: float | None = None
    bad_tags: dict[tuple[str, str], BadTag] = field(default_factory=dict)

    def hang_remaining_s(self, now_mono: float | None = None) -> float:
        """Seconds the face must stay silent from now (0 when not hanging)."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        return max(0.0, self.hang_until_mono - now_mono)

    def response_delay_s(self, now_mono: float | None = None) -> float:
        """Extra delay before each response (slow-responses fault)."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        if self.delay_until_mono is not None and now_mono >= self.delay_until_mono:
            self.delay_s, self.delay_until_mono = 0.0, None
        return self.delay_s

    def bad_tag(self, machine: str, tag: str, now_mono: float | None = None) -> BadTag | None:
        """The active bad-status fault for ``machine``/``tag``, if any."""
        fault = self.bad_tags.get((machine, tag))
        if fault is None:
            return None
        now_mono = time.monotonic() if now_mono is None else now_mono
        if fault.until_mono is not None and now_mono >= fault.until_mono:
            del self.bad_tags[(machine, tag)]
            return None
        return fault

    def clear(self) -> None:
        self.hang_until_mono = 0.0
        self.delay_s, self.delay_until_mono = 0.0, None
        self.bad_tags.clear()
