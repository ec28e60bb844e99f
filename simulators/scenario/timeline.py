"""Scripted timelines: entries like ``"08:10 unplanned_stop reason 17 for 7m"``.

Each entry is either that one-line shorthand or the equivalent mapping::

    - at: "08:10"
      state: unplanned_stop
      reason: 17
      for: 7m

Actions (``action`` in the mapping form, the first word after the time in the
shorthand):

``run [PRODUCT] [order ORDER]``
    start running; a new product or order is an order change.
``STATE [reason N] [for DURATION]``
    any canonical state; with ``for`` the machine returns to what it did before.
``break DURATION``
    a planned stop (reason 1 unless given) for DURATION.
``changeover [to PRODUCT] [order ORDER] [for DURATION] [reason N]``
    the new order starts now; after DURATION the machine runs it.
``reset_counters``
    the operator presses the counter reset.
``end``
    the scenario is over; the machine goes to planned_stop.

Times are ``HH:MM[:SS]`` clock times in the scenario's time zone (a time earlier
than the previous entry is the next day) or offsets from the first entry
(``+2h30m``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.model.states import MachineState
from simulators.scenario.durations import DurationS, parse_duration_s

Action = Literal["run", "state", "break", "changeover", "reset_counters", "end"]
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_STATES = {s.value for s in MachineState}
BREAK_REASON = 1


def parse_at(text: str) -> tuple[Literal["clock", "offset"], float]:
    """``"06:00"`` -> ("clock", seconds after midnight); ``"+90m"`` -> ("offset", 5400)."""
    text = str(text).strip()
    if text.startswith("+"):
        return "offset", parse_duration_s(text[1:])
    match = _CLOCK.match(text)
    if not match:
        raise ValueError(
            f"'at' must be a clock time HH:MM[:SS] or an offset like +90m, got {text!r}"
        )
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a valid clock time")
    return "clock", float(hours * 3600 + minutes * 60 + seconds)


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: str
    action: Action
    state: MachineState | None = None
    reason: int | None = Field(None, ge=0, le=65535)
    product: str | None = None
    order: str | None = Field(None, min_length=1, max_length=32)
    for_s: DurationS | None = Field(None, alias="for", gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return parse_shorthand(data)
        if isinstance(data, dict) and "action" not in data:
            data = dict(data)
            if "state" in data:
                data["action"] = "state"
            elif "break" in data:
                data["action"] = "break"
                data["for"] = data.pop("break")
            elif "run" in data:
                data["action"] = "run"
                product = data.pop("run")
                if product not in (None, True):
                    data["product"] = product
            elif data.pop("end", None) is True:
                data["action"] = "end"
            elif data.pop("reset_counters", None) is True:
                data["action"] = "reset_counters"
            elif "changeover" in data:
                data["action"] = "changeover"
                target = data.pop("changeover")
                if target not in (None, True):
                    data["product"] = target
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TimelineEntry:
        parse_at(self.at)
        if self.action == "state":
            if self.state is None:
                raise ValueError("action 'state' needs a 'state'")
            if self.state is MachineState.RUNNING and self.for_s is not None:
                raise ValueError("use 'run' to start running; 'for' applies to stops")
        elif self.state is not None:
            raise ValueError(f"'state' does not apply to action {self.action!r}")
        if self.action == "break" and self.for_s is None:
            raise ValueError("a break needs a duration, e.g. 'break 15m'")
        if self.action in ("end", "reset_counters") and (
            self.for_s is not None or self.product or self.order
        ):
            raise ValueError(f"{self.action!r} takes no product, order or duration")
        if self.action == "run" and self.for_s is not None:
            raise ValueError("'run' lasts until the next entry; drop 'for'")
        return self

    @property
    def effective_state(self) -> MachineState | None:
        """The state this entry puts the machine in (None for reset_counters)."""
        if self.action == "run":
            return MachineState.RUNNING
        if self.action == "state":
            return self.state
        if self.action == "break" or self.action == "end":
            return MachineState.PLANNED_STOP
        if self.action == "changeover":
            return MachineState.CHANGEOVER
        return None

    @property
    def effective_reason(self) -> int:
        if self.reason is not None:
            return self.reason
        return BREAK_REASON if self.action == "break" else 0


def parse_shorthand(text: str) -> dict[str, Any]:
    """Turn ``"08:10 unplanned_stop reason 17 for 7m"`` into the mapping form."""
    words = text.split()
    if len(words) < 2:
        raise ValueError(f"timeline entry {text!r} needs a time and an action, e.g. '06:00 run A'")
    parse_at(words[0])
    out: dict[str, Any] = {"at": words[0]}
    verb, rest = words[1], words[2:]
    if verb in _STATES - {"running", "changeover"}:
        out.update(action="state", state=verb)
    elif verb in ("run", "running"):
        out["action"] = "run"
        if rest and rest[0] not in ("order", "reason", "for"):
            out["product"] = rest.pop(0)
    elif verb == "break":
        out["action"] = "break"
        if not rest:
            raise ValueError(f"{text!r}: a break needs a duration, e.g. '10:00 break 15m'")
        out["for"] = rest.pop(0)
    elif verb == "changeover":
        out["action"] = "changeover"
        if rest and rest[0] == "to":
            rest.pop(0)
            if not rest:
                raise ValueError(f"{text!r}: 'to' needs a product")
            out["product"] = rest.pop(0)
    elif verb in ("end", "reset_counters"):
        out["action"] = verb
    else:
        raise ValueError(
            f"{text!r}: unknown action {verb!r}; use run, break, changeover, reset_counters, "
            f"end or a state ({', '.join(sorted(_STATES - {'running'}))})"
        )
    while rest:
        key = rest.pop(0)
        if key not in ("reason", "order", "for") or not rest:
            raise ValueError(
                f"{text!r}: expected 'reason N', 'order ID' or 'for DURATION', got {key!r}"
            )
        out[key] = rest.pop(0)
    return out


def nominal_offsets_s(entries: list[TimelineEntry]) -> list[float]:
    """Seconds of each entry after the first, ignoring DST (for validation)."""
    out: list[float] = []
    day = 0
    previous_clock: float | None = None
    first_clock: float | None = None
    for entry in entries:
        kind, seconds = parse_at(entry.at)
        if kind == "offset":
            out.append(seconds)
            continue
        if previous_clock is not None and seconds < previous_clock:
            day += 1
        previous_clock = seconds
        if first_clock is None:
            first_clock = seconds - (out[-1] if out else 0.0)
        out.append(day * 86400 + seconds - first_clock)
    return out


def timeline_overlaps(entries: list[TimelineEntry]) -> list[str]:
    """Messages for entries whose 'for' window runs into the next entry."""
    offsets = nominal_offsets_s(entries)
    problems = []
    for i, entry in enumerate(entries[:-1]):
        if offsets[i + 1] < offsets[i]:
            problems.append(f"timeline entry {i + 1} at {entries[i + 1].at} is before entry {i}")
        if entry.for_s is not None and offsets[i] + entry.for_s > offsets[i + 1]:
            problems.append(
                f"timeline entry {i} at {entry.at} lasts {entry.for_s:g}s and runs into "
                f"entry {i + 1} at {entries[i + 1].at}"
            )
    return problems
