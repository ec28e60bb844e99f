"""Raw state values -> canonical states, and when to report ``equipment.state_changed``.

Presets (``StateRole.preset``):

- ``canonical``: the simulator's encoding, 1 running, 2 idle, 3 starved, 4 blocked,
  5 planned_stop, 6 unplanned_stop, 7 changeover.
- ``packml``: PackML ``StateCurrent``. The simulator's codes: 6 Execute -> running,
  4 Idle -> idle, 5 Suspended -> starved (starved and blocked share Suspended; the
  reason code tells them apart), 2 Stopped -> planned_stop, 11 Held -> unplanned_stop,
  15 Resetting -> changeover (a Lineside convention). The other acting states take the
  wait state on their non-Execute side: 3 Starting (Idle -> Execute) -> idle,
  7 Stopping -> planned_stop, 1 Clearing, 8 Aborting, 9 Aborted, 10 Holding and
  12 Unholding -> unplanned_stop, 13 Suspending and 14 Unsuspending -> starved,
  16 Completing and 17 Complete -> idle. 0 Undefined is unmapped.
- ``none``: nothing built in; only the custom mapping.

Both presets also accept the canonical state names as strings (a ``StateName`` tag),
and ``packml`` the PackML state names ("Execute", "Held"). ``StateRole.mapping``
overrides or extends the preset. Strings match case-insensitively after stripping
blanks; a mapping key such as ``"6"`` (JSON keys are strings) also matches the number
6, and ``"true"``/``"false"`` also match booleans; an integral float matches its int.
A value that maps to nothing is reported as ``unmapped_state`` (default
unplanned_stop, so an unknown code never inflates availability), with ``raw_value``.

Reporting: a state_changed is emitted when the pair (state, reason_code) changes.
The reason only counts while the equipment is not running (reason_code is None while
running), so a reason that arrives just after its stop state emits a second
state_changed with the same state (previous_state == state) and the new reason, and a
reason that lingers after the machine runs again emits nothing. Reason value
``no_reason_code`` (default 0) is reported as None. Event times never go backwards:
a sample older than the last state event (e.g. the unchanged value re-read after a
reconnect) is stamped with the later time, so an outage keeps its real length.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from edge_agent.derive._json import from_iso, iso
from edge_agent.derive.drafts import EventDraft, EventType
from edge_agent.derive.roles import (
    OFFLINE,
    CanonicalState,
    ReasonRole,
    StatePreset,
    StateRole,
)
from edge_agent.samples import ConnectionChange
from lineside_common.packml import PACKML_NAMES as ALL_PACKML_NAMES

S = CanonicalState

CANONICAL_PRESET: dict[int, CanonicalState] = {
    1: S.RUNNING,
    2: S.IDLE,
    3: S.STARVED,
    4: S.BLOCKED,
    5: S.PLANNED_STOP,
    6: S.UNPLANNED_STOP,
    7: S.CHANGEOVER,
}

PACKML_PRESET: dict[int, CanonicalState] = {
    1: S.UNPLANNED_STOP,  # Clearing (after Aborted)
    2: S.PLANNED_STOP,  # Stopped
    3: S.IDLE,  # Starting
    4: S.IDLE,  # Idle
    5: S.STARVED,  # Suspended (blocked as well; the reason tells)
    6: S.RUNNING,  # Execute
    7: S.PLANNED_STOP,  # Stopping
    8: S.UNPLANNED_STOP,  # Aborting
    9: S.UNPLANNED_STOP,  # Aborted
    10: S.UNPLANNED_STOP,  # Holding
    11: S.UNPLANNED_STOP,  # Held
    12: S.UNPLANNED_STOP,  # Unholding
    13: S.STARVED,  # Suspending
    14: S.STARVED,  # Unsuspending
    15: S.CHANGEOVER,  # Resetting
    16: S.IDLE,  # Completing
    17: S.IDLE,  # Complete
}

# 0 Undefined is not a state a machine reports; it stays unmapped.
PACKML_NAMES = {code: name for code, name in ALL_PACKML_NAMES.items() if code}

_Key = tuple[str, Any]
_INT_TEXT = re.compile(r"[+-]?\d+")


def _value_key(raw: Any) -> _Key | None:
    """The lookup key of a sampled raw value (None: cannot be looked up)."""
    if isinstance(raw, bool):
        return ("bool", raw)
    if isinstance(raw, int):
        return ("int", raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return ("int", int(raw)) if raw.is_integer() else ("float", raw)
    if isinstance(raw, str):
        return ("str", raw.strip().casefold())
    return None


def _mapping_keys(raw: Any) -> list[_Key]:
    """Every key a configured mapping entry matches (JSON keys arrive as text)."""
    key = _value_key(raw)
    keys = [key] if key is not None else []
    if isinstance(raw, str):
        text = raw.strip().casefold()
        if _INT_TEXT.fullmatch(text):
            keys.append(("int", int(text)))
        elif text in ("true", "false"):
            keys.append(("bool", text == "true"))
    return keys


def state_table(role: StateRole) -> dict[_Key, CanonicalState]:
    """The lookup table of ``role``: its preset, then its mapping on top."""
    table: dict[_Key, CanonicalState] = {}
    preset = StatePreset(str(role.preset))
    if preset is not StatePreset.NONE:
        codes = CANONICAL_PRESET if preset is StatePreset.CANONICAL else PACKML_PRESET
        table.update({("int", code): state for code, state in codes.items()})
        table.update({("str", state.value): state for state in CanonicalState})
    if preset is StatePreset.PACKML:
        table.update(
            {("str", name.casefold()): PACKML_PRESET[c] for c, name in PACKML_NAMES.items()}
        )
    for raw, state in role.mapping.items():
        for key in _mapping_keys(raw):
            table[key] = CanonicalState(str(state))
    return table


def resolve_state(table: dict[_Key, CanonicalState], raw: Any) -> CanonicalState | None:
    """The canonical state of a raw value, or None when the table does not map it."""
    key = _value_key(raw)
    if key is None:
        return None
    state = table.get(key)
    if state is None and key[0] == "str" and _INT_TEXT.fullmatch(key[1]):
        state = table.get(("int", int(key[1])))
    return state


def wire_raw_value(raw: Any) -> int | float | str | None:
    """``raw`` as the wire's raw_value accepts it: bools as 0/1, odd values as text."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int) or (isinstance(raw, float) and math.isfinite(raw)):
        return raw
    return str(raw)


def reason_code(value: Any, role: ReasonRole) -> tuple[bool, int | None]:
    """(usable, code) of a reason sample: non-negative integers only."""
    if isinstance(value, bool):
        return False, None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        return False, None
    return True, (None if value == role.no_reason_code else value)


class StateTracker:
    """The state and reason of one equipment, and the state_changed drafts they cause."""

    def __init__(
        self, equipment: str, role: StateRole | None, reason_role: ReasonRole | None
    ) -> None:
        self._equipment = equipment
        self._table = state_table(role) if role is not None else {}
        self._unmapped = CanonicalState(str(role.unmapped_state)) if role else S.UNPLANNED_STOP
        self._reason_role = reason_role or ReasonRole()
        self.observed: str | None = None  # latest state read (None: unknown)
        self.observed_raw: int | float | str | None = None
        self.reason: int | None = None  # latest reason read
        self.emitted: str | None = None  # what the last state_changed said
        self.emitted_reason: int | None = None
        self.floor: datetime | None = None  # no state event may be earlier than this
        self.down: set[str] = set()  # connections currently lost (not persisted)

    def observe_state(self, raw: Any) -> None:
        """Take a (good-quality) raw state value."""
        self.observed = resolve_state(self._table, raw) or self._unmapped
        self.observed_raw = wire_raw_value(raw)

    def observe_reason(self, value: Any) -> None:
        """Take a (good-quality) reason value; unusable values are ignored."""
        usable, code = reason_code(value, self._reason_role)
        if usable:
            self.reason = code

    def report(self, at: datetime, received: datetime, order: str | None) -> list[EventDraft]:
        """A state_changed draft if (state, reason) differs from the last one reported."""
        if self.down or self.observed is None:
            return []
        reason = None if self.observed == S.RUNNING else self.reason
        if (self.observed, reason) == (self.emitted, self.emitted_reason):
            return []
        return [self._emit(self.observed, reason, self.observed_raw, at, received, order)]

    def on_connection(self, change: ConnectionChange, order: str | None) -> list[EventDraft]:
        """Offline when a connection is lost; the next state read after it is back."""
        if not change.connected:
            was_up = not self.down
            self.down.add(change.connection)
            # what we knew is stale now: wait for fresh values after the reconnect
            self.observed, self.observed_raw, self.reason = None, None, None
            if was_up and self.emitted != OFFLINE:
                return [self._emit(OFFLINE, None, None, change.at, change.at, order)]
            return []
        if change.connection not in self.down:
            return []
        self.down.discard(change.connection)
        self.floor = change.at if self.floor is None else max(self.floor, change.at)
        return self.report(change.at, change.at, order)

    def _emit(
        self,
        state: str,
        reason: int | None,
        raw: int | float | str | None,
        at: datetime,
        received: datetime,
        order: str | None,
    ) -> EventDraft:
        at = at if self.floor is None else max(at, self.floor)
        payload = {
            "state": state,
            "previous_state": self.emitted,
            "raw_value": raw,
            "reason_code": reason,
        }
        self.emitted, self.emitted_reason, self.floor = state, reason, at
        return EventDraft(EventType.STATE_CHANGED, self._equipment, at, received, payload, order)

    def snapshot(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "observed_raw": self.observed_raw,
            "reason": self.reason,
            "emitted": self.emitted,
            "emitted_reason": self.emitted_reason,
            "floor": iso(self.floor),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.observed = data["observed"]
        self.observed_raw = data["observed_raw"]
        self.reason = data["reason"]
        self.emitted = data["emitted"]
        self.emitted_reason = data["emitted_reason"]
        self.floor = from_iso(data["floor"])
