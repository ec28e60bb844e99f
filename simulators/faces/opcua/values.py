"""Writing model values (and bad-status faults) into the served variables.

``apply()`` is synchronous and on the hot path (10k changes/s in the load scenario):
it builds one DataValue per change (:mod:`.data_values`) and stores it in the node's
attribute holder directly. Only nodes that a client monitors have data-change
callbacks; those are run by one background task in order, so reads see a new value
at once and subscribers get it within a tick (synchronously for the common monitored
item, see :mod:`.datachange`; asyncua's coroutine is awaited for the others).

A bad-status fault replaces a variable's DataValue by one with the fault's status
code, no value and the simulated time of the fault as SourceTimestamp; that is what
a PLC shows for a failed sensor, and reads and subscriptions both see it. Model
updates that arrive meanwhile are remembered, not served. When the fault ends the
last model value comes back (its own SourceTimestamp, a new ServerTimestamp), so a
subscriber sees Bad -> Good. A status name that is not Bad (e.g. an Uncertain code)
is served with the last value instead of none.

``source_time`` maps a simulated time to the SourceTimestamp served: by default the
simulated time itself; ``plc-sim run --wall-timestamps`` maps it to the wall clock, so
an accelerated run still stamps its values "now" (the demo needs events on one clock
for OPC UA and Modbus, and the collector refuses events far in the future).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import ua
from asyncua.server.address_space import AttributeValue

from simulators.faces.opcua.address_space import ServedVariable
from simulators.faces.opcua.data_values import good_scalar_value
from simulators.faces.opcua.datachange import enqueue_datachange
from simulators.faults.state import FaultState
from simulators.runtime import TagUpdate

log = logging.getLogger("lineside.sim.opcua")

_Notification = tuple[AttributeValue, ua.DataValue]


class ValueWriter:
    """Serves model values and bad-status faults for one running server."""

    def __init__(
        self,
        variables: dict[tuple[str, str], ServedVariable],
        faults: Callable[[], FaultState],
        sim_now: Callable[[], datetime],
        loop: asyncio.AbstractEventLoop,
        source_time: Callable[[datetime], datetime] | None = None,
    ) -> None:
        self._variables = variables
        self._source_time = source_time or _same_time
        self._faults = faults
        self._sim_now = sim_now
        self._loop = loop
        self._pending: deque[list[_Notification]] = deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._faulted: dict[tuple[str, str], str] = {}
        self._unknown_status: set[str] = set()

    def apply(self, updates: list[TagUpdate]) -> None:
        """Serve the changed model values (hot path; never awaits)."""
        server_now = datetime.now(UTC)
        variables = self._variables
        notify: list[_Notification] = []
        for update in updates:
            tag = update.tag
            var = variables.get((tag.machine, tag.name))
            if var is None:
                continue
            value = update.value
            data = good_scalar_value(
                var.convert(value.value),
                var.variant_type,
                self._source_time(value.changed_at),
                server_now,
            )
            var.good = data
            if var.fault_status is None:
                attribute = var.attribute
                attribute.value = data
                if attribute.datachange_callbacks:
                    notify.append((attribute, data))
        if notify:
            self._notify(notify)
        self.sync_faults()

    def sync_faults(self) -> None:
        """Start and end bad-status faults so the served data matches FaultState."""
        faults = self._faults()
        if not faults.bad_tags and not self._faulted:
            return
        wanted: dict[tuple[str, str], str] = {}
        for machine, tag in list(faults.bad_tags):
            fault = faults.bad_tag(machine, tag)  # also expires timed faults
            if fault is not None and (machine, tag) in self._variables:
                wanted[(machine, tag)] = fault.opcua_status
        if wanted == self._faulted:
            return
        server_now = datetime.now(UTC)
        notify: list[_Notification] = []
        for key in [k for k in self._faulted if k not in wanted]:
            var = self._variables[key]
            var.fault_status = None
            if var.good is not None:
                self._serve(var, dataclasses.replace(var.good, ServerTimestamp=server_now), notify)
            del self._faulted[key]
            log.info("event=opcua_bad_status_cleared machine=%s tag=%s", *key)
        for key, status in wanted.items():
            if self._faulted.get(key) == status:
                continue
            var = self._variables[key]
            var.fault_status = status
            self._serve(var, self._fault_value(var, status, server_now), notify)
            self._faulted[key] = status
            log.info("event=opcua_bad_status machine=%s tag=%s status=%s", *key, status)
        if notify:
            self._notify(notify)

    def close(self) -> None:
        """Drop queued notifications (the server is going away)."""
        self._pending.clear()
        if self._drain_task is not None:
            self._drain_task.cancel()
            self._drain_task = None

    def _fault_value(self, var: ServedVariable, status: str, server_now: datetime) -> ua.DataValue:
        code = getattr(ua.StatusCodes, status, None)
        if not isinstance(code, int):
            if status not in self._unknown_status:
                self._unknown_status.add(status)
                log.warning("event=opcua_unknown_status status=%s served=BadInternalError", status)
            code = ua.StatusCodes.BadInternalError
        status_code = ua.StatusCode(code)
        value = None
        if not status_code.is_bad() and var.good is not None:
            value = var.good.Value
        source_ts = self._source_time(self._sim_now())
        return ua.DataValue(value, status_code, source_ts, server_now)

    def _serve(self, var: ServedVariable, data: ua.DataValue, notify: list[_Notification]) -> None:
        var.attribute.value = data
        if var.attribute.datachange_callbacks:
            notify.append((var.attribute, data))

    def _notify(self, batch: list[_Notification]) -> None:
        self._pending.append(batch)
        if self._drain_task is None:
            self._drain_task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        """Run the subscriptions' data-change callbacks in the order values changed."""
        try:
            while self._pending:
                for attribute, data in self._pending.popleft():
                    for handle, callback in list(attribute.datachange_callbacks.items()):
                        try:
                            if not enqueue_datachange(callback, handle, data):
                                await callback(handle, data)
                        except Exception:
                            log.exception("event=opcua_datachange_callback_failed")
        finally:
            self._drain_task = None


def _same_time(sim_time: datetime) -> datetime:
    return sim_time
