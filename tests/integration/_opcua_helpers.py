"""Helpers for the OPC UA face integration tests (simulation, clients, waiting)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.faces.opcua import OpcUaFace
from simulators.faces.opcua.certificates import CertificateFiles, write_self_signed_certificate
from simulators.model.clock import ManualClock
from simulators.model.truth import TruthWriter, read_truth
from simulators.runtime import Simulation, default_start
from simulators.scenario.models import Scenario

CLIENT_APP_URI = "urn:lineside:test:opcua-client"
# Long watchdog: the default 1 s one declares a server dead during a hang fault.
WATCHDOG_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout_s: float,
    interval_s: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value; return it.

    Exceptions from the predicate count as "not yet". Fails with AssertionError
    (naming ``message`` and the last error) after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{message} not met within {timeout_s} s (last error: {last_error!r})"
            )
        await asyncio.sleep(interval_s)


@dataclass
class SimRig:
    """A simulation on a manual clock, writing ground truth to ``truth_path``."""

    sim: Simulation
    clock: ManualClock
    truth_path: Path

    def advance(self, seconds: float) -> None:
        """Move simulated time and publish the changes (to subscribed faces)."""
        self.clock.advance(seconds)
        self.sim.step()

    def truth(self, record_type: str, machine: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in read_truth(self.truth_path)
            if r["type"] == record_type and (machine is None or r.get("machine") == machine)
        ]


def make_rig(scenario: Scenario, tmp_path: Path) -> SimRig:
    start = default_start(scenario, datetime.now(UTC))
    clock = ManualClock(start)
    truth_path = tmp_path / "truth.jsonl"
    sim = Simulation(scenario, clock, start, truth=TruthWriter(truth_path))
    return SimRig(sim, clock, truth_path)


def client_certificate(directory: Path) -> CertificateFiles:
    """A client application certificate for CLIENT_APP_URI (generated once per dir)."""
    files = CertificateFiles(directory / "client_cert.der", directory / "client_key.pem")
    if not files.cert_path.exists():
        write_self_signed_certificate(
            files, CLIENT_APP_URI, ["localhost"], ExtendedKeyUsageOID.CLIENT_AUTH, "test client"
        )
    return files


def make_client(url: str, timeout_s: float = 4.0) -> Client:
    client = Client(url, timeout=timeout_s, watchdog_intervall=WATCHDOG_S)
    client.application_uri = CLIENT_APP_URI
    return client


@asynccontextmanager
async def connected(url: str, timeout_s: float = 4.0) -> AsyncIterator[Client]:
    """An anonymous, unsecured client session; disconnects quietly at the end."""
    client = make_client(url, timeout_s)
    await client.connect()
    try:
        yield client
    finally:
        await disconnect_quietly(client)


async def disconnect_quietly(client: Client) -> None:
    """Disconnect, ignoring a connection the server already closed."""
    try:
        await asyncio.wait_for(client.disconnect(), timeout=2.0)
    except Exception:
        client.disconnect_socket()


def node(client: Client, ns: int, node_id: str) -> Any:
    return client.get_node(ua.NodeId(node_id, ns))


StartFace = Callable[..., Awaitable[OpcUaFace]]


@asynccontextmanager
async def face_starter(cert_dir: Path) -> AsyncIterator[StartFace]:
    """``start(rig, **kwargs)`` runs a face on a free port wired to the rig's simulation;
    every face started is stopped (faults cleared) on the way out."""
    started: list[OpcUaFace] = []

    async def start(rig: SimRig, **kwargs: Any) -> OpcUaFace:
        kwargs.setdefault("cert_dir", cert_dir)
        face = OpcUaFace(rig.sim, port=free_port(), **kwargs)
        rig.sim.subscribe(face.apply)
        await face.start()
        started.append(face)
        return face

    try:
        yield start
    finally:
        for face in started:
            face.faults.clear()
            await face.stop()
