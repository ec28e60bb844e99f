"""The Modbus source: polls one connection (TCP or RTU) and emits samples.

One loop per connection, one request in flight (Modbus allows no more on a serial
bus, and pymodbus' async client serialises anyway). Each poll group (tags sharing an
interval) is due at ``origin + tick * interval``; an overrun poll is followed by the
latest due tick at once and older ticks are skipped (no bursts, no drift).

What goes wrong, and what the source does about it:

* exception response (e.g. 2 illegal address, 4 device failure): the tags of that
  request get a BAD sample ``ModbusException(code)``; other requests carry on.
* no answer (timeout) or gateway exceptions 0x0A/0x0B: BAD ``Timeout`` /
  ``ModbusException(11)`` for that request, and a failure on the device's circuit
  breaker (one per unit id). While a breaker is open the device's requests are
  skipped, so a dead slave on a shared RTU bus costs the others nothing; its tags get
  one BAD ``DeviceUnavailable`` sample when it opens. After ``breaker_reset_s`` one
  trial request decides whether it closes again.
* bytes arrived but no matching answer (transaction id mismatch, garbled or foreign
  frame), or a response of the wrong length: the stream is out of sync, so the
  connection is reset.
* connection lost or refused: ``ConnectionChange(connected=False)`` once, then
  reconnects with jittered exponential backoff (tenacity) until it works or ``stop``
  is set, then ``ConnectionChange(connected=True)``. On TCP pymodbus itself closes a
  connection after 4 unanswered requests in a row; that is reported the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pybreaker
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, wait_exponential_jitter

from edge_agent.config.models import (
    Connection,
    ModbusAddress,
    ModbusConnection,
    ModbusTable,
    PollSampling,
    Tag,
)
from edge_agent.samples import ConnectionChange, Quality, Sample
from edge_agent.sources import Emit
from edge_agent.sources.modbus.decode import BIT_TABLES, DecodeError, SpanDecoder, span_decoder
from edge_agent.sources.modbus.planner import (
    PlanError,
    PlannedTag,
    PollGroup,
    ReadLimits,
    ReadRequest,
    next_tick,
    plan_reads,
)
from edge_agent.status import BreakerState, DeviceStatus

log = logging.getLogger("lineside.agent.modbus")

_READ_FUNCTIONS = {
    ModbusTable.COIL: "read_coils",  # function 1
    ModbusTable.DISCRETE_INPUT: "read_discrete_inputs",  # 2
    ModbusTable.HOLDING_REGISTER: "read_holding_registers",  # 3
    ModbusTable.INPUT_REGISTER: "read_input_registers",  # 4
}
GATEWAY_CODES = frozenset({0x0A, 0x0B})  # path unavailable, target failed to respond
STATUS_GOOD = "Good"
STATUS_TIMEOUT = "Timeout"
STATUS_UNAVAILABLE = "DeviceUnavailable"

Client = AsyncModbusTcpClient | AsyncModbusSerialClient
Item = Sample | ConnectionChange


class _ConnectionProblem(Exception):
    """The connection is unusable (lost, or its byte stream out of sync)."""


class _DeviceSilent(Exception):
    """The device did not answer (counts against its circuit breaker)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class _ConnectFailed(Exception):
    pass


@dataclass(eq=False, slots=True)
class _Read:
    """A planned request with its compiled decoder and last status (identity hashed)."""

    request: ReadRequest
    decoder: SpanDecoder
    status: str = STATUS_GOOD


@dataclass
class ModbusStats:
    """Counters since start, for metrics and benchmarks."""

    requests: int = 0
    values: int = 0
    exception_responses: int = 0
    timeouts: int = 0
    skipped_requests: int = 0
    skipped_ticks: int = 0
    connects: int = 0
    resets: int = 0


class ModbusSource:
    """Polls ``tags`` (full ids ``"equipment.tag"``) over one Modbus connection."""

    def __init__(
        self,
        connection: Connection,
        tags: list[tuple[str, Tag]],
        *,
        breaker_fail_max: int = 3,
        breaker_reset_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if connection.modbus is None:
            raise PlanError(f"connection {connection.id!r} is not a Modbus connection")
        self.connection_id = connection.id
        self.settings: ModbusConnection = connection.modbus
        self.groups: list[PollGroup] = plan_reads(
            (_planned(tag_id, tag) for tag_id, tag in tags), ReadLimits.of(self.settings)
        )
        self.stats = ModbusStats()
        self._reads = [
            [_Read(r, span_decoder(r.table, r.slots, r.count)) for r in group.requests]
            for group in self.groups
        ]
        self._unit_tags: dict[int, list[str]] = {}
        for group in self.groups:
            for request in group.requests:
                tags_of_unit = self._unit_tags.setdefault(request.unit_id, [])
                tags_of_unit.extend(slot.tag for slot in request.slots)
        self._breakers = {
            unit: pybreaker.CircuitBreaker(
                fail_max=breaker_fail_max,
                reset_timeout=breaker_reset_s,
                exclude=[_ConnectionProblem, asyncio.CancelledError],
                throw_new_error_on_trip=False,
                name=f"{connection.id}/unit-{unit}",
            )
            for unit in sorted(self._unit_tags)
        }
        self._unavailable: set[int] = set()
        self._unit_errors: dict[int, int] = dict.fromkeys(self._unit_tags, 0)
        self._unit_values: dict[int, int] = dict.fromkeys(self._unit_tags, 0)
        self._unit_last_error: dict[int, str | None] = dict.fromkeys(self._unit_tags)
        self._last_round_trip_s: float | None = None
        self._disconnect_reason: str | None = None
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._client: Client | None = None
        self._reported: bool | None = None  # last connection state emitted
        self._bytes_received = False
        self._last_request_end = 0.0

    # -- public ---------------------------------------------------------------------------

    def device_state(self, unit_id: int) -> str:
        """The unit's circuit breaker: ``closed``, ``open`` or ``half-open``."""
        return str(self._breakers[unit_id].current_state)

    def status(self) -> list[DeviceStatus]:
        """One entry per unit id (cheap; safe to call from another thread)."""
        linked = self._reported is True
        return [
            DeviceStatus(
                connection=self.connection_id,
                device=f"unit-{unit}",
                protocol="modbus",
                connected=linked and unit not in self._unavailable,
                breaker=_BREAKER_STATES.get(str(breaker.current_state), "closed"),
                last_round_trip_s=self._last_round_trip_s,
                read_errors_total=self._unit_errors[unit],
                values_total=self._unit_values[unit],
                last_error=self._unit_last_error[unit] if linked else self._disconnect_reason,
            )
            for unit, breaker in self._breakers.items()
        ]

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; connection problems never end the loop."""
        loop = asyncio.get_running_loop()
        origin = loop.time()
        ticks = [0] * len(self.groups)
        log.info(
            "modbus source starting connection=%s endpoint=%s groups=%d requests=%d",
            self.connection_id,
            self._endpoint(),
            len(self.groups),
            sum(len(reads) for reads in self._reads),
        )
        if not self.groups:  # nothing to poll: idle like a source with nothing to say
            await stop.wait()
            return
        try:
            while not stop.is_set():
                index = min(range(len(ticks)), key=lambda i: ticks[i] * self.groups[i].interval_s)
                group = self.groups[index]
                delay = origin + ticks[index] * group.interval_s - loop.time()
                if delay > 0 and await _stopped_within(stop, delay):
                    break
                if self._client is None and not await self._connect(emit, stop):
                    break
                await self._poll(self._reads[index], emit)
                new_tick = next_tick(ticks[index], loop.time() - origin, group.interval_s)
                self.stats.skipped_ticks += new_tick - ticks[index] - 1
                ticks[index] = new_tick
                if self.settings.close_after_poll:
                    self._close_client()
        finally:
            self._close_client()
            log.info("modbus source stopped connection=%s", self.connection_id)

    # -- connection -----------------------------------------------------------------------

    def _endpoint(self) -> str:
        if self.settings.tcp is not None:
            return f"modbus-tcp://{self.settings.tcp.host}:{self.settings.tcp.port}"
        assert self.settings.rtu is not None
        rtu = self.settings.rtu
        framing = f"{rtu.bytesize}{rtu.parity}{rtu.stopbits}"
        return f"modbus-rtu://{rtu.port} @{rtu.baudrate} {framing}"

    def _new_client(self) -> Client:
        # retries and reconnects are the source's business: pymodbus must not hide them
        common: dict[str, Any] = {
            "timeout": self.settings.timeout_s,
            "retries": 0,
            "reconnect_delay": 0,
            "trace_packet": self._trace_packet,
        }
        if self.settings.tcp is not None:
            tcp = self.settings.tcp
            return AsyncModbusTcpClient(tcp.host, port=tcp.port, **common)
        assert self.settings.rtu is not None
        rtu = self.settings.rtu
        return AsyncModbusSerialClient(
            rtu.port,
            framer=FramerType.RTU,
            baudrate=rtu.baudrate,
            parity=rtu.parity,
            stopbits=rtu.stopbits,
            bytesize=rtu.bytesize,
            **common,
        )

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._bytes_received = True
        return data

    def _report(self, emit: Emit, connected: bool, detail: str) -> None:
        """Emit a ConnectionChange when the known state changes (once per transition)."""
        if self._reported is connected:
            return
        self._reported = connected
        self._disconnect_reason = None if connected else detail
        emit([ConnectionChange(self.connection_id, connected, datetime.now(UTC), detail)])
        if connected:
            log.info("modbus connected connection=%s endpoint=%s", self.connection_id, detail)
        else:
            log.warning("modbus disconnected connection=%s reason=%r", self.connection_id, detail)

    async def _connect(self, emit: Emit, stop: asyncio.Event) -> bool:
        """Connect, retrying with backoff; False only when ``stop`` was set meanwhile."""
        initial_s, max_s = self._backoff
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
            retry=retry_if_exception_type(_ConnectFailed),
            stop=lambda _state: stop.is_set(),
            sleep=partial(_stopped_within, stop),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if stop.is_set():
                        return False
                    await self._open_client(emit, stop)
        except RetryError:
            return False
        return self._client is not None

    async def _open_client(self, emit: Emit, stop: asyncio.Event) -> None:
        client = self._new_client()
        try:
            connected = await client.connect()
        except OSError as exc:  # e.g. a serial device that vanished
            connected, reason = False, str(exc)
        else:
            reason = "connect failed"
        if not connected:
            client.close()
            self._report(emit, False, f"{self._endpoint()}: {reason}")
            log.debug("modbus connect failed connection=%s reason=%r", self.connection_id, reason)
            raise _ConnectFailed(reason)
        self.stats.connects += 1
        if self.settings.pause_after_connect_s > 0:
            await _stopped_within(stop, self.settings.pause_after_connect_s)
        self._client = client
        self._report(emit, True, self._endpoint())

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- polling --------------------------------------------------------------------------

    async def _poll(self, reads: list[_Read], emit: Emit) -> None:
        # each request's samples go as soon as they are read, not at the end of the poll:
        # a poll of many requests takes tens of ms, and the first ones would wait for it
        problem: _ConnectionProblem | None = None
        try:
            for read in reads:
                batch: list[Item] = []
                try:
                    await self._read(read, batch)
                finally:
                    if batch:
                        emit(batch)
        except _ConnectionProblem as exc:
            problem = exc
        if problem is not None:
            self._close_client()
            self._report(emit, False, str(problem))

    async def _read(self, read: _Read, batch: list[Item]) -> None:
        request = read.request
        unit = request.unit_id
        breaker = self._breakers[unit]
        try:
            with breaker.calling():
                response = await self._execute(request)
        except pybreaker.CircuitBreakerError:
            self.stats.skipped_requests += 1
        except _DeviceSilent as exc:
            self._bad(read, exc.status, batch)
        else:
            received = datetime.now(UTC)
            if response.isError():
                self.stats.exception_responses += 1
                self._bad(read, f"ModbusException({response.exception_code})", batch)
            else:
                self._good(read, response, received, batch)
        self._track_device(unit, breaker, batch)

    async def _execute(self, request: ReadRequest) -> ModbusPDU:
        """One request on the wire; raises _DeviceSilent or _ConnectionProblem."""
        client = self._client
        if client is None:
            raise _ConnectionProblem("not connected")
        loop = asyncio.get_running_loop()
        gap_s = self._last_request_end + self.settings.gap_between_requests_s - loop.time()
        if gap_s > 0:
            await asyncio.sleep(gap_s)
        self._bytes_received = False
        self.stats.requests += 1
        started = loop.time()
        try:
            read_function = getattr(client, _READ_FUNCTIONS[request.table])
            response = await read_function(
                request.start, count=request.count, device_id=request.unit_id
            )
        except ConnectionException as exc:
            raise _ConnectionProblem(f"connection lost: {exc.string}") from exc
        except ModbusIOException as exc:
            if not client.connected:
                raise _ConnectionProblem(f"connection lost: {exc.message}") from exc
            if self._bytes_received:
                self.stats.resets += 1
                raise _ConnectionProblem(
                    f"response out of sync ({request.describe()}): transaction id mismatch "
                    "or garbled frame; resetting the connection"
                ) from exc
            self.stats.timeouts += 1
            raise _DeviceSilent(STATUS_TIMEOUT) from exc
        finally:
            self._last_request_end = loop.time()
        self._last_round_trip_s = self._last_request_end - started
        if response.isError() and response.exception_code in GATEWAY_CODES:
            raise _DeviceSilent(f"ModbusException({response.exception_code})")
        return response

    def _good(
        self, read: _Read, response: ModbusPDU, received: datetime, batch: list[Item]
    ) -> None:
        request = read.request
        words = response.bits if request.table in BIT_TABLES else response.registers
        try:
            values = read.decoder.decode(words)
        except DecodeError as exc:
            self.stats.resets += 1
            raise _ConnectionProblem(f"garbled response ({request.describe()}): {exc}") from exc
        self.stats.values += len(values)
        self._unit_values[request.unit_id] += len(values)
        if read.status != STATUS_GOOD:
            self._note_status(read, STATUS_GOOD)
        good = Quality.GOOD
        batch.extend(
            Sample(slot.tag, value, good, STATUS_GOOD, None, None, received)
            for slot, value in zip(request.slots, values, strict=True)
        )

    def _bad(self, read: _Read, status: str, batch: list[Item]) -> None:
        unit = read.request.unit_id
        self._unit_errors[unit] += 1
        self._unit_last_error[unit] = f"{read.request.describe()}: {status}"
        if read.status != status:
            self._note_status(read, status)
        received = datetime.now(UTC)
        batch.extend(
            Sample(slot.tag, None, Quality.BAD, status, None, None, received)
            for slot in read.request.slots
        )

    def _note_status(self, read: _Read, status: str) -> None:
        """Log a request's status when it changes (not every poll)."""
        read.status = status
        level = logging.INFO if status == STATUS_GOOD else logging.WARNING
        description = read.request.describe()
        log.log(
            level, "modbus read connection=%s %s status=%s", self.connection_id, description, status
        )

    def _track_device(
        self, unit: int, breaker: pybreaker.CircuitBreaker, batch: list[Item]
    ) -> None:
        state = breaker.current_state
        if state == pybreaker.STATE_OPEN and unit not in self._unavailable:
            self._unavailable.add(unit)
            message = "modbus device unavailable connection=%s unit=%d retry_after_s=%.1f"
            log.warning(message, self.connection_id, unit, breaker.reset_timeout)
            received = datetime.now(UTC)
            batch.extend(
                Sample(tag, None, Quality.BAD, STATUS_UNAVAILABLE, None, None, received)
                for tag in self._unit_tags[unit]
            )
        elif state == pybreaker.STATE_CLOSED and unit in self._unavailable:
            self._unavailable.discard(unit)
            log.info("modbus device available connection=%s unit=%d", self.connection_id, unit)


_BREAKER_STATES: dict[str, BreakerState] = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half-open",
}


def _planned(tag_id: str, tag: Tag) -> PlannedTag:
    if not isinstance(tag.address, ModbusAddress):
        raise PlanError(f"tag {tag_id!r}: a Modbus connection needs a Modbus address mapping")
    if not isinstance(tag.sampling, PollSampling):
        raise PlanError(f"tag {tag_id!r}: Modbus tags are polled: use sampling mode poll")
    return PlannedTag(tag_id, tag.address, tag.sampling.interval_s)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True as soon as ``stop`` is set (no busy waiting)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
