"""Per-request behaviour of the Modbus face: faults, unknown units, write echoes.

pymodbus 3.16 decodes a request in ``ServerRequestHandler.callback_data`` and then
runs ``request.datastore_update(context, device_id)``. :class:`FaultAwareHandler`
replaces the step in between: every decoded request gets its own task that asks
:class:`RequestResponder` for the response, so the fault switches in
:class:`~simulators.faults.state.FaultState` are consulted on every request:

* hang: while ``hang_remaining_s() > 0`` requests are read and dropped, nothing is
  sent and the connection stays open (the client times out). A request that
  arrived before the hang but whose (slowed) response falls into it is dropped too.
* slow: each response is sent ``response_delay_s()`` seconds late.
* bad tag: a read (function 1-4) whose range covers a bad tag's registers or bits
  gets an exception response with the configured code.

Unknown unit ids: Modbus TCP answers exception 0x0B (gateway target device failed
to respond, pymodbus' default); RTU stays silent, as a device on a shared bus must.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import WriteSingleCoilRequest
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.transaction import TransactionManager

from simulators.faces.modbus.store import READ_TABLES, RegisterStore
from simulators.faults.state import FaultState

log = logging.getLogger("lineside.sim.modbus")


class RequestResponder:
    """Turns one decoded request into a response PDU, or None for silence."""

    def __init__(self, store: RegisterStore, faults: FaultState, serial: bool) -> None:
        self.store = store
        self.faults = faults
        self.serial = serial

    def hanging(self) -> bool:
        return self.faults.hang_remaining_s() > 0

    async def respond(self, request: ModbusPDU) -> ModbusPDU | None:
        """The response to send for ``request`` (None: send nothing)."""
        if self.hanging():
            return None
        unit = request.dev_id
        if unit not in self.store.units:
            if self.serial:
                return None
            return ExceptionResponse(request.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
        delay_s = self.faults.response_delay_s()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
            if self.hanging():
                return None
        code = self.bad_tag_exception(request)
        if code is not None:
            return ExceptionResponse(request.function_code, code)
        try:
            response = await request.datastore_update(self.store, unit)  # type: ignore[arg-type]
        except Exception:
            log.exception("modbus request failed unit=%d function=%d", unit, request.function_code)
            return ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)
        if isinstance(request, WriteSingleCoilRequest) and not response.isError():
            # the spec echoes the request; pymodbus would echo the read-back coil (0)
            response.bits = request.bits
        return response

    def bad_tag_exception(self, request: ModbusPDU) -> int | None:
        """The exception code of an active bad-tag fault the read covers, if any."""
        if not self.faults.bad_tags:
            return None
        table = READ_TABLES.get(request.function_code)
        if table is None:
            return None
        machine = self.store.units[request.dev_id].machine
        candidates = [key for key in list(self.faults.bad_tags) if key[0] == machine]
        covered = self.store.covering_tags(
            request.dev_id, table, request.address, request.count, candidates
        )
        for machine_name, tag_name in covered:
            fault = self.faults.bad_tag(machine_name, tag_name)
            if fault is not None:
                return fault.modbus_exception
        return None


class FaultAwareHandler(ServerRequestHandler):
    """One client connection (TCP) or the serial line (RTU)."""

    def __init__(self, owner: Any, responder: RequestResponder) -> None:
        super().__init__(owner, owner.trace_packet, owner.trace_pdu, owner.trace_connect)
        self._responder = responder
        self._pending: set[asyncio.Task[None]] = set()

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        """Decode a request and answer it in its own task (keeps each request's PDU)."""
        try:
            used_len = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:  # undecodable function code
            if not self._responder.hanging():
                response = ExceptionResponse(
                    exc.fcode or 0,
                    ExcCodes.ILLEGAL_FUNCTION,
                    device_id=exc.dev_id,
                    transaction=exc.transaction_id,
                )
                self.server_send(response, addr)
            return len(data)
        request, self.last_pdu = self.last_pdu, None
        if request is not None:
            task = self.loop.create_task(self._answer(request, addr))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return used_len

    async def _answer(self, request: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        response = await self._responder.respond(request)
        if response is None or not self.transport:
            return
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        self.server_send(response, addr)

    def callback_disconnected(self, exc: Exception | None) -> None:
        for task in list(self._pending):
            task.cancel()
        super().callback_disconnected(exc)
