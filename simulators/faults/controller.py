"""Apply fault commands to the running faces and record them in the ground truth."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from simulators.errors import FaultError
from simulators.faults.commands import (
    BadStatus,
    Clear,
    CounterReset,
    DropConnections,
    FaultCommand,
    Hang,
    Restart,
    Slow,
)
from simulators.faults.state import BadTag, FaceName

if TYPE_CHECKING:
    from simulators.runtime import Face, Simulation

log = logging.getLogger("lineside.sim.faults")


class FaultController:
    def __init__(self, sim: Simulation, faces: list[Face]) -> None:
        self._sim = sim
        self._faces = faces
        self._pending: set[asyncio.Task[Any]] = set()

    def faces_for(self, face: FaceName) -> list[Face]:
        chosen = [f for f in self._faces if face.covers(f.name)]
        if not chosen:
            running = ", ".join(f.name.value for f in self._faces) or "none"
            raise FaultError(f"face {face.value!r} is not running (running: {running})")
        return chosen

    def validate(self, command: FaultCommand) -> None:
        """Raise FaultError for names that do not exist, before anything happens."""
        machine = getattr(command, "machine", None)
        if machine is not None and machine not in self._sim.machines:
            known = ", ".join(sorted(self._sim.machines))
            raise FaultError(f"unknown machine {machine!r}; machines: {known}")
        if isinstance(command, BadStatus):
            names = {t.name for t in self._sim.tags[command.machine] if not t.is_command}
            if command.tag not in names:
                raise FaultError(
                    f"machine {command.machine!r} has no tag {command.tag!r}; "
                    f"tags: {', '.join(sorted(names))}"
                )
        face = getattr(command, "face", None)
        if face is not None:
            self.faces_for(face)

    async def submit(self, command: FaultCommand) -> dict[str, Any]:
        """Validate, then apply now or schedule after ``after_s``."""
        self.validate(command)
        if command.after_s > 0:
            task = asyncio.create_task(self._later(command))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return {"scheduled": command.fault, "after_s": command.after_s}
        return await self.apply(command)

    async def _later(self, command: FaultCommand) -> None:
        await asyncio.sleep(command.after_s)
        try:
            await self.apply(command)
        except Exception:  # a scheduled fault must not kill the simulator
            log.exception("scheduled fault failed fault=%s", command.fault)

    async def apply(self, command: FaultCommand) -> dict[str, Any]:
        params = command.model_dump(mode="json", exclude={"fault", "after_s"})
        self._sim.record_fault(command.fault, **params)
        log.warning("fault=%s %s", command.fault, " ".join(f"{k}={v}" for k, v in params.items()))
        now = time.monotonic()
        if isinstance(command, DropConnections):
            closed = 0
            for face in self.faces_for(command.face):
                closed += await face.drop_connections()
            return {"applied": command.fault, "connections_closed": closed}
        if isinstance(command, Hang):
            for face in self.faces_for(command.face):
                face.faults.hang_until_mono = now + command.seconds
            return {"applied": command.fault, "seconds": command.seconds}
        if isinstance(command, Slow):
            for face in self.faces_for(command.face):
                face.faults.delay_s = command.delay_ms / 1000.0
                face.faults.delay_until_mono = (
                    now + command.seconds if command.seconds is not None else None
                )
            return {"applied": command.fault, "delay_ms": command.delay_ms}
        if isinstance(command, Restart):
            for face in self.faces_for(command.face):
                await face.restart(
                    shift_namespace=command.shift_namespace, downtime_s=command.downtime_s
                )
            return {"applied": command.fault}
        if isinstance(command, BadStatus):
            until = now + command.seconds if command.seconds is not None else None
            for face in self._faces:
                face.faults.bad_tags[(command.machine, command.tag)] = BadTag(
                    command.opcua_status, command.modbus_exception, until
                )
            return {"applied": command.fault, "machine": command.machine, "tag": command.tag}
        if isinstance(command, CounterReset):
            self._sim.reset_counters(command.machine, cause="fault")
            return {"applied": command.fault, "machine": command.machine}
        if isinstance(command, Clear):
            for face in self.faces_for(command.face):
                face.faults.clear()
            return {"applied": command.fault}
        raise FaultError(f"unsupported fault {command.fault!r}")  # pragma: no cover

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        out: dict[str, Any] = {}
        for face in self._faces:
            state = face.faults
            out[face.name.value] = {
                "hang_remaining_s": round(state.hang_remaining_s(now), 3),
                "delay_ms": round(state.response_delay_s(now) * 1000, 3),
                "bad_tags": [
                    {
                        "machine": m,
                        "tag": t,
                        "opcua_status": b.opcua_status,
                        "modbus_exception": b.modbus_exception,
                    }
                    for (m, t), b in state.bad_tags.items()
                ],
            }
        out["scheduled"] = len(self._pending)
        return out

    async def cancel_pending(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
