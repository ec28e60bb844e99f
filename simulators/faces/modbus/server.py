"""The Modbus face: one pymodbus server (TCP or RTU), one unit id per machine.

The register map is the tag catalogue's (``simulators/tags.py``); values live in a
:class:`~simulators.faces.modbus.store.RegisterStore` that outlives server restarts.
Requests are answered by :class:`~simulators.faces.modbus.handler.FaultAwareHandler`,
which consults ``self.faults`` on every request (hang, slow, bad tag).

Wire behaviour in short:

* reads inside a table's map return the value (unused addresses 0); reads past the
  map: exception 2 (illegal data address);
* writing 1 to coil 0 resets that machine's counters (truth cause ``command``); the
  coil reads back 0; any register write (function 6, 16, 22, 23): exception 2;
* unknown unit id: exception 0x0B on TCP, no response on RTU (unit 0, the RTU
  broadcast address, is not served either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.errors import SimulatorError
from simulators.faces.modbus.handler import FaultAwareHandler, RequestResponder
from simulators.faces.modbus.store import RegisterStore
from simulators.faults.state import FaceName, FaultState
from simulators.runtime import Simulation, TagUpdate
from simulators.tags import value_of

log = logging.getLogger("lineside.sim.modbus")

_CLOSE_TIMEOUT_S = 2.0


class ModbusFaceError(SimulatorError):
    """The Modbus face could not start (port in use, serial device missing...)."""


def _placeholder_device() -> SimDevice:
    # pymodbus' server constructor insists on a datastore object; the face replaces it
    # with its RegisterStore, which implements the same async_getValues/async_setValues.
    return SimDevice(0, simdata=SimData(0, datatype=DataType.REGISTERS))


class _FaceTcpServer(ModbusTcpServer):
    def __init__(self, responder: RequestResponder, address: tuple[str, int]) -> None:
        super().__init__(_placeholder_device(), address=address)
        self.context = responder.store  # type: ignore[assignment]
        self.responder = responder

    def callback_new_connection(self) -> FaultAwareHandler:
        return FaultAwareHandler(self, self.responder)


class _FaceSerialServer(ModbusSerialServer):
    def __init__(self, responder: RequestResponder, port: str, baudrate: int) -> None:
        super().__init__(
            _placeholder_device(),
            framer=FramerType.RTU,
            port=port,
            baudrate=baudrate,
            bytesize=8,
            parity="N",
            stopbits=1,
        )
        self.context = responder.store  # type: ignore[assignment]
        self.responder = responder

    def callback_new_connection(self) -> FaultAwareHandler:
        return FaultAwareHandler(self, self.responder)


def unit_ranges(unit_ids: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    spans: list[list[int]] = []
    for unit in sorted(unit_ids):
        if spans and unit == spans[-1][1] + 1:
            spans[-1][1] = unit
        else:
            spans.append([unit, unit])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


class ModbusFace:
    """Serves every machine of ``sim`` over Modbus TCP, or RTU with ``serial_port``.

    Wire it to the simulation with ``sim.subscribe(face.apply)``; the face fills its
    registers from ``sim.current_values()`` when created. ``port=0`` picks a free
    TCP port (see :attr:`port`); a restart keeps the port it got.
    """

    name: FaceName = FaceName.MODBUS

    def __init__(
        self,
        sim: Simulation,
        host: str = "127.0.0.1",
        port: int = 5020,
        faults: FaultState | None = None,
        serial_port: str | None = None,
        baudrate: int = 19200,
    ) -> None:
        self.sim = sim
        self.host = host
        self.serial_port = serial_port
        self.baudrate = baudrate
        self._port = port
        self.store = RegisterStore(sim.machine_configs.values(), sim.tags, self._reset_counters)
        self._responder = RequestResponder(
            self.store, faults if faults is not None else FaultState(), serial_port is not None
        )
        self._server: _FaceTcpServer | _FaceSerialServer | None = None
        self.store.apply(sim.current_values())

    # -- Face protocol -----------------------------------------------------------------

    @property
    def faults(self) -> FaultState:
        return self._responder.faults

    @faults.setter
    def faults(self, value: FaultState) -> None:
        self._responder.faults = value

    @property
    def port(self) -> int:
        """The TCP port served (the bound one when created with port 0)."""
        return self._port

    async def start(self) -> None:
        """Open the TCP listener or the serial device and start answering."""
        if self._server is not None:
            return
        self._server = await self._listen()

    async def stop(self) -> None:
        """Close the listener (or serial device) and every client connection."""
        server, self._server = self._server, None
        if server is None:
            return
        listener = server.transport
        await server.shutdown()
        if isinstance(listener, asyncio.Server):
            # bounded: a client that never reads could otherwise hold the close up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), timeout=_CLOSE_TIMEOUT_S)
        log.info("modbus face stopped endpoint=%s", self._endpoint())

    def apply(self, updates: list[TagUpdate]) -> None:
        """Write changed tag values into the registers (called after every step)."""
        self.store.apply(updates)

    async def drop_connections(self) -> int:
        """Close every TCP client connection; RTU has none to drop (returns 0)."""
        if self._server is None or self.serial_port is not None:
            return 0
        connections = list(self._server.active_connections.values())
        for connection in connections:
            # what pymodbus does when its listener closes: notify, then close
            connection.callback_disconnected(None)
            connection.close()
        log.info("modbus face dropped connections count=%d", len(connections))
        return len(connections)

    async def restart(self, *, shift_namespace: bool = False, downtime_s: float = 0.0) -> None:
        """Stop, wait ``downtime_s``, listen again on the same port/device.

        Clients must reconnect; register values are kept (and keep being updated).
        ``shift_namespace`` is an OPC UA notion and ignored here.
        """
        _ = shift_namespace
        await self.stop()
        if downtime_s > 0:
            await asyncio.sleep(downtime_s)
        self._server = await self._listen()

    def endpoints(self) -> list[str]:
        units = unit_ranges(list(self.store.units))
        return [f"{self._endpoint()} (unit ids {units})"]

    # -- internals ---------------------------------------------------------------------

    def _endpoint(self) -> str:
        if self.serial_port is not None:
            return f"modbus-rtu://{self.serial_port} @{self.baudrate} 8N1"
        return f"modbus-tcp://{self.host}:{self._port}"

    async def _listen(self) -> _FaceTcpServer | _FaceSerialServer:
        server: _FaceTcpServer | _FaceSerialServer
        if self.serial_port is not None:
            server = _FaceSerialServer(self._responder, self.serial_port, self.baudrate)
            where = f"serial device {self.serial_port}"
            fix = "check the device path and that no other program has it open"
        else:
            server = _FaceTcpServer(self._responder, (self.host, self._port))
            where = f"{self.host}:{self._port}"
            fix = "is another simulator running? choose another Modbus port"
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise ModbusFaceError(f"Modbus face cannot listen on {where}: {exc}; {fix}") from None
        if self.serial_port is None:
            self._port = _bound_port(server.transport, self._port)
        log.info(
            "modbus face listening endpoint=%s units=%s",
            self._endpoint(),
            unit_ranges(list(self.store.units)),
        )
        return server

    def _reset_counters(self, machine: str) -> None:
        """Coil 0 written with 1: the operator's counter reset, served at once."""
        log.info("modbus command reset_counters machine=%s", machine)
        self.sim.reset_counters(machine, "command")
        self.sim.step()  # every subscribed face serves the zeroed counters now...
        # ...and this one even when nobody wired sim.subscribe(face.apply)
        signals = self.sim.machines[machine].signals(self.sim.clock.now())
        self.store.apply(
            [
                TagUpdate(tag, value_of(tag, signals))
                for tag in self.sim.tags[machine]
                if tag.modbus is not None and not tag.is_command
            ]
        )


def _bound_port(listener: Any, fallback: int) -> int:
    sockets = getattr(listener, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    return fallback
