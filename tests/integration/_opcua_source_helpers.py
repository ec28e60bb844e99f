"""Helpers for tests that run the agent's OpcUaSource against the simulator's face.

(``test_opcua_source.py`` predates this module and keeps its own copies.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _opcua_helpers import SimRig
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.config.models import (
    Connection,
    OpcUaConnection,
    PollSampling,
    Role,
    SubscribeSampling,
    Tag,
)
from edge_agent.samples import ConnectionChange, Quality, Sample
from edge_agent.sources.opcua import OpcUaSource
from lineside_common.opcua_certs import CertificateFiles, write_self_signed_certificate
from simulators.tags import DataType, value_of

AGENT_ID = "test-agent"


class Collected:
    """The emit callback: keeps everything with the monotonic time it arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Sample | ConnectionChange]] = []

    def __call__(self, batch: list[Sample | ConnectionChange]) -> None:
        now = time.monotonic()
        self.items.extend((now, item) for item in batch)

    def samples(self, tag: str, since: float = 0.0) -> list[Sample]:
        return [s for t, s in self.items if isinstance(s, Sample) and s.tag == tag and t >= since]

    def latest(self, tag: str) -> Sample | None:
        found = self.samples(tag)
        return found[-1] if found else None

    def changes(self, since: float = 0.0) -> list[ConnectionChange]:
        return [c for t, c in self.items if isinstance(c, ConnectionChange) and t >= since]

    def first_change(self, connected: bool, since: float) -> float | None:
        return next(
            (
                t
                for t, c in self.items
                if isinstance(c, ConnectionChange) and c.connected is connected and t >= since
            ),
            None,
        )


def tag(tag_id: str, address: str, sampling: Any = None) -> Tag:
    """A process_value tag (no role-specific options), polled every 0.2 s by default."""
    return Tag(
        id=tag_id,
        role=Role.PROCESS_VALUE,
        address=address,
        sampling=sampling or PollSampling(interval_s=0.2),
    )


def fast_subscribe(**kwargs: Any) -> SubscribeSampling:
    """Subscribe, publishing every 0.1 s (the face reports every write at once)."""
    return SubscribeSampling(
        mode="subscribe", sampling_interval_s=0, publishing_interval_s=0.1, **kwargs
    )


def connection(url: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("timeout_s", 1.5)
    kwargs.setdefault("watchdog_interval_s", 1.0)
    return Connection(id="plc", opcua=OpcUaConnection(endpoint=url, **kwargs))


def signal(rig: SimRig, machine: str, name: str) -> Any:
    """The simulator's current SignalValue of tag ``name`` and the tag's spec."""
    spec = next(t for t in rig.sim.tags[machine] if t.name == name)
    return value_of(spec, rig.sim.machines[machine].signals(rig.clock.now())), spec


def matches(sample: Sample | None, rig: SimRig, machine: str, name: str) -> bool:
    """The sample is good and carries the simulator's current value and change time."""
    expected, spec = signal(rig, machine, name)
    if sample is None or sample.quality is not Quality.GOOD:
        return False
    if spec.data_type is DataType.FLOAT32:
        same = sample.value == pytest.approx(expected.value, rel=1e-6)
    else:
        same = sample.value == expected.value
    return bool(same) and sample.source_ts == expected.changed_at


def user_certificate(directory: Path, name: str) -> CertificateFiles:
    """A user's X.509 certificate (DER) and private key (PEM), made once per directory."""
    files = CertificateFiles(directory / f"{name}_cert.der", directory / f"{name}_key.pem")
    if not files.cert_path.exists():
        write_self_signed_certificate(
            files, f"urn:lineside:test:user:{name}", [], ExtendedKeyUsageOID.CLIENT_AUTH, name
        )
    return files


RunSource = Callable[..., Awaitable[Collected]]


@asynccontextmanager
async def source_runner(data_dir: Path) -> AsyncIterator[RunSource]:
    """``start(connection, tags, **kw)`` runs an OpcUaSource in the background; every
    source started is stopped on the way out (and must stop within 10 s)."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(conn: Connection, tags: list[tuple[str, Tag]], **kw: Any) -> Collected:
        collected = Collected()
        kw.setdefault("backoff_max_s", 10.0)
        source = OpcUaSource(conn, tags, AGENT_ID, data_dir, **kw)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(source.run(collected, stop))))
        return collected

    try:
        yield start
    finally:
        for stop, _task in running:
            stop.set()
        for _stop, task in running:
            await asyncio.wait_for(task, 10)
