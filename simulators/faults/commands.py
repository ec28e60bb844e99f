"""Fault commands: one model for the control API, the CLI and tests.

The same command can be written as JSON (``POST /faults``) or as a one-line spec
for ``plc-sim run --fault``::

    drop [on opcua|modbus]
    hang 10s [on FACE]
    slow 200ms [for 60s] [on FACE]
    restart [shift-namespace] [downtime 5s] [on FACE]
    bad-status MACHINE TAG [status BadSensorFailure] [exception 4] [for 30s]
    counter-reset MACHINE
    clear

Any spec may start with ``after DURATION`` to schedule it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from asyncua import ua
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from simulators.errors import FaultError
from simulators.faults.state import FaceName
from simulators.scenario.durations import DurationS, parse_duration_s


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: DurationS = Field(0.0, description="Delay before the fault is applied")


class DropConnections(_Command):
    fault: Literal["drop_connections"] = "drop_connections"
    face: FaceName = FaceName.ALL


class Hang(_Command):
    fault: Literal["hang"] = "hang"
    seconds: DurationS = Field(gt=0)
    face: FaceName = FaceName.ALL


class Slow(_Command):
    fault: Literal["slow"] = "slow"
    delay_ms: float = Field(gt=0, le=60_000)
    seconds: DurationS | None = Field(None, gt=0, description="Until cleared when omitted")
    face: FaceName = FaceName.ALL


class Restart(_Command):
    fault: Literal["restart"] = "restart"
    face: FaceName = FaceName.ALL
    shift_namespace: bool = False
    downtime_s: DurationS = Field(0.0, ge=0, le=3600)


class BadStatus(_Command):
    fault: Literal["bad_status"] = "bad_status"
    machine: str
    tag: str
    opcua_status: str = "BadSensorFailure"
    modbus_exception: int = Field(4, ge=1, le=255)
    seconds: DurationS | None = Field(None, gt=0)

    @field_validator("opcua_status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        code = getattr(ua.StatusCodes, value, None)
        if not isinstance(code, int) or not value.startswith("Bad"):
            raise ValueError(
                f"{value!r} is not an OPC UA Bad status name (e.g. BadSensorFailure, "
                "BadCommunicationError, BadOutOfService)"
            )
        return value


class CounterReset(_Command):
    fault: Literal["counter_reset"] = "counter_reset"
    machine: str


class Clear(_Command):
    fault: Literal["clear"] = "clear"
    face: FaceName = FaceName.ALL


FaultCommand = Annotated[
    DropConnections | Hang | Slow | Restart | BadStatus | CounterReset | Clear,
    Field(discriminator="fault"),
]
FAULT_ADAPTER: TypeAdapter[FaultCommand] = TypeAdapter(FaultCommand)

_VERBS = {
    "drop": "drop_connections",
    "drop-connections": "drop_connections",
    "hang": "hang",
    "slow": "slow",
    "restart": "restart",
    "bad-status": "bad_status",
    "counter-reset": "counter_reset",
    "clear": "clear",
}


def parse_fault_spec(spec: str) -> FaultCommand:
    """Parse a one-line fault spec (see module docstring) into a command."""
    words = spec.split()
    data: dict[str, object] = {}
    try:
        if len(words) >= 2 and words[0] == "after":
            data["after_s"] = parse_duration_s(words[1])
            words = words[2:]
        if not words or words[0] not in _VERBS:
            raise FaultError(
                f"fault {spec!r}: start with one of {', '.join(sorted(_VERBS))} "
                "(optionally 'after DURATION' first)"
            )
        data["fault"] = _VERBS[words[0]]
        rest = words[1:]
        if data["fault"] == "hang":
            data["seconds"] = _take(rest, spec, "a duration, e.g. 'hang 10s'")
        elif data["fault"] == "slow":
            data["delay_ms"] = (
                parse_duration_s(_take(rest, spec, "a delay, e.g. 'slow 200ms'")) * 1000
            )
        elif data["fault"] in ("bad_status", "counter_reset"):
            data["machine"] = _take(rest, spec, "a machine name")
            if data["fault"] == "bad_status":
                data["tag"] = _take(rest, spec, "a tag name, e.g. TotalCount")
        while rest:
            key = rest.pop(0)
            if key == "shift-namespace":
                data["shift_namespace"] = True
            elif key in ("on", "for", "downtime", "status", "exception"):
                value = _take(rest, spec, f"a value after {key!r}")
                field = {
                    "on": "face",
                    "for": "seconds",
                    "downtime": "downtime_s",
                    "status": "opcua_status",
                    "exception": "modbus_exception",
                }[key]
                data[field] = value
            else:
                raise FaultError(f"fault {spec!r}: unexpected word {key!r}")
    except ValueError as exc:
        raise FaultError(f"fault {spec!r}: {exc}") from None
    try:
        return FAULT_ADAPTER.validate_python(data)
    except ValueError as exc:
        raise FaultError(f"fault {spec!r}: {_first_error(exc)}") from None


def _take(rest: list[str], spec: str, what: str) -> str:
    if not rest:
        raise FaultError(f"fault {spec!r}: expected {what}")
    return rest.pop(0)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"][1:]) or "fault"
        return f"{loc}: {first['msg']}"
    return str(exc)
