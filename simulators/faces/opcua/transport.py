"""Hang and slow-response faults inside asyncua's request processing.

asyncua accepts a connection with ``BinaryServer`` -> one ``OPCUAProtocol`` per
connection -> ``UaProcessor``, which parses requests and writes responses through
``transport.write``. Two hooks, both per connection:

* before a received message is processed, :meth:`FaultGate.before_request` waits while
  the face hangs. The connection stays open and the kernel keeps accepting bytes; no
  request (Hello, OpenSecureChannel, Read, Publish...) is answered, so a client's
  request times out. Queued requests are processed when the hang ends, and their late
  responses go out then (asyncua clients drop answers to requests they gave up on).
* every response goes through :class:`PacedTransport`: while hanging it is held, and
  with a response delay it is written ``delay`` seconds after it was produced. Held
  responses keep their order, since secure-channel sequence numbers are already in
  them. This also holds subscription publish responses and keep-alives during a hang.

No TCP proxy: endpoints, sessions and certificates are the real server's.

Each connection's processor also encodes PublishResponses with
:func:`~.publish_encoding.publish_response_to_binary` (asyncua's bytes, less CPU).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.crypto import uacrypto
from asyncua.server import Server
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.uaprocessor import UaProcessor
from asyncua.server.user_managers import UserManager

from simulators.faces.opcua.monitoring import SimulatorInternalServer
from simulators.faces.opcua.publish_encoding import publish_response_to_binary
from simulators.faults.state import FaultState


async def wait_out(remaining_s: Callable[[], float]) -> None:
    """Sleep until ``remaining_s()`` is 0, re-reading it: a fault can be extended."""
    delay_s = remaining_s()
    while delay_s > 0:
        await asyncio.sleep(delay_s)
        delay_s = remaining_s()


class FaultGate:
    """Consulted on every request of every connection of one server."""

    def __init__(self, faults: Callable[[], FaultState], on_request: Callable[[], None]) -> None:
        self._faults = faults
        self._on_request = on_request
        self.transports: set[PacedTransport] = set()

    async def before_request(self) -> None:
        """Wait out a hang, then let the face refresh per-request fault state."""
        await wait_out(lambda: self._faults().hang_remaining_s())
        self._on_request()

    def hold_s(self) -> tuple[float, float]:
        """(hang remaining, response delay) now, in seconds."""
        faults = self._faults()
        return faults.hang_remaining_s(), faults.response_delay_s()

    def close(self) -> None:
        for transport in list(self.transports):
            transport.discard()


class PacedTransport:
    """Wraps a connection's transport; delays or holds writes as the faults say."""

    def __init__(self, transport: asyncio.Transport, gate: FaultGate) -> None:
        self._transport = transport
        self._gate = gate
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[float, bytes]] = deque()
        self._task: asyncio.Task[None] | None = None

    def write(self, data: bytes) -> None:
        hang_s, delay_s = self._gate.hold_s()
        if not self._queue and hang_s <= 0 and delay_s <= 0:
            self._transport.write(data)
            return
        self._queue.append((self._loop.time() + delay_s, data))
        if self._task is None:
            self._gate.transports.add(self)
            self._task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                due, data = self._queue[0]
                await wait_out(lambda due=due: max(due - self._loop.time(), self._gate.hold_s()[0]))
                self._queue.popleft()
                if self._transport.is_closing():
                    self._queue.clear()
                    break
                self._transport.write(data)
        finally:
            self._task = None
            self._gate.transports.discard(self)

    def discard(self) -> None:
        """Forget held responses (connection or server closing)."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()


class PublishEncodingProcessor(UaProcessor):
    """asyncua's UaProcessor, encoding PublishResponses with the face's encoder."""

    def send_response(
        self,
        requesthandle: int,
        seqhdr: Any,
        response: Any,
        msgtype: ua.MessageType = ua.MessageType.SecureMessage,
    ) -> None:
        if type(response) is not ua.PublishResponse:
            super().send_response(requesthandle, seqhdr, response, msgtype)
            return
        # UaProcessor.send_response (asyncua 2.1) with the body encoded here.
        response.ResponseHeader.RequestHandle = requesthandle
        data = self._connection.message_to_binary(
            publish_response_to_binary(response), message_type=msgtype, request_id=seqhdr.RequestId
        )
        self._transport.write(data)


class FaultInjectingProtocol(OPCUAProtocol):
    """asyncua's per-connection protocol with the fault hooks added."""

    def __init__(self, *args: Any, gate: FaultGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.processor is not None and self.transport is not None:
            # UaProcessor writes every response through this attribute.
            self.processor._transport = PacedTransport(self.transport, self._gate)
            if type(self.processor) is UaProcessor:
                # asyncua builds the processor inline in connection_made, with no
                # factory hook; the subclass only overrides send_response.
                self.processor.__class__ = PublishEncodingProcessor

    async def _process_one_msg(self, header: Any, buf: Any) -> bool:
        await self._gate.before_request()
        return await super()._process_one_msg(header, buf)


class FaultInjectingBinaryServer(BinaryServer):
    """BinaryServer whose connections use :class:`FaultInjectingProtocol`."""

    def __init__(self, *args: Any, gate: FaultGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    def _make_protocol(self) -> OPCUAProtocol:
        return FaultInjectingProtocol(
            iserver=self.iserver,
            policies=self._policies,
            clients=self.clients,
            closing_tasks=self.closing_tasks,
            limits=self.limits,
            gate=self.gate,
        )

    def close_connections(self) -> int:
        """Close every client connection now; returns how many there were."""
        closing = [client for client in self.clients if client.transport is not None]
        for client in closing:
            client.transport.close()  # type: ignore[union-attr]
        return len(closing)


class SimulatorServer(Server):
    """asyncua Server listening through :class:`FaultInjectingBinaryServer`.

    Its internal server copies the standard address space (:mod:`.standard_space`) and
    refuses percent deadbands (:mod:`.monitoring`).
    ``start()`` mirrors ``asyncua.server.Server.start`` (asyncua 2.1) with the binary
    server class swapped; asyncua offers no factory hook for it.
    """

    def __init__(self, gate: FaultGate, user_manager: UserManager | None = None) -> None:
        super().__init__(iserver=SimulatorInternalServer(user_manager=user_manager))
        self.gate = gate

    async def start(self) -> None:
        if self.iserver.certificate is not None:
            uacrypto.check_certificate(
                self.iserver.certificate, self._application_uri, socket.gethostname()
            )
        await self._setup_server_nodes()
        await self.iserver.start()
        try:
            host, port = self._get_bind_socket_info()
            self.bserver = FaultInjectingBinaryServer(
                self.iserver, host, port, self.limits, gate=self.gate
            )
            self.bserver.set_policies(self._policies)
            await self.bserver.start()
        except Exception:
            await self._stop_clock()
            await self.iserver.stop()
            raise

    async def stop(self) -> None:
        self.gate.close()
        await self._stop_clock()
        await super().stop()

    async def _stop_clock(self) -> None:
        """Cancel asyncua's 1 s ServerStatus clock: its stop() waits out the sleep."""
        task = self.iserver.time_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        self.iserver.time_task = None

    def close_connections(self) -> int:
        if isinstance(self.bserver, FaultInjectingBinaryServer):
            return self.bserver.close_connections()
        return 0

    def connection_count(self) -> int:
        return len(self.bserver.clients) if self.bserver is not None else 0
