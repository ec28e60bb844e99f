"""OpcUaSource against the simulator's OPC UA face (a real asyncua server) on loopback.

Time in the simulation is a ManualClock: a test moves it (``rig.advance``) and compares
the samples the source emitted with the simulator's signals. Waiting is deadline-based.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _opcua_helpers import SimRig, StartFace, face_starter, make_rig, wait_until
from cryptography import x509

from edge_agent.config import parse_config
from edge_agent.config.models import (
    Connection,
    OpcUaAuth,
    OpcUaConnection,
    OpcUaSecurity,
    PollSampling,
    Role,
    SecurityMode,
    SecurityPolicy,
    SubscribeSampling,
    Tag,
)
from edge_agent.samples import ConnectionChange, Quality, Sample
from edge_agent.sources.opcua import (
    OpcUaSource,
    ServerTrustError,
    discover,
    fingerprint,
    open_session,
    render_equipment_yaml,
)
from edge_agent.sources.opcua.pki import CLIENT_CERT_FILE, certificate_uris
from simulators.faces.opcua import OpcUaFace
from simulators.faces.opcua import OpcUaSecurity as FaceSecurity
from simulators.scenario.loader import load_scenario
from simulators.tags import DataType, value_of

pytestmark = pytest.mark.integration

SCENARIO = load_scenario("one-machine-shift")
URI = SCENARIO.namespace_uri
MACHINE = "press-1"
BASE = "plant1.stamping.line1.press-1"
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

    def changes(self, since: float = 0.0) -> list[tuple[float, ConnectionChange]]:
        return [(t, c) for t, c in self.items if isinstance(c, ConnectionChange) and t >= since]

    def first_change(self, connected: bool, since: float) -> float | None:
        return next((t for t, c in self.changes(since) if c.connected is connected), None)


def tag(tag_id: str, address: str, sampling: Any = None) -> Tag:
    return Tag(
        id=tag_id,
        role=Role.PROCESS_VALUE,
        address=address,
        sampling=sampling or PollSampling(interval_s=0.2),
    )


def fast_subscribe(**kwargs: Any) -> SubscribeSampling:
    return SubscribeSampling(
        mode="subscribe", sampling_interval_s=0, publishing_interval_s=0.1, **kwargs
    )


def connection(url: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("timeout_s", 1.5)
    kwargs.setdefault("watchdog_interval_s", 1.0)
    return Connection(id="plc", opcua=OpcUaConnection(endpoint=url, **kwargs))


def signal(rig: SimRig, name: str) -> Any:
    spec = next(t for t in rig.sim.tags[MACHINE] if t.name == name)
    return value_of(spec, rig.sim.machines[MACHINE].signals(rig.clock.now())), spec


def matches(sample: Sample | None, rig: SimRig, name: str) -> bool:
    """The sample carries the simulator's current value and change time of ``name``."""
    expected, spec = signal(rig, name)
    if sample is None or sample.quality is not Quality.GOOD:
        return False
    if spec.data_type is DataType.FLOAT32:
        same = sample.value == pytest.approx(expected.value, rel=1e-6)
    else:
        same = sample.value == expected.value
    return bool(same) and sample.source_ts == expected.changed_at


@pytest.fixture
async def faces(tmp_path: Path) -> AsyncIterator[StartFace]:
    async with face_starter(tmp_path / "server-pki") as start:
        yield start


@pytest.fixture
def rig(tmp_path: Path) -> SimRig:
    return make_rig(SCENARIO, tmp_path)


@pytest.fixture
async def face(rig: SimRig, faces: StartFace) -> OpcUaFace:
    return await faces(rig)


RunSource = Callable[..., Awaitable[Collected]]


@pytest.fixture
async def run_source(tmp_path: Path) -> AsyncIterator[RunSource]:
    """Start sources in the background; stop them (and check they stop) afterwards."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(
        conn: Connection, tags: list[tuple[str, Tag]], data_dir: Path | None = None, **kw: Any
    ) -> Collected:
        collected = Collected()
        kw.setdefault("backoff_max_s", 10.0)
        source = OpcUaSource(conn, tags, AGENT_ID, data_dir or tmp_path / "agent", **kw)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(source.run(collected, stop))))
        return collected

    yield start
    for stop, _task in running:
        stop.set()
    for _stop, task in running:
        await asyncio.wait_for(task, 10)


# -- values ------------------------------------------------------------------------------


async def test_poll_and_subscribe_values_equal_the_simulator_with_source_timestamps(
    rig: SimRig, face: OpcUaFace, run_source: RunSource
) -> None:
    rig.advance(2 * 3600 + 15 * 60)  # parts made, then the 08:10 unplanned stop
    names = {
        "total": ("TotalCount", PollSampling(interval_s=0.2)),
        "state": ("State", PollSampling(interval_s=0.5)),
        "order": ("Order", PollSampling(interval_s=0.2)),
        "good": ("GoodCount", fast_subscribe()),
        "temperature": ("ProcessValues.temperature", fast_subscribe()),
        "reason": ("Reason", fast_subscribe(deadband={"type": "absolute", "value": 0.5})),
    }
    tags = [
        (f"{MACHINE}.{key}", tag(key, f"nsu={URI};s={BASE}.{name}", sampling))
        for key, (name, sampling) in names.items()
    ]
    out = await run_source(connection(face.url), tags)

    def all_match() -> bool:
        return all(
            matches(out.latest(f"{MACHINE}.{key}"), rig, name) for key, (name, _) in names.items()
        )

    await wait_until(all_match, 10, message="every tag equals the simulator")
    assert [c.connected for _, c in out.changes()] == [True]
    first = out.latest(f"{MACHINE}.total")
    assert first is not None
    assert first.server_ts is not None
    assert first.status == "Good"
    assert first.received_ts.tzinfo is not None
    assert first.event_time == first.source_ts

    rig.advance(3600)  # the machine runs again: counters and process values change
    await wait_until(all_match, 10, message="every tag follows the simulator")
    assert matches(out.latest(f"{MACHINE}.good"), rig, "GoodCount")
    polled = out.samples(f"{MACHINE}.total")
    assert len(polled) >= 3  # polled repeatedly, not once


async def test_nsu_node_ids_follow_a_namespace_shift_and_a_quarantined_node_comes_back(
    rig: SimRig, face: OpcUaFace, run_source: RunSource
) -> None:
    tags = [
        ("total", tag("total", f"nsu={URI};s={BASE}.TotalCount")),
        ("state", tag("state", f"nsu={URI};s={BASE}.State", fast_subscribe())),
        ("good_ns3", tag("good_ns3", f"ns=3;s={BASE}.GoodCount")),  # only after the shift
    ]
    rig.advance(600)
    out = await run_source(connection(face.url), tags, quarantine_retry_s=0.5)
    await wait_until(lambda: matches(out.latest("total"), rig, "TotalCount"), 10, message="total")
    await wait_until(lambda: out.latest("state"), 10, message="state")
    await wait_until(lambda: out.samples("good_ns3"), 10, message="ns=3 reported")
    assert [(s.quality, s.status) for s in out.samples("good_ns3")] == [
        (Quality.BAD, "BadNodeIdUnknown")
    ]

    restarted = time.monotonic()
    await face.restart(shift_namespace=True, downtime_s=0.5)
    assert face.namespace_index == 3
    rig.advance(1800)
    await wait_until(
        lambda: out.first_change(True, restarted), 15, message="reconnected after the restart"
    )
    assert out.first_change(False, restarted) is not None

    def fresh_and_matching(key: str, name: str) -> bool:
        fresh = out.samples(key, since=restarted)
        return bool(fresh) and matches(fresh[-1], rig, name)

    await wait_until(lambda: fresh_and_matching("total", "TotalCount"), 10, message="nsu poll")
    await wait_until(lambda: fresh_and_matching("state", "State"), 10, message="nsu subscribe")
    await wait_until(lambda: fresh_and_matching("good_ns3", "GoodCount"), 10, message="restored")


# -- resilience --------------------------------------------------------------------------


@pytest.mark.slow(12)
async def test_hang_is_detected_within_10_s_and_recovered_within_15_s_after(
    rig: SimRig, face: OpcUaFace, run_source: RunSource
) -> None:
    tags = [
        ("total", tag("total", f"nsu={URI};s={BASE}.TotalCount")),
        ("state", tag("state", f"nsu={URI};s={BASE}.State", fast_subscribe())),
    ]
    out = await run_source(connection(face.url), tags)
    await wait_until(lambda: out.latest("total") and out.latest("state"), 10, message="values")

    hang_start = time.monotonic()
    face.faults.hang_until_mono = hang_end = hang_start + 12
    lost_at = await wait_until(lambda: out.first_change(False, hang_start), 10, message="lost")
    detect_s = lost_at - hang_start
    rig.advance(900)
    back_at = await wait_until(lambda: out.first_change(True, hang_start), 30, message="back")
    recover_s = back_at - hang_end
    await wait_until(lambda: fresh(out, "total", back_at), 5, message="polling again")
    await wait_until(lambda: matches(out.latest("state"), rig, "State"), 5, message="subscribed")
    print(f"hang: detected after {detect_s:.2f} s, recovered {recover_s:.2f} s after its end")
    assert detect_s < 10
    assert back_at >= hang_end
    assert recover_s < 15
    assert [c.connected for _, c in out.changes()] == [True, False, True]


def fresh(out: Collected, key: str, since: float) -> bool:
    return any(s.quality is Quality.GOOD for s in out.samples(key, since))


async def test_dropped_connections_are_rebuilt(
    rig: SimRig, face: OpcUaFace, run_source: RunSource
) -> None:
    tags = [
        ("total", tag("total", f"nsu={URI};s={BASE}.TotalCount")),
        ("good", tag("good", f"nsu={URI};s={BASE}.GoodCount", fast_subscribe())),
    ]
    out = await run_source(connection(face.url), tags)
    await wait_until(lambda: out.latest("total") and out.latest("good"), 10, message="values")
    dropped = time.monotonic()
    assert await face.drop_connections() >= 1
    back_at = await wait_until(lambda: out.first_change(True, dropped), 15, message="back")
    print(f"drop_connections: reconnected after {back_at - dropped:.2f} s")
    rig.advance(1200)
    await wait_until(lambda: matches(out.latest("good"), rig, "GoodCount"), 10, message="good")
    await wait_until(lambda: fresh(out, "total", back_at), 5, message="total")
    assert [c.connected for _, c in out.changes()] == [True, False, True]


async def test_unknown_nodes_are_reported_bad_once_while_other_tags_go_on(
    face: OpcUaFace, run_source: RunSource
) -> None:
    tags = [
        ("total", tag("total", f"nsu={URI};s={BASE}.TotalCount", PollSampling(interval_s=0.1))),
        ("missing_poll", tag("missing_poll", f"nsu={URI};s={BASE}.NoSuchTag")),
        ("missing_sub", tag("missing_sub", f"ns=2;s={BASE}.Nope", fast_subscribe())),
        ("missing_ns", tag("missing_ns", f"nsu=urn:nowhere;s={BASE}.TotalCount")),
    ]
    out = await run_source(connection(face.url), tags, quarantine_retry_s=0.2)
    await wait_until(lambda: len(out.samples("total")) >= 15, 10, message="total keeps coming")
    for key in ("missing_poll", "missing_sub", "missing_ns"):
        reported = out.samples(key)
        assert [(s.quality, s.status, s.value) for s in reported] == [
            (Quality.BAD, "BadNodeIdUnknown", None)
        ], key
    assert [c.connected for _, c in out.changes()] == [True]


# -- security ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "trust"),
    [(SecurityPolicy.BASIC256SHA256, "pin"), (SecurityPolicy.AES256_SHA256_RSAPSS, "folder")],
)
async def test_sign_and_encrypt_with_user_login(
    policy: SecurityPolicy,
    trust: str,
    rig: SimRig,
    faces: StartFace,
    run_source: RunSource,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lineside.agent.opcua")
    face = await faces(rig, security=FaceSecurity(users={"agent": "pa55-word"}))
    server_cert = tmp_path / "server-pki" / "server_cert.der"
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "plc.der").write_bytes(server_cert.read_bytes())
    security = OpcUaSecurity(
        policy=policy,
        mode=SecurityMode.SIGN_AND_ENCRYPT,
        server_certificate_sha256=fingerprint(server_cert.read_bytes()) if trust == "pin" else None,
        trusted_server_certificates=trusted if trust == "folder" else None,
    )
    auth = OpcUaAuth(type="username", username="agent", password="pa55-word")
    conn = connection(face.url, security=security, auth=auth)
    out = await run_source(conn, [("total", tag("total", f"nsu={URI};s={BASE}.TotalCount"))])
    await wait_until(lambda: matches(out.latest("total"), rig, "TotalCount"), 15, message="value")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("lineside.agent")]
    assert ours
    assert not any("pa55-word" in message for message in ours)

    # The client certificate was created on first use, for this agent, and is reused.
    cert_path = tmp_path / "agent" / "pki" / CLIENT_CERT_FILE
    created = cert_path.read_bytes()
    uris = certificate_uris(x509.load_der_x509_certificate(created))
    assert uris == [f"urn:lineside:edge-agent:{AGENT_ID}"]
    session = await open_session("again", conn.opcua, AGENT_ID, tmp_path / "agent")  # type: ignore[arg-type]
    await session.close(graceful=True)
    assert cert_path.read_bytes() == created


async def test_pinned_fingerprint_mismatch_refuses_the_server(
    rig: SimRig, faces: StartFace, run_source: RunSource, tmp_path: Path
) -> None:
    face = await faces(rig)
    security = OpcUaSecurity(
        policy=SecurityPolicy.BASIC256SHA256,
        mode=SecurityMode.SIGN_AND_ENCRYPT,
        server_certificate_sha256="ab" * 32,
    )
    conn = connection(face.url, security=security)
    with pytest.raises(ServerTrustError, match="does not match the pinned"):
        await open_session("plc", conn.opcua, AGENT_ID, tmp_path / "agent")  # type: ignore[arg-type]

    out = await run_source(conn, [("total", tag("total", f"nsu={URI};s={BASE}.TotalCount"))])
    await wait_until(lambda: out.changes(), 10, message="a connection change")
    (_, change), *_ = out.changes()
    assert change.connected is False
    assert "fingerprint" in change.detail
    assert "ab" * 32 in change.detail
    assert not out.samples("total")


# -- discovery ---------------------------------------------------------------------------


async def test_discover_renders_equipment_yaml_the_config_accepts(
    face: OpcUaFace, tmp_path: Path
) -> None:
    conn = connection(face.url)
    found = await discover(conn, AGENT_ID, tmp_path, depth=6, pattern="*press-1*")
    assert {v.equipment for v in found} == {MACHINE}
    assert all(v.address.startswith(f"nsu={URI};s={BASE}.") for v in found)
    rendered = render_equipment_yaml(found, "plc")
    document = (
        "agent:\n"
        f"  id: {AGENT_ID}\n"
        "  location: {enterprise: e, site: s, area: a, line: l}\n"
        "connections:\n"
        f"  - id: plc\n    opcua: {{endpoint: '{face.url}'}}\n"
        "equipment:\n" + "".join(f"  {line}\n" for line in rendered.splitlines())
    )
    config = parse_config(document, "discovered.yaml")
    (equipment,) = config.equipment
    roles = {t.id: t.role for t in equipment.tags}
    assert roles["state"] is Role.STATE
    assert roles["temperature"] is Role.PROCESS_VALUE
    counters = [t for t in equipment.tags if t.counter_width is not None]
    assert len(counters) == 2
    assert {t.address for t in equipment.tags} == {v.address for v in found}


async def test_the_breaker_opens_while_the_server_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = OpcUaSource(
        connection(f"opc.tcp://127.0.0.1:{port}"),
        [("total", tag("total", f"nsu={URI};s={BASE}.TotalCount"))],
        AGENT_ID,
        tmp_path / "agent",
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        breaker_fail_max=2,
        breaker_reset_s=60,
    )
    assert source.status()[0].breaker == "closed"
    out, stop = Collected(), asyncio.Event()
    task = asyncio.create_task(source.run(out, stop))
    try:
        await wait_until(lambda: source.status()[0].breaker == "open", 10, message="open")
        status = source.status()[0]
        assert (status.connected, status.protocol, status.device) == (False, "opcua", "opcua")
        assert status.last_error is not None
        assert str(port) in status.last_error
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
